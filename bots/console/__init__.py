"""The console channel: a terminal (``kanal chat``, ``kanal run``, ``python -m bots.console``)."""

from __future__ import annotations

from bots.console.adapter import CHANNEL as NAME
from bots.console.adapter import ConsoleInputError, ConsoleLine, parse, render, render_json
from bots.console.worker import ConsoleSettings, ConsoleWorker, make_worker
from bots.core.channel import Channel

CHANNEL = Channel(
    name=NAME,
    summary="The console channel: lines typed or piped on stdin, replies printed on stdout.",
    settings=ConsoleSettings,
    worker=make_worker,
)

__all__ = [
    "CHANNEL",
    "ConsoleInputError",
    "ConsoleLine",
    "ConsoleSettings",
    "ConsoleWorker",
    "parse",
    "render",
    "render_json",
]
