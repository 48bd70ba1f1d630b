"""The bot's side of the Bot API: settings, python-telegram-bot's ``ExtBot``, paced sending, and
Telegram's errors as the channel kit reads them.

Every call goes through python-telegram-bot's ``AIORateLimiter`` (one message each 1/30 s
overall, so never more than 30 in a second; 20 a minute in a group) and a per-chat bucket (one a
second, bursts of three). A 403 is :class:`RecipientUnreachable` (the outbox dead-letters it
once), a 429 is :class:`RetryAfter` with Telegram's ``retry_after``, a network error or a 5xx is
a :class:`TemporaryPeerError` (retried with backoff).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)
from telegram.error import RetryAfter as TelegramRetryAfter
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bots.core.channel import ChannelSettings, channel_config
from bots.core.outbox import Limiter, RateLimits
from bots.telegram.adapter import CHANNEL, SendCall, render
from kanal.errors import (
    KanalError,
    PermanentPeerError,
    RecipientUnreachable,
    RetryAfter,
    TemporaryPeerError,
)
from kanal.logging import get_logger
from kanal.messages import Outbound

log = get_logger(__name__)
# python-telegram-bot 22 warns on every RetryAfter until time periods are timedeltas; opt in to
# that (its announced future behaviour) instead of warning on each 429.
os.environ.setdefault("PTB_TIMEDELTA", "true")

# Telegram's published limits: ~30 messages a second overall, one a second in one chat (short
# bursts allowed), 20 a minute in a group.
LIMITS = RateLimits(per_s=30, per_recipient_per_s=1, burst=3)
GROUP_PER_MINUTE = 20
DIRECT_RETRIES = 3  # a reply hit by a 429 waits for retry_after this many times, then backs off


class TelegramSettings(ChannelSettings):
    """``TELEGRAM_*``: the bot token turns the channel on."""

    model_config = channel_config("TELEGRAM_")
    required = ("bot_token",)

    bot_token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.telegram.org"
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    poll_timeout_s: int = 25
    album_wait_s: float = 0.8

    def missing(self) -> list[str]:
        out = super().missing()
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            out.append("TELEGRAM_WEBHOOK_SECRET")  # a webhook anyone could post to: no
        return out


def map_error(exc: TelegramError) -> KanalError:
    """A Bot API error as the outbox and the loops read it. Never carries Telegram's message
    (it may quote the chat)."""
    if isinstance(exc, Forbidden):
        return RecipientUnreachable("blocked", status=403, reason="blocked")
    if isinstance(exc, TelegramRetryAfter):
        after = exc.retry_after
        seconds = after if isinstance(after, int | float) else after.total_seconds()
        return RetryAfter(float(seconds))
    if isinstance(exc, ChatMigrated):
        return RecipientUnreachable("chat migrated", status=400, reason="chat_migrated")
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower() or "user is deactivated" in exc.message.lower():
            return RecipientUnreachable("chat not found", status=400, reason="chat_not_found")
        return PermanentPeerError("bad request", status=400, reason="bad_request")
    if isinstance(exc, Conflict):
        return TemporaryPeerError("conflict", status=409)
    if isinstance(exc, InvalidToken):
        return TemporaryPeerError("invalid token", status=401)  # the operator fixes .env
    if isinstance(exc, NetworkError):
        return TemporaryPeerError(type(exc).__name__)
    return TemporaryPeerError(type(exc).__name__)


async def bot_call(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except TelegramError as exc:
        raise map_error(exc) from None


def make_bot(settings: TelegramSettings) -> ExtBot[int]:
    root = settings.api_base_url.rstrip("/")
    return ExtBot(
        settings.bot_token.get_secret_value(),
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=HTTPXRequest(connection_pool_size=32, read_timeout=15, connect_timeout=10),
        rate_limiter=AIORateLimiter(
            # One message every 1/30 s, not bursts of 30: within 30 in any second.
            overall_max_rate=1,
            overall_time_period=1 / (LIMITS.per_s or 30),
            group_max_rate=GROUP_PER_MINUTE,
            group_time_period=60,
            max_retries=0,  # a 429 reaches us: the outbox honours retry_after
        ),
    )


class Sender:
    """Sends what ``render`` makes of a message, paced, with Telegram's errors mapped."""

    def __init__(self, settings: TelegramSettings) -> None:
        self.bot = make_bot(settings)
        self.per_chat = Limiter(
            RateLimits(per_recipient_per_s=LIMITS.per_recipient_per_s, burst=LIMITS.burst)
        )

    # ---- sending ------------------------------------------------------------------------------
    async def call(self, c: SendCall) -> None:
        params = dict(c.params)
        markup = params.pop("reply_markup", None)
        kwargs = {"reply_markup": markup} if markup is not None else None
        if c.method == "sendPhoto":
            await bot_call(
                lambda: self.bot.send_photo(
                    params["chat_id"],
                    params["photo"],
                    caption=params.get("caption"),
                    api_kwargs=kwargs,
                )
            )
        else:
            await bot_call(
                lambda: self.bot.send_message(params["chat_id"], params["text"], api_kwargs=kwargs)
            )

    async def send(self, out: Outbound, *, retries: int = 0) -> None:
        """Every call of ``render(out)``, paced per chat. ``retries``: how often a 429 is waited
        out here (a reply to a citizen) before it propagates (the outbox waits itself)."""
        calls = render(out)
        done = 0
        while done < len(calls):
            await self.per_chat.wait(out.to)
            try:
                await self.call(calls[done])
            except RetryAfter as exc:
                if retries <= 0:
                    raise
                retries -= 1
                log.warning("telegram_flood_wait", channel=CHANNEL, conv=out.conv, s=exc.seconds)
                await asyncio.sleep(min(exc.seconds, 60.0))
                continue
            done += 1

    async def reply(self, out: Outbound) -> None:
        await self.send(out, retries=DIRECT_RETRIES)

    async def from_outbox(self, out: Outbound) -> None:
        await self.send(out)


__all__ = [
    "DIRECT_RETRIES",
    "LIMITS",
    "Sender",
    "TelegramSettings",
    "bot_call",
    "make_bot",
    "map_error",
]
