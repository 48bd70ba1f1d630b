"""Outbox delivery against a real Redis: dead letters, retry_after, backoff, claims, limits."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from bots.core.outbox import OutboxPolicy, RateLimits, deliver_outbox
from bots.core.worker import publish
from kanal import metrics, streams
from kanal.errors import PermanentPeerError, RecipientUnreachable, RetryAfter, TemporaryPeerError
from kanal.messages import Outbound
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.peers import REPO

CH = "loopback"
FAST = OutboxPolicy(claim_idle_ms=300, backoff_base_s=0.05, backoff_cap_s=1.0, block_ms=50)


def msg(n: int, to: str = "62811000111", conv: str = "p_abc") -> Outbound:
    return Outbound(channel=CH, to=to, conv=conv, text=f"pesan {n}", kind="update")


class Platform:
    """Records what was sent; ``fail`` decides, per call, what the platform answers."""

    def __init__(self, fail: Callable[[Outbound, int], Exception | None] | None = None) -> None:
        self.sent: list[tuple[float, Outbound]] = []
        self.calls: list[float] = []
        self.fail = fail

    async def send(self, out: Outbound) -> None:
        self.calls.append(time.monotonic())
        error = self.fail(out, len(self.calls)) if self.fail else None
        if error is not None:
            raise error
        self.sent.append((time.monotonic(), out))


async def until(pred: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def start(redis: Redis, platform: Platform, **kw: object) -> asyncio.Task[None]:
    kw.setdefault("policy", FAST)
    return asyncio.create_task(
        deliver_outbox(redis, CH, platform.send, **kw)  # type: ignore[arg-type]
    )


async def pending(redis: Redis, group: str = f"{CH}-senders") -> int:
    info = await redis.xpending(streams.outbox(CH), group)
    return int(info["pending"])


async def test_a_permanent_failure_is_dead_lettered_once_and_marks_the_recipient(
    redis: Redis,
) -> None:
    platform = Platform(lambda o, n: RecipientUnreachable("403", reason="blocked"))
    before = metrics.OUTBOX_DEAD.labels(CH, "blocked")._value.get()
    await publish(redis, msg(1, conv="p_gone"))
    task = start(redis, platform)
    try:
        await until(lambda: _xlen(redis, streams.dead_letters(CH), 1))
        await asyncio.sleep(0.5)  # would it try again?
    finally:
        await stop_tasks([task])
    assert len(platform.calls) == 1, "a permanent failure is not retried"
    [(_, dead)] = await redis.xrange(streams.dead_letters(CH))
    assert dead["reason"] == "blocked" and dead["conv"] == "p_gone" and dead["kind"] == "update"
    assert Outbound.model_validate_json(dead["outbound"]).text == "pesan 1"  # kept for replay
    assert await redis.get(streams.unreachable_key("p_gone")) == "blocked"
    assert await pending(redis) == 0
    assert metrics.OUTBOX_DEAD.labels(CH, "blocked")._value.get() == before + 1


async def test_a_refused_message_is_dead_lettered_without_marking_the_citizen(
    redis: Redis,
) -> None:
    platform = Platform(lambda o, n: PermanentPeerError("400", reason="message_refused"))
    await publish(redis, msg(1, conv="p_here"))
    task = start(redis, platform)
    try:
        await until(lambda: _xlen(redis, streams.dead_letters(CH), 1))
    finally:
        await stop_tasks([task])
    assert not await redis.exists(streams.unreachable_key("p_here"))


async def test_retry_after_is_honoured(redis: Redis) -> None:
    platform = Platform(lambda o, n: RetryAfter(1.2) if n == 1 else None)
    await publish(redis, msg(1))
    task = start(redis, platform)
    try:
        await until(lambda: _true(len(platform.sent) == 1))
    finally:
        await stop_tasks([task])
    first, second = platform.calls
    assert second - first >= 1.2, "sent again before the platform's retry_after"
    assert await pending(redis) == 0


async def test_retryable_failures_back_off_instead_of_spinning(redis: Redis) -> None:
    platform = Platform(lambda o, n: TemporaryPeerError("502") if n <= 4 else None)
    await publish(redis, msg(1))
    task = start(redis, platform)
    try:
        await until(lambda: _true(len(platform.sent) == 1))
    finally:
        await stop_tasks([task])
    gaps = [b - a for a, b in itertools.pairwise(platform.calls)]
    assert len(gaps) == 4
    # base·2^n with jitter in [half, all]: the fourth wait is at least twice the first's cap.
    assert gaps[3] > gaps[0] * 2, gaps
    assert [o.text for _, o in platform.sent] == ["pesan 1"]


async def test_a_message_older_than_max_age_is_given_up(redis: Redis) -> None:
    platform = Platform(lambda o, n: TemporaryPeerError("503"))
    await publish(redis, msg(1))
    policy = OutboxPolicy(claim_idle_ms=300, max_age_s=0.3, backoff_base_s=0.1, block_ms=50)
    task = start(redis, platform, policy=policy)
    try:
        await until(lambda: _xlen(redis, streams.dead_letters(CH), 1))
    finally:
        await stop_tasks([task])
    [(_, dead)] = await redis.xrange(streams.dead_letters(CH))
    assert dead["reason"] == "expired"


async def test_a_malformed_entry_is_dead_lettered_not_a_crash(redis: Redis) -> None:
    await redis.xadd(streams.outbox(CH), {"outbound": "{not json"})
    await publish(redis, msg(2))
    platform = Platform()
    task = start(redis, platform)
    try:
        await until(lambda: _true(len(platform.sent) == 1))
    finally:
        await stop_tasks([task])
    [(_, dead)] = await redis.xrange(streams.dead_letters(CH))
    assert dead["reason"] == "bad_entry"


async def test_rate_limits_per_recipient_and_for_the_channel(redis: Redis) -> None:
    for n in range(3):
        await publish(redis, msg(n, to="A"))
    await publish(redis, msg(9, to="B"))
    platform = Platform()
    task = start(redis, platform, limits=RateLimits(per_s=100, per_recipient_per_s=4))
    try:
        await until(lambda: _true(len(platform.sent) == 4))
    finally:
        await stop_tasks([task])
    to_a = [t for t, o in platform.sent if o.to == "A"]
    assert to_a[2] - to_a[0] >= 2 / 4 * 0.9, "one recipient gets at most 4 a second"
    # B waited for A's queue (one stream, in order) but not for A's bucket once its turn came.
    t_b = next(t for t, o in platform.sent if o.to == "B")
    assert t_b - to_a[2] < 0.2


CONSUMER_A = """
import asyncio, sys
from bots.core.outbox import OutboxPolicy, deliver_outbox
from kanal.redis import connect

async def main():
    redis = connect(sys.argv[1])
    async def send(out):
        print("took", out.text, flush=True)
        await asyncio.sleep(3600)   # the platform hangs; then the process is killed
    await deliver_outbox(redis, "loopback", send, consumer="A",
                         policy=OutboxPolicy(claim_idle_ms=300, block_ms=50))

asyncio.run(main())
"""


async def test_a_message_pending_on_a_killed_consumer_is_sent_by_another_once(
    redis: Redis, redis_url: str
) -> None:
    await streams.ensure_group(redis, streams.outbox(CH), f"{CH}-senders")
    await publish(redis, msg(1))
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER_A, redis_url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == "took pesan 1"
        await asyncio.sleep(0.6)  # past claim_idle: A's own heartbeat must not matter now
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert await pending(redis) == 1  # A took it and died holding it
    b, c = Platform(), Platform()
    tasks = [start(redis, b, consumer="B"), start(redis, c, consumer="C")]
    try:
        await until(lambda: _true(len(b.sent) + len(c.sent) >= 1))
        await asyncio.sleep(1.0)  # a second delivery would come within a claim period
    finally:
        await stop_tasks(tasks)
    assert [o.text for _, o in b.sent + c.sent] == ["pesan 1"]
    assert await pending(redis) == 0


async def test_a_slow_retry_keeps_its_claim(redis: Redis) -> None:
    """A sender waiting out a long retry_after keeps the entry: another does not take it."""
    slow = Platform(lambda o, n: RetryAfter(1.5) if n == 1 else None)
    await publish(redis, msg(1))
    first = start(redis, slow, consumer="slow")
    await until(lambda: _true(len(slow.calls) == 1))
    other = Platform()
    second = start(redis, other, consumer="other")
    try:
        await until(lambda: _true(len(slow.sent) == 1), timeout=10)
        await asyncio.sleep(0.5)
    finally:
        await stop_tasks([first, second])
    assert other.sent == [], "the entry was claimed away while its sender waited"


async def _xlen(redis: Redis, stream: str, n: int) -> bool:
    return int(await redis.xlen(stream)) >= n


async def _true(value: bool) -> bool:
    return value


async def test_queued_replies_go_out_in_order_through_the_outbox(redis: Redis) -> None:
    """What a push channel (webhook, Kannel) does with its replies before answering 200."""
    from bots.core.worker import queue_replies

    await queue_replies(redis, [msg(1), msg(2), msg(3)])
    platform = Platform()
    task = start(redis, platform)
    try:
        await until(lambda: _true(len(platform.sent) == 3))
    finally:
        await stop_tasks([task])
    assert [o.text for _, o in platform.sent] == ["pesan 1", "pesan 2", "pesan 3"]
