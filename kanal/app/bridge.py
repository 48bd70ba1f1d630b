"""``python -m bridge``: the bridge alone (submitter, lookups, relay, ratings, vault purge)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence

from kanal import logging as klog
from kanal.app.channels import missing_error, separate_worker_parser, serve, stop_on_signals
from kanal.app.runtime import Runtime
from kanal.settings import Settings

PROG = "python -m bridge"
DESCRIPTION = (
    "The bridge alone: files finished reports in the CRM (CRM_URL; empty: the local sandbox), "
    "relays its status updates to the citizens' channels and keeps the identity vault. "
    "Serves POST /crm/webhook and GET /media/... on KANAL_HTTP_HOST:KANAL_HTTP_PORT."
)


def main(argv: Sequence[str] | None = None) -> int:
    separate_worker_parser(PROG, DESCRIPTION).parse_args(argv)
    settings = Settings()
    if not settings.redis.url:
        return missing_error(PROG, ["REDIS_URL"])
    klog.configure(level=settings.kanal.log_level, fmt=settings.kanal.log_format)
    return asyncio.run(_run(settings))


async def _run(settings: Settings) -> int:
    stop = stop_on_signals()
    consumer = os.environ.get("KANAL_CONSUMER") or f"bridge-{socket.gethostname()}"
    async with Runtime(settings, consumer=consumer, serves_http=True) as rt:
        http = await serve(settings, rt.routes())
        await stop.wait()
        await http.stop()
    return 0


__all__ = ["main"]
