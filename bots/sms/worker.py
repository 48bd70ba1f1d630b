"""The SMS worker: Kannel's MO requests and delivery reports in, the outbox out via ``sendsms``.

Kannel is a push platform: its ``sms-service`` calls ``/sms/inbound`` and retries (smsbox's
``http-request-retry``) what is not answered 200. So the worker answers 200 only once the turn
is committed and its replies are queued on the outbox; when it cannot record the message (Redis
down, the conversation locked) it answers 503 and Kannel tries again with the same id, which the
engine's dedup makes harmless. A wrong or missing ``secret`` gets 401 and nothing is recorded.

Duplicates from the gateway are dropped twice over: by Kannel's message id (the engine's dedup
key) and by sender and text within ``SMS_DUPLICATE_WINDOW_S`` (a gateway that re-sends with a new
id). Kannel joins a concatenated MO before calling us; parts that arrive apart are handled one
by one, in the order they come.

SMS has no photo step: when the engine asks for a photo, the worker answers "lewati" for the
citizen, and the summary SMS carries an upload link instead (:mod:`bots.sms.upload`).
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Sequence

from prometheus_client import Counter
from pydantic import SecretStr
from redis.exceptions import RedisError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bots.core import prompts as p
from bots.core.channel import ChannelSettings, WorkerContext, channel_config
from bots.core.outbox import RateLimits, dead_letter, deliver_outbox
from bots.core.sessions import Step
from bots.core.worker import queue_replies
from bots.sms import upload as pages
from bots.sms.adapter import CHANNEL, MoRequest, decode_body, e164, parse
from bots.sms.kannel import DLR_NAMES, FINAL_FAILURES, Kannel
from bots.sms.render import render
from kanal.errors import KanalError, NotAnImage, RecipientUnreachable
from kanal.logging import get_logger
from kanal.media import MAX_BYTES, clean_image
from kanal.messages import Expects, Inbound, Outbound, PhotoIn
from kanal.redis import get_str, hgetall_str

log = get_logger(__name__)

LIMITS = RateLimits(per_s=50, burst=10)
MT_TTL_S = 3 * 24 * 3600
MAX_MO_BYTES = 64 * 1024
# Faster than this after our SMS, the same text again is the gateway's copy, not an answer.
HUMAN_REPLY_S = 1.0
SUMMARY_CHOICES = (p.CHOICE_SEND, p.CHOICE_FIX, p.CHOICE_CANCEL)

MO = Counter("kanal_sms_mo_total", "MO requests from Kannel", ["outcome"])
SEGMENTS = Counter("kanal_sms_segments_total", "SMS segments handed to Kannel", ["encoding"])
DLRS = Counter("kanal_sms_dlr_total", "Delivery reports from Kannel", ["status"])
UPLOADS = Counter("kanal_sms_uploads_total", "Upload page submissions", ["outcome"])


class SmsSettings(ChannelSettings):
    """``SMS_*``. On when Kannel's sendsms URL and the inbound secret are set."""

    model_config = channel_config("SMS_")
    required = ("kannel_sendsms_url", "inbound_secret")

    kannel_sendsms_url: str = ""
    kannel_username: str = ""
    kannel_password: SecretStr = SecretStr("")
    inbound_secret: SecretStr = SecretStr("")
    shortcode: str = "1708"
    # Where Kannel reaches this process (its dlr-url); empty: KANAL_PUBLIC_URL; both empty: no DLRs.
    callback_url: str = ""
    # Where citizens' phones reach the upload page; empty: KANAL_PUBLIC_URL; both empty: no links.
    upload_url: str = ""
    upload_ttl_minutes: float = 60.0
    duplicate_window_s: float = 10.0
    timeout_s: float = 10.0


class SmsWorker:
    def __init__(self, ctx: WorkerContext, settings: SmsSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.redis = ctx.redis
        self.engine = ctx.engine
        self.secret = settings.inbound_secret.get_secret_value()
        self.kannel = self._kannel()
        self.upload_base = (settings.upload_url or ctx.public_url).rstrip("/")
        self.tokens = pages.UploadTokens(
            ctx.redis, ctx.engine.keyring, ttl_s=settings.upload_ttl_minutes * 60
        )

    def _kannel(self) -> Kannel:
        s = self.settings
        return Kannel(
            s.kannel_sendsms_url,
            username=s.kannel_username,
            password=s.kannel_password.get_secret_value(),
            sender=s.shortcode,
            dlr_base=s.callback_url or self.ctx.public_url,
            secret=self.secret,
            timeout_s=s.timeout_s,
        )

    # ---- HTTP -------------------------------------------------------------------------------
    def routes(self) -> Sequence[BaseRoute]:
        return (
            Route("/sms/inbound", self.inbound, methods=["GET", "POST"]),
            Route("/sms/dlr", self.dlr, methods=["GET", "POST"]),
            Route("/u/{token}", self.upload, methods=["GET", "POST"]),
        )

    def _authorised(self, request: Request) -> bool:
        given = request.query_params.get("secret", "")
        return bool(self.secret) and _same(given, self.secret)

    async def inbound(self, request: Request) -> Response:
        if not self._authorised(request):
            MO.labels("refused").inc()
            log.warning("sms_inbound_refused", channel=CHANNEL)
            return PlainTextResponse("unauthorized\n", status_code=401)
        q = request.query_params
        text = q.get("text", "")
        if request.method == "POST":
            body = await request.body()
            if len(body) > MAX_MO_BYTES:
                MO.labels("too_large").inc()
                log.warning("sms_inbound_too_large", channel=CHANNEL, bytes=len(body))
                return PlainTextResponse("too large\n", status_code=413)
            coding = q.get("coding") or request.headers.get("x-kannel-coding", "")
            if body or not text:
                text = decode_body(body, request.headers.get("content-type", ""), coding)
        raw = MoRequest(
            sender=q.get("from", ""),
            receiver=q.get("to", ""),
            message_id=q.get("id", ""),
            text=text,
            ts=q.get("ts", ""),
        )
        try:
            outcome = await self.receive(raw)
        except (KanalError, RedisError, OSError) as exc:
            MO.labels("not_recorded").inc()
            log.warning("sms_inbound_not_recorded", channel=CHANNEL, error=type(exc).__name__)
            return PlainTextResponse("not recorded, try again\n", status_code=503)
        except Exception as exc:  # the edge: never a crash, and Kannel will try again
            MO.labels("crashed").inc()
            log.exception("sms_inbound_crashed", channel=CHANNEL, error=type(exc).__name__)
            return PlainTextResponse("error\n", status_code=500)
        MO.labels(outcome).inc()
        return PlainTextResponse("", status_code=200)

    # ---- MO ---------------------------------------------------------------------------------
    async def receive(self, raw: MoRequest) -> str:
        """Record one MO and queue its replies; the outcome, for the metrics."""
        number = e164(raw.sender)
        if number is None:
            log.info("sms_sender_not_a_number", channel=CHANNEL)
            return "ignored"
        conv = self.engine.keyring.pseudonym(CHANNEL, number)
        state = await self.engine.sessions.load(conv)
        inbound = parse(raw, choices=state.choices)
        if inbound is None:  # pragma: no cover  (e164 said it is a number)
            return "ignored"
        if await self._duplicate(conv, inbound):
            log.info("sms_duplicate_dropped", channel=CHANNEL, conv=conv)
            return "duplicate"
        await self.turn(inbound)
        return "recorded"

    async def _duplicate(self, conv: str, inbound: Inbound) -> bool:
        """The same text from the same sender within the window, under another message id.

        Unless the bot sent this citizen something in between, long enough ago for a person to
        have read it and answered (the same "1" to the next menu is an answer, not a copy).
        """
        window = self.settings.duplicate_window_s
        if window <= 0:
            return False
        now = time.time()
        mark = self.engine.keyring.sign(f"{conv}\n{inbound.text}".encode())[:32]
        key = f"kanal:sms:recent:{conv}:{mark}"
        value = f"{inbound.event_id}|{now}"
        if await self.redis.set(key, value, nx=True, px=int(window * 1000)):
            return False
        first = await get_str(self.redis, key)
        first_id, _, first_at = (first or "").rpartition("|")
        if not first_id or first_id == inbound.event_id:
            return False  # Kannel retrying the very message: the engine's dedup answers it
        last_mt = float(await get_str(self.redis, _last_mt_key(conv)) or 0)
        if last_mt > float(first_at or 0) and now - last_mt >= HUMAN_REPLY_S:
            await self.redis.set(key, value, px=int(window * 1000))
            return False
        return True

    async def turn(self, inbound: Inbound) -> list[Outbound]:
        """The engine's turn (and, for a photo question, the skip SMS cannot send), queued."""
        events = [inbound]
        replies = await self.engine.handle(inbound)
        if replies and replies[-1].expects == Expects.PHOTO:
            skip = inbound.model_copy(
                update={
                    "event_id": f"{inbound.event_id}:tanpa-foto",
                    "text": "lewati",
                    "photos": (),
                }
            )
            events.append(skip)
            replies = replies[:-1] + await self.engine.handle(skip)
        replies = [await self._with_link(out, inbound) for out in replies]
        await queue_replies(self.redis, replies)
        for event in events:
            await self.engine.delivered(event)
        return replies

    async def _with_link(self, out: Outbound, inbound: Inbound) -> Outbound:
        """The summary gets an upload link while the report can take another photo."""
        if not self.upload_base or out.expects != Expects.CONFIRM:
            return out
        if tuple(out.choices) != SUMMARY_CHOICES:
            return out
        state = await self.engine.sessions.load(out.conv)
        if state.step != Step.CONFIRM:
            return out
        if len(state.draft.photos) >= self.engine.config.max_photos:
            return out
        token = await self.tokens.mint(out.conv, inbound.user_id, repr(state.created_at))
        return out.model_copy(update={"media_url": f"{self.upload_base}/u/{token}"})

    # ---- MT ---------------------------------------------------------------------------------
    async def send(self, out: Outbound) -> None:
        sms = render(out)
        mt_id = uuid.uuid4().hex
        key = _mt_key(mt_id)
        await self.redis.hset(
            key,
            mapping={
                "conv": out.conv,
                "outbound": out.model_dump_json(),
                "sent_at": str(time.time()),
            },
        )
        await self.redis.expire(key, MT_TTL_S)
        try:
            await self.kannel.send(sms, out.to, mt_id)
        except RecipientUnreachable:
            if await self._first_failure(mt_id):
                raise  # the outbox dead-letters it
            return  # its delivery report came first and dead-lettered it already
        await self.redis.set(_last_mt_key(out.conv), str(time.time()), ex=3600)
        SEGMENTS.labels(sms.encoding).inc(sms.segments)
        log.info(
            "sms_sent",
            channel=CHANNEL,
            conv=out.conv,
            kind=out.kind,
            mt=mt_id,
            encoding=sms.encoding,
            segments=sms.segments,
        )

    async def _first_failure(self, mt_id: str) -> bool:
        return bool(await self.redis.set(_mt_key(mt_id) + ":failed", "1", nx=True, ex=MT_TTL_S))

    async def dlr(self, request: Request) -> Response:
        if not self._authorised(request):
            log.warning("sms_dlr_refused", channel=CHANNEL)
            return PlainTextResponse("unauthorized\n", status_code=401)
        mt_id = request.query_params.get("mt", "")[:64]
        try:
            status = int(request.query_params.get("status", ""))
        except ValueError:
            log.warning("sms_dlr_malformed", channel=CHANNEL)
            return PlainTextResponse("bad status\n", status_code=400)
        try:
            await self.record_dlr(mt_id, status)
        except (KanalError, RedisError, OSError) as exc:
            log.warning("sms_dlr_not_recorded", channel=CHANNEL, error=type(exc).__name__)
            return PlainTextResponse("not recorded\n", status_code=503)
        return PlainTextResponse("", status_code=200)

    async def record_dlr(self, mt_id: str, status: int) -> None:
        name = DLR_NAMES.get(status, f"other_{status}")
        record = await hgetall_str(self.redis, _mt_key(mt_id)) if mt_id else {}
        conv = record.get("conv", "")
        DLRS.labels(name).inc()
        await self.redis.xadd(
            "kanal:sms:dlr",
            {"mt": mt_id, "status": str(status), "conv": conv, "at": str(int(time.time()))},
            maxlen=100_000,
            approximate=True,
        )
        log.info("sms_dlr", channel=CHANNEL, conv=conv or None, mt=mt_id, status=name)
        if not record:
            log.warning("sms_dlr_unknown_message", channel=CHANNEL, mt=mt_id)
            return
        reason = FINAL_FAILURES.get(status)
        if reason and await self._first_failure(mt_id):
            out = Outbound.model_validate_json(record["outbound"])
            await dead_letter(
                self.redis, CHANNEL, record["outbound"], out, reason, entry=mt_id, gone=True
            )

    # ---- upload page ------------------------------------------------------------------------
    async def upload(self, request: Request) -> Response:
        token = request.path_params["token"]
        ticket = await self.tokens.get(token)
        if ticket is None:
            return _page(pages.UNKNOWN, 404)
        if ticket.state != "open":
            return _page(pages.USED, 410)
        if self.tokens.expired(ticket):
            return _page(pages.EXPIRED, 410)
        state = await self.engine.sessions.load(ticket.conv)
        if not state.active or repr(state.created_at) != ticket.draft:
            return _page(pages.CLOSED, 410)
        if request.method == "GET":
            return _page(pages.FORM, 200)
        return await self._take_photo(request, ticket)

    async def _take_photo(self, request: Request, ticket: pages.Ticket) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_BYTES + 64 * 1024:
            UPLOADS.labels("too_large").inc()
            return _page(pages.NOT_A_PHOTO, 413)
        try:
            form = await request.form(max_files=1, max_fields=2)
            file = form.get("foto")
            data = await file.read(MAX_BYTES + 1) if isinstance(file, UploadFile) else b""
            await form.close()
        except Exception as exc:  # malformed multipart: the citizen gets the form again
            log.info("sms_upload_malformed", channel=CHANNEL, error=type(exc).__name__)
            UPLOADS.labels("malformed").inc()
            return _page(pages.NOT_A_PHOTO, 400)
        try:
            # The same checks as every channel's photos (the engine stores it through them).
            await asyncio.to_thread(clean_image, data)
        except NotAnImage as exc:
            log.info("sms_upload_refused", channel=CHANNEL, conv=ticket.conv, reason=str(exc))
            UPLOADS.labels("not_a_photo").inc()
            return _page(pages.NOT_A_PHOTO, 400)
        claimed = await self.tokens.claim(ticket.token)
        if claimed != 1:
            return _page(pages.USED if claimed == 0 else pages.EXPIRED, 410)
        inbound = Inbound(
            channel=CHANNEL,
            user_id=ticket.number,
            event_id=f"upload:{ticket.token}",
            photos=(PhotoIn(data=data, filename="foto"),),
        )
        try:
            await self.turn(inbound)
        except (KanalError, RedisError, OSError) as exc:
            await self.tokens.release(ticket.token)
            log.warning("sms_upload_not_recorded", channel=CHANNEL, error=type(exc).__name__)
            UPLOADS.labels("not_recorded").inc()
            return _page(pages.BUSY, 503)
        UPLOADS.labels("ok").inc()
        log.info("sms_upload_received", channel=CHANNEL, conv=ticket.conv)
        return _page(pages.DONE, 200)

    # ---- run --------------------------------------------------------------------------------
    async def run(self) -> None:
        if self.kannel.http.is_closed:  # run again after a crash (supervised)
            self.kannel = self._kannel()
        if not self.kannel.dlr_base:
            log.warning("sms_no_delivery_reports", channel=CHANNEL)
        try:
            await deliver_outbox(
                self.redis,
                CHANNEL,
                self.send,
                consumer=self.ctx.consumer,
                limits=LIMITS,
                policy=self.ctx.outbox_policy,
            )
        finally:
            await self.kannel.aclose()


def _last_mt_key(conv: str) -> str:
    return f"kanal:sms:last_mt:{conv}"


def _mt_key(mt_id: str) -> str:
    return f"kanal:sms:mt:{mt_id}"


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


def _page(body: str, status: int) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=pages.HEADERS)


def make_worker(ctx: WorkerContext, settings: SmsSettings) -> SmsWorker:
    return SmsWorker(ctx, settings)


__all__ = ["LIMITS", "SmsSettings", "SmsWorker", "make_worker"]
