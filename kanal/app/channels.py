"""The channels Kanal knows, and how one is started, in ``kanal run`` or alone.

Adding a channel: its package under ``bots/`` (see :mod:`bots.core.channel`), its tests, and one
line in :data:`CHANNELS`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import socket
import sys
from collections.abc import Sequence

from starlette.routing import BaseRoute

from bots.core.channel import Channel, ChannelSettings, Worker
from bridge.sandbox.server import AppServer
from kanal import logging as klog
from kanal.app.runtime import Runtime
from kanal.http import create_app
from kanal.logging import get_logger
from kanal.settings import Settings

log = get_logger(__name__)

# One line per channel: the package that exposes ``CHANNEL``.
CHANNELS: tuple[str, ...] = (
    "bots.console",
    "bots.telegram",
    "bots.email",
    "bots.sms",
    "bots.twitter",
)


def load(module: str) -> Channel:
    spec = importlib.import_module(module).CHANNEL
    if not isinstance(spec, Channel):
        raise TypeError(f"{module}.CHANNEL is not a Channel")
    return spec


def configured(modules: Sequence[str] = CHANNELS) -> list[tuple[Channel, ChannelSettings]]:
    """Every channel whose settings turn it on, with those settings."""
    out = []
    for module in modules:
        spec = load(module)
        settings = spec.settings()
        if settings.enabled:
            out.append((spec, settings))
        else:
            log.info("channel_off", channel=spec.name, missing=",".join(settings.missing()))
    return out


def separate_worker_parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=(
            "Settings come from the environment or .env (see .env.example). A separate worker "
            "shares state with the others through REDIS_URL, which must be set. Stops cleanly "
            "on SIGINT/SIGTERM."
        ),
    )


def missing_error(prog: str, missing: Sequence[str]) -> int:
    names = ", ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    print(f"{prog}: error: {names} {verb} not set (see .env.example)", file=sys.stderr)
    return 2


def channel_main(module: str, argv: Sequence[str] | None = None) -> int:
    """``python -m bots.<channel>``: that channel alone, against ``REDIS_URL``."""
    spec = load(module)
    prog = f"python -m {module}"
    separate_worker_parser(prog, spec.summary).parse_args(argv)
    settings = Settings()
    channel_settings = spec.settings()
    missing = channel_settings.missing() + ([] if settings.redis.url else ["REDIS_URL"])
    if missing:
        return missing_error(prog, missing)
    klog.configure(level=settings.kanal.log_level, fmt=settings.kanal.log_format)
    return asyncio.run(_run_alone(settings, spec, channel_settings))


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: the process then stops what it started, cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _run_alone(settings: Settings, spec: Channel, channel_settings: ChannelSettings) -> int:
    stop = stop_on_signals()
    consumer = os.environ.get("KANAL_CONSUMER") or f"{spec.name}-{socket.gethostname()}"
    async with Runtime(settings, bridge=False, consumer=consumer) as rt:
        worker = spec.worker(rt.worker_context(), channel_settings)
        http = await serve(settings, [*rt.routes(), *worker.routes()])
        rt.spawn(f"channel:{spec.name}", worker.run)
        log.info("channel_started", channel=spec.name)
        await stop.wait()
        await http.stop()
    log.info("channel_stopped", channel=spec.name)
    return 0


async def serve(settings: Settings, routes: Sequence[BaseRoute]) -> AppServer:
    """The one HTTP app of this process: health, metrics and the routes of its roles."""
    http = AppServer(
        create_app(routes), host=settings.kanal.http_host, port=settings.kanal.http_port
    )
    await http.start()
    return http


def start_workers(rt: Runtime, found: Sequence[tuple[Channel, ChannelSettings]]) -> list[Worker]:
    """Build each configured channel's worker (their routes must be served before ``run``)."""
    ctx = rt.worker_context()
    return [spec.worker(ctx, channel_settings) for spec, channel_settings in found]


__all__ = [
    "CHANNELS",
    "channel_main",
    "configured",
    "load",
    "missing_error",
    "separate_worker_parser",
    "serve",
    "start_workers",
    "stop_on_signals",
]
