"""Delivering ``kanal:outbox:<channel>`` to a platform: once, never lost, never in a hot loop.

Everything the bridge says later (tracking numbers, status updates, lookups) waits on the
channel's outbox stream until a sender has handed it to the platform; only then is it
acknowledged. For each entry:

- a **permanent** failure (the citizen blocked the bot, the number does not exist, the platform
  refuses the message) moves it to ``kanal:outbox:<channel>:dead`` with a reason, counts it in
  ``kanal_outbox_dead_total`` and, when the recipient is gone (:class:`RecipientUnreachable`),
  marks the pseudonym so the bridge stops sending status updates to it;
- a **retryable** failure waits as long as the platform asked (:class:`RetryAfter`), otherwise
  backs off exponentially up to a cap, while keeping its claim on the entry; an entry older than
  ``max_age_s`` is given up and dead-lettered as ``expired``;
- sends are paced by the adapter's :class:`RateLimits`, for the whole channel and per recipient;
- an entry left pending by a consumer that died is claimed (``XAUTOCLAIM``) by a live one after
  ``claim_idle_ms``, so a crashed sender's messages still go out, once.

Dead letters carry no message text in their listing (``kanal outbox dead list``); the entry keeps
the message itself so that ``kanal outbox dead replay`` can send it again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from kanal import metrics, streams
from kanal.errors import KanalError, RecipientUnreachable, RetryAfter
from kanal.logging import get_logger
from kanal.messages import Outbound
from kanal.redis import Redis, xrange_str
from kanal.redis import fields as redis_fields
from kanal.retry import backoff

log = get_logger(__name__)

Send = Callable[[Outbound], Awaitable[None]]
UNREACHABLE_TTL_S = 90 * 24 * 3600


@dataclass(frozen=True)
class RateLimits:
    """Messages per second a platform accepts: for the whole channel and for one recipient.

    Per process: N sender replicas together send up to N times ``per_s``. ``None``: no limit.
    """

    per_s: float | None = None
    per_recipient_per_s: float | None = None
    burst: int = 1


@dataclass(frozen=True)
class OutboxPolicy:
    claim_idle_ms: int = 60_000
    max_age_s: float = 24 * 3600
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    block_ms: int = 500


class Limiter:
    """Token buckets (aiolimiter): one for the channel, one per recent recipient."""

    def __init__(self, limits: RateLimits, *, remember: int = 10_000) -> None:
        self.limits = limits
        self._remember = remember
        self._all = _bucket(limits.per_s, limits.burst)
        self._each: OrderedDict[str, AsyncLimiter] = OrderedDict()

    async def wait(self, recipient: str) -> None:
        if self._all is not None:
            await self._all.acquire()
        if self.limits.per_recipient_per_s is None:
            return
        bucket = self._each.pop(recipient, None) or _bucket(
            self.limits.per_recipient_per_s, self.limits.burst
        )
        assert bucket is not None
        self._each[recipient] = bucket  # most recent last
        while len(self._each) > self._remember:
            self._each.popitem(last=False)
        await bucket.acquire()


def _bucket(per_s: float | None, burst: int) -> AsyncLimiter | None:
    if per_s is None:
        return None
    burst = max(1, burst)
    return AsyncLimiter(burst, burst / per_s)


async def deliver_outbox(
    redis: Redis,
    channel: str,
    send: Send,
    *,
    group: str | None = None,
    consumer: str = "worker-1",
    accept: Callable[[Outbound], bool] | None = None,
    start_id: str = "0",
    limits: RateLimits | None = None,
    policy: OutboxPolicy | None = None,
) -> None:
    """Deliver the channel's outbox forever; ack each entry once the platform took it."""
    sender = OutboxSender(
        redis,
        channel,
        send,
        group=group,
        consumer=consumer,
        accept=accept,
        limits=limits or RateLimits(),
        policy=policy or OutboxPolicy(),
    )
    await sender.run(start_id=start_id)


class OutboxSender:
    def __init__(
        self,
        redis: Redis,
        channel: str,
        send: Send,
        *,
        group: str | None,
        consumer: str,
        accept: Callable[[Outbound], bool] | None,
        limits: RateLimits,
        policy: OutboxPolicy,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.send = send
        self.stream = streams.outbox(channel)
        self.group = group or f"{channel}-senders"
        self.consumer = consumer
        self.accept = accept
        self.limiter = Limiter(limits)
        self.policy = policy

    async def run(self, *, start_id: str = "0") -> None:
        await streams.ensure_group(self.redis, self.stream, self.group, start_id=start_id)
        async for entry_id, fields in streams.consume(
            self.redis,
            self.stream,
            self.group,
            self.consumer,
            block_ms=self.policy.block_ms,
            count=1,  # a fetched entry is ours until sent: fetch one at a time
            claim_idle_ms=self.policy.claim_idle_ms,
        ):
            await self.deliver(entry_id, fields)

    async def deliver(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            out = Outbound.model_validate_json(fields["outbound"])
        except (KeyError, ValueError):
            log.error("outbox_bad_entry", channel=self.channel, entry=entry_id)
            await self.dead(entry_id, fields, None, "bad_entry", attempts=0)
            return
        if self.accept is not None and not self.accept(out):
            await self.redis.xack(self.stream, self.group, entry_id)
            return
        attempt = 0
        while True:
            await self.limiter.wait(out.to)
            try:
                await self.send(out)
            except RetryAfter as exc:
                attempt += 1
                delay = max(0.0, exc.seconds)
                self._retry_log(out, entry_id, attempt, delay, type(exc).__name__)
            except KanalError as exc:
                if not exc.retryable:
                    reason = getattr(exc, "reason", "") or type(exc).__name__
                    gone = isinstance(exc, RecipientUnreachable)
                    await self.dead(entry_id, fields, out, reason, attempts=attempt + 1, gone=gone)
                    return
                attempt += 1
                delay = backoff(
                    attempt, base_s=self.policy.backoff_base_s, cap_s=self.policy.backoff_cap_s
                )
                self._retry_log(out, entry_id, attempt, delay, type(exc).__name__)
            except Exception as exc:  # an adapter's bug: keep the message, back off, go on
                attempt += 1
                delay = backoff(
                    attempt, base_s=self.policy.backoff_base_s, cap_s=self.policy.backoff_cap_s
                )
                if attempt == 1:
                    log.exception("outbox_send_crashed", channel=self.channel, entry=entry_id)
                self._retry_log(out, entry_id, attempt, delay, type(exc).__name__)
            else:
                await self.redis.xack(self.stream, self.group, entry_id)
                metrics.OUTBOX_SENT.labels(self.channel).inc()
                return
            if _age_s(entry_id) + delay > self.policy.max_age_s:
                await self.dead(entry_id, fields, out, "expired", attempts=attempt)
                return
            metrics.OUTBOX_RETRIES.labels(self.channel).inc()
            await self._hold(entry_id, delay)

    def _retry_log(
        self, out: Outbound, entry_id: str, attempt: int, delay: float, error: str
    ) -> None:
        # One line per attempt; the delay grows, so a dead platform is not a log flood.
        log.warning(
            "outbox_send_retry",
            channel=self.channel,
            conv=out.conv,
            entry=entry_id,
            attempt=attempt,
            error=error,
            retry_in_s=round(delay, 2),
        )

    async def _hold(self, entry_id: str, delay: float) -> None:
        """Sleep ``delay`` while keeping the entry ours: re-claim it before it looks idle."""
        step = max(0.05, self.policy.claim_idle_ms / 3000)
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(step, left))
            await self.redis.xclaim(
                self.stream, self.group, self.consumer, 0, [entry_id], justid=True
            )

    async def dead(
        self,
        entry_id: str,
        fields: dict[str, str],
        out: Outbound | None,
        reason: str,
        *,
        attempts: int,
        gone: bool = False,
    ) -> None:
        await dead_letter(
            self.redis,
            self.channel,
            fields.get("outbound", ""),
            out,
            reason,
            entry=entry_id,
            attempts=attempts,
            gone=gone,
            ack=(self.stream, self.group),
        )


async def dead_letter(
    redis: Redis,
    channel: str,
    outbound: str,
    out: Outbound | None,
    reason: str,
    *,
    entry: str = "",
    attempts: int = 1,
    gone: bool = False,
    ack: tuple[str, str] | None = None,
) -> None:
    """Move a message to ``kanal:outbox:<channel>:dead`` (and its recipient, when ``gone``, to
    the unreachable ones), in one transaction with the outbox ``ack`` (stream, group) if given.

    Also for what a platform reports later, e.g. an SMS delivery report that says the message
    failed after the gateway had accepted it.
    """
    record = {
        "outbound": outbound,
        "reason": reason,
        "entry": entry,
        "attempts": str(attempts),
        "failed_at": str(int(time.time())),
    }
    if out is not None:
        record.update(conv=out.conv, kind=out.kind, tracking_id=out.tracking_id or "")
    async with redis.pipeline(transaction=True) as tx:
        tx.xadd(streams.dead_letters(channel), redis_fields(record))
        if gone and out is not None and out.conv:
            tx.set(streams.unreachable_key(out.conv), reason, ex=UNREACHABLE_TTL_S)
        if ack is not None:
            tx.xack(ack[0], ack[1], entry)
        await tx.execute()
    metrics.OUTBOX_DEAD.labels(channel, reason).inc()
    log.error(
        "outbox_dead_letter",
        channel=channel,
        conv=out.conv if out else None,
        entry=entry,
        reason=reason,
        attempts=attempts,
        unreachable=gone,
    )


@dataclass(frozen=True)
class DeadLetter:
    """What an operator sees of a message that did not go out: no text, no address."""

    channel: str
    entry_id: str
    failed_at: int
    reason: str
    attempts: int
    kind: str
    conv: str
    tracking_id: str


async def dead_channels(redis: Redis) -> list[str]:
    found = [
        key.removeprefix("kanal:outbox:").removesuffix(":dead")
        async for key in redis.scan_iter(match=streams.dead_letters("*"), count=200)
    ]
    return sorted(found)


async def list_dead(redis: Redis, channel: str | None = None) -> list[DeadLetter]:
    out: list[DeadLetter] = []
    for ch in [channel] if channel else await dead_channels(redis):
        for entry_id, f in await xrange_str(redis, streams.dead_letters(ch)):
            out.append(
                DeadLetter(
                    channel=ch,
                    entry_id=entry_id,
                    failed_at=int(f.get("failed_at") or 0),
                    reason=f.get("reason", ""),
                    attempts=int(f.get("attempts") or 0),
                    kind=f.get("kind", ""),
                    conv=f.get("conv", ""),
                    tracking_id=f.get("tracking_id", ""),
                )
            )
    return out


class NoSuchDeadLetter(LookupError):
    pass


async def replay_dead(redis: Redis, entry_id: str, channel: str | None = None) -> DeadLetter:
    """Send a dead letter again: back on its outbox, off the dead letters, and its recipient
    no longer marked unreachable (the operator says the cause is fixed)."""
    matches = [d for d in await list_dead(redis, channel) if d.entry_id == entry_id]
    if not matches:
        raise NoSuchDeadLetter(entry_id)
    if len(matches) > 1:
        raise NoSuchDeadLetter(f"{entry_id} is in several channels; name one with --channel")
    dead = matches[0]
    [(_, fields)] = await xrange_str(
        redis, streams.dead_letters(dead.channel), min=entry_id, max=entry_id
    )
    if not fields.get("outbound"):
        raise ValueError("this dead letter holds no message; it cannot be sent")
    Outbound.model_validate_json(fields["outbound"])  # refuse what the sender would refuse
    async with redis.pipeline(transaction=True) as tx:
        tx.xadd(streams.outbox(dead.channel), redis_fields({"outbound": fields["outbound"]}))
        if dead.conv:
            tx.delete(streams.unreachable_key(dead.conv))
        tx.xdel(streams.dead_letters(dead.channel), entry_id)
        await tx.execute()
    return dead


def _age_s(entry_id: str) -> float:
    try:
        return max(0.0, time.time() - int(entry_id.split("-", 1)[0]) / 1000)
    except ValueError:
        return 0.0


__all__ = [
    "UNREACHABLE_TTL_S",
    "DeadLetter",
    "Limiter",
    "NoSuchDeadLetter",
    "OutboxPolicy",
    "OutboxSender",
    "RateLimits",
    "Send",
    "dead_channels",
    "dead_letter",
    "deliver_outbox",
    "list_dead",
    "replay_dead",
]
