"""The Telegram channel: a bot on the Bot API (python-telegram-bot 22), polling or webhook.

Run by ``kanal run`` when ``TELEGRAM_BOT_TOKEN`` is set, alone by ``python -m bots.telegram``.
"""

from __future__ import annotations

from bots.core.channel import Channel
from bots.telegram.adapter import (
    CHANNEL as NAME,
)
from bots.telegram.adapter import (
    SendCall,
    TelegramInputError,
    TelegramUpdate,
    keyboard,
    merge_album,
    parse,
    render,
    wanted_file,
)
from bots.telegram.bot import LIMITS, TelegramSettings
from bots.telegram.worker import TelegramWorker, make_worker

CHANNEL = Channel(
    name=NAME,
    summary="The Telegram channel: a bot that takes reports in private chats (Bot API).",
    settings=TelegramSettings,
    worker=make_worker,
    limits=LIMITS,
)

__all__ = [
    "CHANNEL",
    "SendCall",
    "TelegramInputError",
    "TelegramSettings",
    "TelegramUpdate",
    "TelegramWorker",
    "keyboard",
    "merge_album",
    "parse",
    "render",
    "wanted_file",
]
