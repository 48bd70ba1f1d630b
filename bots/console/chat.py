"""``kanal chat``: the console channel's run loop, interactive or piped."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import uuid
from typing import TextIO

from bots.console.adapter import CHANNEL, ConsoleInputError, parse, render_json, render_text
from bots.core.models import Expects, Outbound
from bots.core.prompts import say
from bots.core.worker import deliver_outbox
from kanal import streams
from kanal.errors import KanalError
from kanal.logging import get_logger
from kanal.runtime import Runtime, stop_tasks
from kanal.settings import Settings

log = get_logger(__name__)


def _reader(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], src: TextIO) -> None:
    try:
        for line in src:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, None)


class ConsoleChat:
    def __init__(self, rt: Runtime, *, user: str, json_mode: bool, out: TextIO) -> None:
        self.rt = rt
        self.user = user
        self.json_mode = json_mode
        self.out = out
        self.pending = 0
        self.settled = asyncio.Event()
        self.last: Outbound | None = None

    def show(self, msg: Outbound) -> None:
        self.out.write((render_json(msg) if self.json_mode else render_text(msg)) + "\n")
        self.out.flush()
        if msg.kind == "reply":
            self.last = msg

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
            conv="",
            text=text,
            expects=last.expects if last else Expects.NONE,
            choices=last.choices if last else (),
        )

    async def line(self, raw: str, event_id: str) -> None:
        try:
            inbound = parse(raw, user=self.user, event_id=event_id)
        except ConsoleInputError as exc:
            log.info("console_bad_command", channel=CHANNEL)
            self.show(self.polite(exc.reply))
            return
        try:
            replies = await self.rt.engine.handle(inbound)
        except KanalError as exc:
            log.warning("inbound_failed", channel=CHANNEL, error=type(exc).__name__)
            self.show(self.polite(say("unavailable")))
            return
        except Exception as exc:  # the worker loop's edge: log, answer politely, go on
            log.exception("inbound_crashed", channel=CHANNEL, error=type(exc).__name__)
            self.show(self.polite(say("unavailable")))
            return
        for msg in replies:
            self.pending += msg.follow_up
            self.show(msg)
        if self.pending:
            self.settled.clear()


async def run_chat(
    settings: Settings,
    *,
    user: str,
    json_mode: bool,
    src: TextIO | None = None,
    out: TextIO | None = None,
    wait_s: float = 60.0,
) -> int:
    src = src or sys.stdin
    out = out or sys.stdout
    interactive = src.isatty() and not json_mode
    async with Runtime(settings) as rt:
        chat = ConsoleChat(rt, user=user, json_mode=json_mode, out=out)
        group = f"console:{rt.keyring.pseudonym(CHANNEL, user)}"
        await streams.ensure_group(rt.redis, streams.outbox(CHANNEL), group, start_id="$")
        outbox = asyncio.create_task(
            deliver_outbox(
                rt.redis,
                CHANNEL,
                chat.from_outbox,
                group=group,
                consumer="console",
                accept=lambda o: o.to == user,
                block_ms=200,
            )
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=_reader, args=(loop, queue, src), daemon=True).start()
        run_id = uuid.uuid4().hex[:12]
        n = 0
        if interactive:
            out.write(
                "Kanal — ketik pesan Anda (Ctrl-D untuk keluar). "
                "/lokasi <lat> <lon>, /foto <path>\n"
            )
            out.flush()
        while (raw := await queue.get()) is not None:
            n += 1
            await chat.line(raw, f"{run_id}:{n}")
        if chat.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chat.settled.wait(), timeout=wait_s)
        await asyncio.sleep(0.3)  # let a status update that just landed be printed
        await stop_tasks([outbox])
    return 0


__all__ = ["ConsoleChat", "run_chat"]
