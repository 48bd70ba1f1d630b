"""Supervised background tasks: restart what dies, back off while it keeps dying, stop cleanly.

A loop that keeps failing (a CRM that answers garbage, a Redis that is gone) must not log a
traceback every second. :func:`supervise` restarts it after an exponentially growing, capped
delay, logs the first failure of a streak with its traceback and later ones as one line, counts
every crash in ``kanal_task_crashes_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from kanal import metrics
from kanal.logging import get_logger
from kanal.retry import backoff

log = get_logger(__name__)

# A task that ran this long without dying starts its next failure streak from the first delay.
HEALTHY_AFTER_S = 60.0


async def supervise(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    base_s: float = 1.0,
    cap_s: float = 60.0,
) -> None:
    """Run ``factory()`` until it returns; restart it with backoff whenever it raises."""
    streak = 0
    while True:
        started = time.monotonic()
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started > HEALTHY_AFTER_S:
                streak = 0
            streak += 1
            metrics.TASK_CRASHES.labels(name).inc()
            delay = backoff(streak, base_s=base_s / 2, cap_s=cap_s)
            if streak == 1:
                log.exception("task_crashed", task=name, error=type(exc).__name__)
            else:
                log.warning(
                    "task_still_failing",
                    task=name,
                    error=type(exc).__name__,
                    crashes=streak,
                    retry_in_s=round(delay, 1),
                )
            await asyncio.sleep(delay)


class FailureStreak:
    """Consecutive failures of one loop (the relay's poll, a token poll): how long to wait
    next, growing exponentially up to a cap, and a log line on the first failure, then only
    at the 2nd, 4th, 8th… so a CRM that is down for a day writes a dozen lines, not thousands;
    one line again when it recovers. ``kanal_part_failing{part}`` is 1 while it fails."""

    def __init__(self, part: str, *, base_s: float = 1.0, cap_s: float = 300.0) -> None:
        self.part = part
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        self.failures += 1
        metrics.PART_FAILING.labels(self.part).set(1)
        metrics.PART_FAILURES.labels(self.part).inc()
        delay = backoff(self.failures, base_s=self.base_s / 2, cap_s=self.cap_s)
        n = self.failures
        if n & (n - 1) == 0:  # 1, 2, 4, 8, ...
            log.warning(
                "part_failing",
                part=self.part,
                error=type(exc).__name__,
                status=getattr(exc, "status", None),
                failures=n,
                retry_in_s=round(delay, 1),
            )
        return delay

    def ok(self) -> None:
        if self.failures:
            log.info("part_recovered", part=self.part, failures=self.failures)
            metrics.PART_FAILING.labels(self.part).set(0)
        self.failures = 0


async def stop_tasks(tasks: list[asyncio.Task[None]], patience_s: float = 0.5) -> None:
    """Cancel tasks and wait for them. A library may swallow one cancellation (httpx/anyio
    cancel scopes can, mid-request), so cancel again until each task has really ended."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=patience_s)
        pending = [t for t in pending if not t.done()]
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()


__all__ = ["HEALTHY_AFTER_S", "FailureStreak", "stop_tasks", "supervise"]
