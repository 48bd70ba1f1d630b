"""The loop every adapter shares: inbound → engine → replies, and the outbox → platform.

:func:`handle_inbound` runs one event through the engine and sends its replies. The engine
commits the turn together with its (sealed) replies under the event's dedup key, so an event
the platform delivers again, because the worker died after the commit and before the send, gets
the very same replies without the engine running twice; once the replies are out, the key
says so, and a redelivery is answered with nothing. An adapter therefore confirms an event
to its platform (Telegram offset, IMAP ``\\Seen``) only after :func:`handle_inbound` returned;
a push platform that must be answered before the replies go out (a webhook, Kannel) queues them
on the outbox instead (:func:`queue_replies`), where they survive a crash.

Anything the bridge says later (tracking numbers, status updates) arrives on
``kanal:outbox:<channel>`` and is delivered by :func:`bots.core.outbox.deliver_outbox`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bots.core.engine import Engine
from bots.core.outbox import Send, deliver_outbox
from bots.core.prompts import say
from kanal import streams
from kanal.errors import KanalError
from kanal.logging import get_logger
from kanal.messages import Expects, Inbound, Outbound
from kanal.redis import Redis

log = get_logger(__name__)


async def handle_inbound(engine: Engine, inbound: Inbound, send: Send) -> list[Outbound]:
    """Run one event through the engine (or replay its first answer) and send the replies.

    Errors of the engine's peers propagate (``KanalError``, often retryable: do not confirm
    the event, it will come again); a send that fails propagates too, for the same reason.
    """
    try:
        replies = await engine.handle(inbound)
    except KanalError as exc:
        log.warning("inbound_failed", channel=inbound.channel, error=type(exc).__name__)
        raise
    for out in replies:
        await send(out)
    # Delivered: a later redelivery of this event (a batch the platform sends again) is a
    # duplicate, not a reason to say it all twice. Dying before this line says it twice.
    await engine.delivered(inbound)
    return replies


async def handle_queued(engine: Engine, inbound: Inbound) -> list[Outbound]:
    """Run one event through the engine, its replies queued on the outbox in the same
    transaction as the turn (see :meth:`Engine.handle`): confirm the event to the platform
    after this returned; a redelivery is then a duplicate, answered with nothing."""
    try:
        return await engine.handle(inbound, queue=True)
    except KanalError as exc:
        log.warning("inbound_failed", channel=inbound.channel, error=type(exc).__name__)
        raise


def apology(inbound: Inbound, conv: str = "", last: Outbound | None = None) -> Outbound:
    """A polite "the system is busy" for an event the engine could not take."""
    return Outbound(
        channel=inbound.channel,
        to=inbound.user_id,
        conv=conv,
        text=say("unavailable"),
        expects=last.expects if last else Expects.NONE,
        choices=last.choices if last else (),
    )


async def publish(redis: Redis, out: Outbound) -> str:
    """Queue a message on its channel's outbox (the bridge, or a push channel's replies)."""
    entry_id = await redis.xadd(streams.outbox(out.channel), {"outbound": out.model_dump_json()})
    return str(entry_id)


_QUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[2], '*', 'outbound', ARGV[1])
  return 1
end
return 0
"""


async def queue_once(redis: Redis, key: str, out: Outbound, ttl_s: int = 7 * 24 * 3600) -> bool:
    """Queue a reply of the worker's own (not the engine's: "the mail is too large", "send a
    photo, not a GIF") once per ``key``: the key and the outbox entry are written together, or
    neither. False if it was queued before (a redelivered event)."""
    queued = await redis.eval(
        _QUEUE_ONCE, 2, key, streams.outbox(out.channel), out.model_dump_json(), str(ttl_s)
    )
    return bool(queued)


async def within_hourly(redis: Redis, key: str, limit: int, now: float) -> bool:
    """Count one more event under ``key`` this hour; whether it is still within ``limit``."""
    hourly = f"{key}:{int(now // 3600)}"
    async with redis.pipeline(transaction=True) as tx:
        tx.incr(hourly)
        tx.expire(hourly, 3700)
        count, _ = await tx.execute()
    return int(count) <= limit


async def queue_replies(redis: Redis, replies: Sequence[Outbound]) -> None:
    """Put replies on the outbox in one transaction (for push channels, see above)."""
    if not replies:
        return
    async with redis.pipeline(transaction=True) as tx:
        for out in replies:
            tx.xadd(streams.outbox(out.channel), {"outbound": out.model_dump_json()})
        await tx.execute()


__all__ = [
    "Send",
    "apology",
    "deliver_outbox",
    "handle_inbound",
    "handle_queued",
    "publish",
    "queue_once",
    "queue_replies",
    "within_hourly",
]
