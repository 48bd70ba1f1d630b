"""``kanal run``: everything in one foreground process until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from bots.console.adapter import CHANNEL
from bots.console.chat import ConsoleChat, _reader
from bots.core.worker import deliver_outbox
from bridge.sandbox.server import AppServer
from kanal import streams
from kanal.http import create_app
from kanal.logging import get_logger
from kanal.runtime import Runtime, stop_tasks
from kanal.settings import Settings

log = get_logger(__name__)


async def run_main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Runtime(settings, serves_http=True, start_rasa=True) as rt:
        http = AppServer(
            create_app(rt.routes()), host=settings.kanal.http_host, port=settings.kanal.http_port
        )
        await http.start()
        log.info("kanal_started", http=http.url, crm_sandbox=not settings.crm.url)
        console_user = "console-user"
        chat = ConsoleChat(rt, user=console_user, json_mode=False, out=sys.stdout)
        group = f"console:{rt.keyring.pseudonym(CHANNEL, console_user)}"
        await streams.ensure_group(rt.redis, streams.outbox(CHANNEL), group, start_id="$")
        rt.spawn(
            "console-outbox",
            lambda: deliver_outbox(
                rt.redis,
                CHANNEL,
                chat.from_outbox,
                group=group,
                consumer="console",
                accept=lambda o: o.to == console_user,
            ),
        )
        print(
            f"Kanal berjalan. HTTP {http.url}, CRM {rt.crm_url}. "
            "Ketik pesan (mis. 'halo'); Ctrl-C untuk berhenti.",
            flush=True,
        )
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        import threading

        threading.Thread(target=_reader, args=(loop, queue, sys.stdin), daemon=True).start()
        n = 0

        async def console() -> None:
            nonlocal n
            while (raw := await queue.get()) is not None:
                n += 1
                await chat.line(raw, f"run:{id(queue)}:{n}")

        console_task = asyncio.create_task(console())
        await stop.wait()
        await stop_tasks([console_task])
        await http.stop()
        log.info("kanal_stopped")
    return 0


__all__ = ["run_main"]
