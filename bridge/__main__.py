"""``python -m bridge``: the bridge alone (submitter, lookups, relay) until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from bridge.sandbox.server import AppServer
from kanal import logging as klog
from kanal.http import create_app
from kanal.runtime import Runtime
from kanal.settings import Settings


async def main() -> int:
    settings = Settings()
    klog.configure(level=settings.kanal.log_level, fmt=settings.kanal.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    consumer = os.environ.get("KANAL_CONSUMER") or f"bridge-{socket.gethostname()}"
    async with Runtime(settings, consumer=consumer, serves_http=True) as rt:
        http = AppServer(
            create_app(rt.routes()), host=settings.kanal.http_host, port=settings.kanal.http_port
        )
        await http.start()
        await stop.wait()
        await http.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
