"""The console channel's worker: stdin lines in, replies and bridge messages printed out.

Used by ``kanal chat`` (exits at end of input, after waiting for a promised tracking number),
by ``kanal run`` (the terminal it was started from) and by ``python -m bots.console``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from starlette.routing import BaseRoute

from bots.console.adapter import (
    CHANNEL,
    MAX_FILE,
    ConsoleInputError,
    ConsoleLine,
    parse,
    photo_path,
    render,
    render_json,
)
from bots.core.channel import ChannelSettings, WorkerContext, channel_config
from bots.core.outbox import OutboxPolicy, deliver_outbox
from bots.core.worker import apology, handle_inbound
from kanal import streams
from kanal.errors import KanalError
from kanal.logging import get_logger
from kanal.messages import Expects, Outbound
from kanal.tasks import stop_tasks

log = get_logger(__name__)


class ConsoleSettings(ChannelSettings):
    """``KANAL_CONSOLE_*``. The console needs no credentials."""

    model_config = channel_config("KANAL_CONSOLE_")

    user: str = "console-user"


def reader(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], src: TextIO) -> None:
    """Feed ``src``'s lines to ``queue`` from a thread (works piped and interactive)."""
    try:
        for line in src:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, None)


def read_line(text: str, *, user: str, event_id: str) -> ConsoleLine:
    """The worker's I/O for one line: a ``/foto <path>`` file is read here, not in parse."""
    path_text = photo_path(text)
    if path_text is None:
        return ConsoleLine(text=text, user=user, event_id=event_id)
    path = Path(path_text).expanduser()
    try:
        if path.stat().st_size > MAX_FILE:
            return ConsoleLine(text=text, user=user, event_id=event_id, file_error="too_large")
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        return ConsoleLine(text=text, user=user, event_id=event_id, file_error=type(exc).__name__)
    return ConsoleLine(text=text, user=user, event_id=event_id, file=data, file_name=path.name)


class ConsoleWorker:
    def __init__(
        self,
        ctx: WorkerContext,
        settings: ConsoleSettings,
        *,
        src: TextIO | None = None,
        out: TextIO | None = None,
        json_mode: bool = False,
        exit_at_eof: bool = False,
        wait_s: float = 60.0,
        banner: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.user = settings.user
        self.src = src or sys.stdin
        self.out = out or sys.stdout
        self.json_mode = json_mode
        self.exit_at_eof = exit_at_eof
        self.wait_s = wait_s
        self.banner = banner
        self.conv = ctx.engine.keyring.pseudonym(CHANNEL, self.user)
        self.pending = 0
        self.settled = asyncio.Event()
        self.last: Outbound | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    def show(self, msg: Outbound) -> None:
        self.out.write((render_json(msg) if self.json_mode else render(msg)) + "\n")
        self.out.flush()
        if msg.kind == "reply":
            self.last = msg

    async def send(self, msg: Outbound) -> None:
        self.pending += msg.follow_up
        self.show(msg)

    async def from_outbox(self, msg: Outbound) -> None:
        self.show(msg)
        if msg.kind in ("tracking", "status"):
            self.pending = max(0, self.pending - 1)
            if self.pending == 0:
                self.settled.set()

    def polite(self, text: str) -> Outbound:
        last = self.last
        return Outbound(
            channel=CHANNEL,
            to=self.user,
            conv=self.conv,
            text=text,
            expects=last.expects if last else Expects.NONE,
            choices=last.choices if last else (),
        )

    async def line(self, raw: str, event_id: str) -> None:
        try:
            inbound = parse(read_line(raw, user=self.user, event_id=event_id))
        except ConsoleInputError as exc:
            log.info("console_bad_command", channel=CHANNEL, conv=self.conv)
            self.show(self.polite(exc.reply or ""))
            return
        try:
            await handle_inbound(self.ctx.engine, inbound, self.send)
        except KanalError:
            self.show(apology(inbound, self.conv, self.last))
        except Exception as exc:  # the worker loop's edge: log, answer politely, go on
            log.exception("inbound_crashed", channel=CHANNEL, error=type(exc).__name__)
            self.show(apology(inbound, self.conv, self.last))
        if self.pending:
            self.settled.clear()

    async def run(self) -> None:
        redis = self.ctx.redis
        group = f"console:{self.conv}"
        await streams.ensure_group(redis, streams.outbox(CHANNEL), group, start_id="$")
        policy = OutboxPolicy(
            claim_idle_ms=self.ctx.outbox_policy.claim_idle_ms,
            max_age_s=self.ctx.outbox_policy.max_age_s,
            block_ms=200,
        )
        outbox = asyncio.create_task(
            deliver_outbox(
                redis,
                CHANNEL,
                self.from_outbox,
                group=group,
                consumer="console",
                accept=lambda o: o.to == self.user,
                policy=policy,
            )
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=reader, args=(loop, queue, self.src), daemon=True).start()
        if self.banner:
            self.out.write(self.banner + "\n")
            self.out.flush()
        run_id = uuid.uuid4().hex[:12]
        n = 0
        try:
            while (raw := await queue.get()) is not None:
                n += 1
                await self.line(raw, f"{run_id}:{n}")
            if not self.exit_at_eof:
                await outbox  # keep printing what the bridge says until stopped
                return
            if self.pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.settled.wait(), timeout=self.wait_s)
            await asyncio.sleep(0.3)  # let a status update that just landed be printed
        finally:
            await stop_tasks([outbox])


def make_worker(ctx: WorkerContext, settings: ConsoleSettings) -> ConsoleWorker:
    return ConsoleWorker(ctx, settings)


__all__ = ["ConsoleSettings", "ConsoleWorker", "make_worker", "read_line", "reader"]
