"""The Telegram worker: updates in (long polling or webhook), replies and the outbox out.

**Polling** (the default): ``getUpdates`` with ``offset``, a long-poll ``timeout`` and
``allowed_updates``. An update's offset is confirmed (by the next call's ``offset``) only after
:func:`bots.core.worker.handle_inbound` returned for it, so a crash re-fetches it, and the
engine's dedup key answers it with the replies it already had, or with nothing.

**Webhook** (``TELEGRAM_WEBHOOK_URL`` set): ``setWebhook`` with ``secret_token``;
``POST /telegram/webhook`` refuses (401) a request without the right
``X-Telegram-Bot-Api-Secret-Token`` and handles nothing from it, and answers 200 only once the
update is on the Redis stream ``kanal:telegram:updates``. A consumer (a group, so replicas share
the work and a dead one's entries are claimed) runs each one as polling does and acks it after.
Going back to polling calls ``deleteWebhook``.

Either way an album (one ``media_group_id``) is one event; an update is handled once (dedup by
``update_id``: in memory, by the engine's key, and by a key for the polite one-line answers);
a 5xx or network error backs off and fetches the same updates again.

Sending (replies directly, the bridge's messages from ``kanal:outbox:telegram``) is
:class:`bots.telegram.bot.Sender`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import BotCommand
from telegram.error import (
    BadRequest,
    TelegramError,
)
from telegram.request import HTTPXRequest

from bots.core.channel import WorkerContext
from bots.core.outbox import deliver_outbox
from bots.core.worker import apology, handle_inbound
from bots.telegram.adapter import (
    ALLOWED_UPDATES,
    CHANNEL,
    COMMANDS,
    TelegramInputError,
    TelegramUpdate,
    album_id,
    merge_album,
    parse,
    update_kind,
    wanted_file,
)
from bots.telegram.bot import Sender, TelegramSettings, bot_call, map_error
from kanal import streams
from kanal.errors import (
    KanalError,
    PermanentPeerError,
    RecipientUnreachable,
    RetryAfter,
    TemporaryPeerError,
)
from kanal.logging import get_logger
from kanal.messages import Inbound, Outbound
from kanal.redis import get_str
from kanal.tasks import FailureStreak, stop_tasks

log = get_logger(__name__)

UPDATES = "kanal:telegram:updates"
UPDATES_GROUP = "telegram-receivers"
ANSWERED_TTL_S = 7 * 24 * 3600
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


def answered_key(update_id: int) -> str:
    return f"kanal:telegram:answered:{update_id}"


class TelegramWorker:
    def __init__(self, ctx: WorkerContext, settings: TelegramSettings) -> None:
        self.ctx = ctx
        self.redis = ctx.redis
        self.settings = settings
        self.sender = Sender(settings)
        self.bot = self.sender.bot
        self.reply = self.sender.reply
        self.poll_request = HTTPXRequest(read_timeout=settings.poll_timeout_s + 15)
        self.recent: OrderedDict[int, None] = OrderedDict()
        self.offset: int | None = None

    # ---- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> Sequence[BaseRoute]:
        if not self.settings.webhook_url:
            return ()
        return (Route("/telegram/webhook", self.webhook, methods=["POST"]),)

    async def webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        secret = self.settings.webhook_secret.get_secret_value()
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("telegram_webhook_refused", channel=CHANNEL, secret_given=bool(given))
            return Response(status_code=401)
        try:
            update = json.loads(await request.body())
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                raise ValueError("not an update")
        except ValueError:
            log.warning("telegram_webhook_bad_body", channel=CHANNEL)
            return Response(status_code=400)
        # Recorded before we say 200: Telegram forgets it once answered.
        await self.redis.xadd(UPDATES, {"update": json.dumps(update)})
        return JSONResponse({"ok": True})

    # ---- receiving ----------------------------------------------------------------------------
    async def run(self) -> None:
        await bot_call(self.bot.initialize)
        await self.poll_request.initialize()
        try:
            await bot_call(
                lambda: self.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
            )
            outbox = asyncio.create_task(
                deliver_outbox(
                    self.redis,
                    CHANNEL,
                    self.sender.send,
                    consumer=self.ctx.consumer,
                    policy=self.ctx.outbox_policy,
                )
            )
            try:
                if self.settings.webhook_url:
                    await bot_call(
                        lambda: self.bot.set_webhook(
                            self.settings.webhook_url,
                            secret_token=self.settings.webhook_secret.get_secret_value(),
                            allowed_updates=list(ALLOWED_UPDATES),
                        )
                    )
                    log.info("telegram_webhook_set", channel=CHANNEL)
                    await self.consume()
                else:
                    await bot_call(lambda: self.bot.delete_webhook(drop_pending_updates=False))
                    log.info("telegram_polling", channel=CHANNEL)
                    await self.poll()
            finally:
                await stop_tasks([outbox])
        finally:
            with contextlib.suppress(Exception):
                await self.poll_request.shutdown()
                await self.bot.shutdown()

    async def fetch(self, wait_s: int) -> list[dict[str, Any]]:
        """``getUpdates`` as the Bot API sends them: dicts, not PTB objects, so that an update
        PTB could not build (a shape it does not know) cannot stall the loop. Through PTB's own
        HTTP client, without the rate limiter (polling is not sending)."""
        query: dict[str, Any] = {"timeout": wait_s, "allowed_updates": json.dumps(ALLOWED_UPDATES)}
        if self.offset is not None:
            query["offset"] = self.offset
        try:
            status, body = await self.poll_request.do_request(
                f"{self.bot.base_url}/getUpdates?{urlencode(query)}",
                "GET",
                read_timeout=wait_s + 15,
            )
        except TelegramError as exc:
            raise map_error(exc) from None
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        if status == 200 and isinstance(doc, dict) and isinstance(doc.get("result"), list):
            return [u for u in doc["result"] if isinstance(u, dict) and "update_id" in u]
        if status == 429:
            params = doc.get("parameters") if isinstance(doc, dict) else None
            raise RetryAfter(float((params or {}).get("retry_after") or 1))
        log.warning("telegram_poll_failed", channel=CHANNEL, status=status)
        raise TemporaryPeerError("getUpdates failed", status=status)

    async def poll(self) -> None:
        streak = FailureStreak("telegram_poll", base_s=0.5, cap_s=60.0)
        while True:
            try:
                batch = await self.fetch(self.settings.poll_timeout_s)
                while batch and album_id(batch[-1]) and self.settings.album_wait_s > 0:
                    # An album may still be arriving: look again at the same offset.
                    await asyncio.sleep(self.settings.album_wait_s)
                    again = await self.fetch(0)
                    if len(again) <= len(batch):
                        break
                    batch = again
                for group in groups(batch):
                    await self.handle_group(group)
                    self.offset = max(u["update_id"] for u in group) + 1
                streak.ok()
            except KanalError as exc:
                if not exc.retryable:
                    raise
                await asyncio.sleep(streak.failed(exc))

    async def consume(self) -> None:
        """Webhook mode: the recorded updates, in order, each acked once handled."""
        await streams.ensure_group(self.redis, UPDATES, UPDATES_GROUP)
        streak = FailureStreak("telegram_updates", base_s=0.5, cap_s=60.0)
        consumer = self.ctx.consumer
        claim_ms = self.ctx.outbox_policy.claim_idle_ms
        while True:
            try:
                # Our own pending entries first (after a crash or a failed try), then what a
                # dead replica left, then new ones.
                entries = _entries(
                    await self.redis.xreadgroup(UPDATES_GROUP, consumer, {UPDATES: "0"}, count=100)
                )
                if not entries:
                    claimed = await self.redis.xautoclaim(
                        UPDATES, UPDATES_GROUP, consumer, claim_ms, "0-0", count=100
                    )
                    entries = [e for e in claimed[1] or [] if e[1]]
                if not entries:
                    entries = _entries(
                        await self.redis.xreadgroup(
                            UPDATES_GROUP, consumer, {UPDATES: ">"}, count=100, block=1000
                        )
                    )
                while entries and self.settings.album_wait_s > 0:
                    if not album_id(json.loads(entries[-1][1].get("update", "{}"))):
                        break
                    await asyncio.sleep(self.settings.album_wait_s)
                    more = _entries(
                        await self.redis.xreadgroup(
                            UPDATES_GROUP, consumer, {UPDATES: ">"}, count=100
                        )
                    )
                    if not more:
                        break
                    entries += more
                await self.handle_entries(entries)
                streak.ok()
            except KanalError as exc:
                if not exc.retryable:
                    raise
                await asyncio.sleep(streak.failed(exc))

    async def handle_entries(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        by_id: dict[int, str] = {}
        updates: list[dict[str, Any]] = []
        bad: list[str] = []
        for entry_id, fields in entries:
            try:
                update = json.loads(fields["update"])
                by_id.setdefault(int(update["update_id"]), entry_id)
                updates.append(update)
            except (KeyError, TypeError, ValueError):
                bad.append(entry_id)
        if bad:
            log.error("telegram_bad_entry", channel=CHANNEL, entries=len(bad))
            await self._ack(bad)
        for group in groups(updates):
            await self.handle_group(group)
            ids = [eid for eid, f in entries if _update_id(f) in {u["update_id"] for u in group}]
            await self._ack(ids)

    async def _ack(self, entry_ids: list[str]) -> None:
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=True) as tx:
            tx.xack(UPDATES, UPDATES_GROUP, *entry_ids)
            tx.xdel(UPDATES, *entry_ids)
            await tx.execute()

    # ---- one event ----------------------------------------------------------------------------
    async def handle_group(self, group: list[dict[str, Any]]) -> None:
        """One update, or the parts of one album. Returns once it is handled for good;
        raises a retryable error if it must be fetched again."""
        fresh = [u for u in group if u["update_id"] not in self.recent]
        parts: list[Inbound] = []
        for update in fresh:
            inbound = await self.parse_one(update)
            if inbound is not None:
                parts.append(inbound)
        if parts:
            await self.handle(merge_album(parts) if len(parts) > 1 else parts[0])
        for update in fresh:
            if "callback_query" in update:
                # The button stops spinning; an old query's refusal does not matter.
                with contextlib.suppress(KanalError):
                    await self.answer(str(update["callback_query"]["id"]))
            self.recent[update["update_id"]] = None
            while len(self.recent) > 10_000:
                self.recent.popitem(last=False)

    async def answer(self, query_id: str) -> None:
        await bot_call(lambda: self.bot.answer_callback_query(query_id))

    async def parse_one(self, update: dict[str, Any]) -> Inbound | None:
        kind = update_kind(update)
        try:
            files: dict[str, bytes] = {}
            file_id = wanted_file(update)
            if file_id is not None:
                data = await self.download(file_id)
                if data is not None:
                    files[file_id] = data
            inbound = parse(TelegramUpdate(update, files))
        except TelegramInputError as exc:
            await self.polite(update, exc)
            return None
        except (KeyError, TypeError, ValueError) as exc:  # a malformed update: log, go on
            log.warning("telegram_bad_update", channel=CHANNEL, kind=kind, error=type(exc).__name__)
            return None
        if inbound is None:
            log.debug("telegram_ignored", channel=CHANNEL, kind=kind)
        return inbound

    async def download(self, file_id: str) -> bytes | None:
        """The file's bytes; ``None`` if Telegram refuses it (too big, unknown)."""
        try:
            file = await self.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except BadRequest:
            log.info("telegram_file_refused", channel=CHANNEL)
            return None
        except TelegramError as exc:
            raise map_error(exc) from None

    async def polite(self, update: dict[str, Any], exc: TelegramInputError) -> None:
        """The one-line answer to what we cannot take, once per update."""
        key = answered_key(int(update["update_id"]))
        conv = self.ctx.engine.keyring.pseudonym(CHANNEL, str(exc.chat_id))
        log.info("telegram_bad_input", channel=CHANNEL, conv=conv, kind=exc.kind)
        if await get_str(self.redis, key):
            return
        out = Outbound(channel=CHANNEL, to=str(exc.chat_id), conv=conv, text=exc.reply or "")
        try:
            await self.reply(out.model_copy(update={"kind": "notice"}))
        except (RecipientUnreachable, PermanentPeerError):
            log.info("telegram_notice_refused", channel=CHANNEL, conv=conv)
        await self.redis.set(key, "1", ex=ANSWERED_TTL_S)

    async def handle(self, inbound: Inbound) -> None:
        conv = self.ctx.engine.keyring.pseudonym(CHANNEL, inbound.user_id)
        try:
            await handle_inbound(self.ctx.engine, inbound, self.reply)
        except (RecipientUnreachable, PermanentPeerError) as exc:
            # Recorded, but the chat refuses the reply: there is no one to answer again.
            log.warning("telegram_reply_refused", channel=CHANNEL, conv=conv, reason=exc.reason)
            await self.ctx.engine.delivered(inbound)
        except KanalError as exc:
            if exc.retryable:
                raise  # not confirmed: it comes again, and the engine replays its replies
            log.warning(
                "telegram_inbound_failed", channel=CHANNEL, conv=conv, error=type(exc).__name__
            )
            await self._apologise(inbound, conv)
        except Exception as exc:  # the loop's edge: log, answer politely, go on
            log.exception("inbound_crashed", channel=CHANNEL, conv=conv, error=type(exc).__name__)
            await self._apologise(inbound, conv)

    async def _apologise(self, inbound: Inbound, conv: str) -> None:
        with contextlib.suppress(KanalError):
            await self.reply(apology(inbound, conv))


def groups(updates: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Updates in order, the consecutive parts of one album together; each id once."""
    out: list[list[dict[str, Any]]] = []
    seen: set[int] = set()
    for update in updates:
        if update["update_id"] in seen:
            continue  # the same update twice in one batch
        seen.add(update["update_id"])
        key = album_id(update)
        if key is not None and out and album_id(out[-1][-1]) == key:
            out[-1].append(update)
        else:
            out.append([update])
    return out


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for _, entries in reply or []:
        out.extend((eid, f) for eid, f in entries if f)
    return out


def _update_id(fields: dict[str, str]) -> int | None:
    try:
        return int(json.loads(fields["update"])["update_id"])
    except (KeyError, TypeError, ValueError):
        return None


def make_worker(ctx: WorkerContext, settings: TelegramSettings) -> TelegramWorker:
    return TelegramWorker(ctx, settings)


__all__ = [
    "UPDATES",
    "TelegramWorker",
    "groups",
    "make_worker",
]
