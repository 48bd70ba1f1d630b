"""The e-mail channel: the city's public inbox (``EMAIL_ADDRESS``, dki@jakarta.go.id)."""

from __future__ import annotations

from bots.core.channel import Channel
from bots.email.adapter import CHANNEL as NAME
from bots.email.adapter import FORMAL, Thread, body, event_id, parse, render
from bots.email.mime import Letter, read
from bots.email.worker import CHANNEL_LIMITS, EmailSettings, EmailWorker, make_worker

CHANNEL = Channel(
    name=NAME,
    summary="The e-mail channel: the inbox read over IMAP (IDLE), replies in thread over SMTP.",
    settings=EmailSettings,
    worker=make_worker,
    limits=CHANNEL_LIMITS,
)

__all__ = [
    "CHANNEL",
    "FORMAL",
    "EmailSettings",
    "EmailWorker",
    "Letter",
    "Thread",
    "body",
    "event_id",
    "parse",
    "read",
    "render",
]
