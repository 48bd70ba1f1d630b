"""``kanal chat``: the console channel with the bridge, in this terminal, until end of input."""

from __future__ import annotations

import sys
from typing import TextIO

from bots.console import ConsoleSettings, ConsoleWorker
from kanal.app.runtime import Runtime
from kanal.settings import Settings


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
    interactive = src.isatty() and not json_mode
    async with Runtime(settings) as rt:
        worker = ConsoleWorker(
            rt.worker_context(),
            ConsoleSettings(user=user),
            src=src,
            out=out,
            json_mode=json_mode,
            exit_at_eof=True,
            wait_s=wait_s,
            banner=(
                "Kanal — ketik pesan Anda (Ctrl-D untuk keluar). /lokasi <lat> <lon>, /foto <path>"
                if interactive
                else None
            ),
        )
        await worker.run()
    return 0


__all__ = ["run_chat"]
