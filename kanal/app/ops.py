"""Operator commands: ``kanal parked list | replay ID``, ``kanal outbox dead list | replay ID``.

What did not go through, and sending it again once the cause is fixed. The listings carry ids,
pseudonyms, categories, reasons and times: never a message, an address or a place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer

from bots.core.outbox import NoSuchDeadLetter, list_dead, replay_dead
from bridge.parked import NotParked, list_parked, replay_parked
from kanal.redis import EmbeddedRedis, Redis, connect
from kanal.settings import Settings


@asynccontextmanager
async def redis_session(settings: Settings) -> AsyncIterator[Redis]:
    """``REDIS_URL``, or the embedded Redis under ``KANAL_DATA_DIR`` that ``kanal run`` uses."""
    embedded = None
    if not settings.redis.url:
        embedded = await asyncio.to_thread(EmbeddedRedis, settings.kanal.data_dir / "redis")
    redis = connect(settings.redis.url or (embedded.url if embedded else ""))
    try:
        yield redis
    finally:
        await redis.aclose()
        if embedded is not None:
            embedded.close()


def _when(ms_or_s: int, *, ms: bool) -> str:
    if not ms_or_s:
        return "-"
    ts = ms_or_s / 1000 if ms else ms_or_s
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _run(action: Callable[[Redis], Awaitable[int]]) -> None:
    async def go() -> int:
        async with redis_session(Settings()) as redis:
            return await action(redis)

    raise typer.Exit(asyncio.run(go()))


parked_app = typer.Typer(help="Reports the CRM refused: list them, file them again.")


@parked_app.command("list")
def parked_list() -> None:
    """Parked reports: entry id, when, reason, complaint id, category, channel, reporter."""

    async def action(redis: Redis) -> int:
        reports = await list_parked(redis)
        if not reports:
            print("no parked reports")
            return 0
        print("entry\tparked_at\treason\tcomplaint_id\tcategory\tchannel\treporter")
        for r in reports:
            when = _when(r.parked_at_ms, ms=True)
            print(
                f"{r.entry_id}\t{when}\t{r.reason}\t{r.complaint_id}\t{r.category}"
                f"\t{r.channel}\t{r.conv}"
            )
        return 0

    _run(action)


@parked_app.command("replay")
def parked_replay(entry_id: Annotated[str, typer.Argument(help="The entry id from list.")]) -> None:
    """File a parked report again (after fixing why the CRM refused it)."""

    async def action(redis: Redis) -> int:
        try:
            r = await replay_parked(redis, entry_id)
        except NotParked:
            print(f"no parked report {entry_id} (see: kanal parked list)")
            return 1
        except ValueError as exc:
            print(f"cannot replay {entry_id}: {exc}")
            return 1
        print(f"complaint {r.complaint_id} queued for the CRM again")
        return 0

    _run(action)


outbox_app = typer.Typer(help="Channel outboxes.")
dead_app = typer.Typer(help="Messages a channel could not deliver: list them, send them again.")
outbox_app.add_typer(dead_app, name="dead")


@dead_app.command("list")
def dead_list(
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
) -> None:
    """Dead letters: channel, entry id, when, reason, attempts, kind, reporter, tracking no."""

    async def action(redis: Redis) -> int:
        letters = await list_dead(redis, channel)
        if not letters:
            print("no dead letters")
            return 0
        print("channel\tentry\tfailed_at\treason\tattempts\tkind\treporter\ttracking_id")
        for d in letters:
            print(
                f"{d.channel}\t{d.entry_id}\t{_when(d.failed_at, ms=False)}\t{d.reason}"
                f"\t{d.attempts}\t{d.kind}\t{d.conv}\t{d.tracking_id or '-'}"
            )
        return 0

    _run(action)


@dead_app.command("replay")
def dead_replay(
    entry_id: Annotated[str, typer.Argument(help="The entry id from list.")],
    channel: Annotated[str | None, typer.Option("--channel", help="Its channel.")] = None,
) -> None:
    """Send a dead letter again (after fixing why it failed); its recipient is tried again."""

    async def action(redis: Redis) -> int:
        try:
            d = await replay_dead(redis, entry_id, channel)
        except NoSuchDeadLetter as exc:
            print(f"no dead letter {exc} (see: kanal outbox dead list)")
            return 1
        except ValueError as exc:
            print(f"cannot replay {entry_id}: {exc}")
            return 1
        print(f"{d.kind or 'message'} for {d.conv or '?'} queued on the {d.channel} outbox again")
        return 0

    _run(action)


__all__ = ["outbox_app", "parked_app", "redis_session"]
