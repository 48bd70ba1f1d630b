"""The e-mail worker: the inbox of ``EMAIL_ADDRESS`` in (IMAP, imapclient), replies out
(SMTP, aiosmtplib).

Reading: at start, every unseen message already waiting is processed; then the worker waits
with IMAP IDLE (or polls, where the server lacks IDLE) and reconnects with backoff when the
connection drops. Processing is by UID, in order, with ``UIDVALIDITY`` remembered: a message
is marked ``\\Seen`` (and moved to ``EMAIL_PROCESSED_FOLDER`` if set) only after its event is
durably recorded, and its replies are queued on the outbox in the same transaction as the
turn (:func:`bots.core.worker.handle_queued`). A crash anywhere therefore loses no mail and
answers none twice: a message whose turn was recorded but not yet marked ``\\Seen`` is a
duplicate when it comes again.

Guards: auto-replies, bounces, lists, ``noreply`` senders and our own address are never
answered (:func:`bots.email.mime.read` says why); a bounce of one of our replies dead-letters
that conversation's mail; at most ``EMAIL_REPLIES_PER_HOUR`` letters a sender are answered
each hour (a storm beyond that is logged and counted, not answered); oversized mail and mail
with only unusable attachments get one polite answer.

Sending: the outbox sender writes each reply into its thread (``In-Reply-To``, ``References``,
the ``[Kanal #TOKEN]`` subject). A 4xx from the SMTP server is retried with backoff, a 5xx
for the recipient dead-letters the message; a dead server delays replies and loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from pydantic import SecretStr
from starlette.routing import BaseRoute

from bots.core.channel import ChannelSettings, WorkerContext, channel_config
from bots.core.outbox import RateLimits, dead_letter
from bots.core.worker import deliver_outbox, handle_queued, queue_once, within_hourly
from bots.email.adapter import (
    CHANNEL,
    NOT_ANSWERABLE,
    TOO_LARGE,
    Thread,
    new_token,
    parse,
    render,
)
from bots.email.mime import Letter, read
from kanal import metrics
from kanal.errors import (
    BadInput,
    KanalError,
    PermanentPeerError,
    RecipientUnreachable,
    TemporaryPeerError,
)
from kanal.logging import get_logger
from kanal.messages import Outbound
from kanal.redis import Redis, get_str
from kanal.tasks import FailureStreak, stop_tasks

log = get_logger(__name__)

THREAD_TTL_S = 400 * 24 * 3600  # a status update may come months later


class EmailSettings(ChannelSettings):
    """``EMAIL_*`` (see ARCHITECTURE.md). ``EMAIL_IMAP_HOST`` turns the channel on."""

    model_config = channel_config("EMAIL_")
    required = ("imap_host",)

    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: SecretStr = SecretStr("")
    imap_ssl: bool = True
    imap_folder: str = "INBOX"
    processed_folder: str = ""  # empty: leave processed mail in the inbox, marked \Seen
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    address: str = "dki@jakarta.go.id"
    max_mb: float = 25.0
    replies_per_hour: int = 10
    idle_s: float = 290.0  # re-issue IDLE before the server's 30-minute cut
    poll_s: float = 30.0  # servers without IDLE


def thread_key(conv: str) -> str:
    """Per-conversation channel state lives under ``kanal:conv:<conv>:…`` (forget removes it)."""
    return f"kanal:conv:{conv}:email"


def sent_key(message_id: str) -> str:
    """Our Message-ID → the conversation it went to (a bounce names the Message-ID)."""
    return "kanal:email:sent:" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


class EmailWorker:
    def __init__(self, ctx: WorkerContext, settings: EmailSettings) -> None:
        self.ctx = ctx
        self.s = settings
        self.redis: Redis = ctx.redis
        self.keyring = ctx.engine.keyring
        self.max_bytes = int(settings.max_mb * 1024 * 1024)
        self.reader_streak = FailureStreak("email_imap")
        self.uidvalidity_key = f"kanal:email:uidvalidity:{settings.imap_user or 'inbox'}"

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    # ---- reading ---------------------------------------------------------------------------
    async def run(self) -> None:
        outbox = asyncio.create_task(
            deliver_outbox(
                self.redis,
                CHANNEL,
                self.send,
                consumer=self.ctx.consumer,
                limits=CHANNEL_LIMITS,
                policy=self.ctx.outbox_policy,
            )
        )
        try:
            while True:
                try:
                    await self.read_inbox()
                except asyncio.CancelledError:
                    raise
                except (OSError, IMAPClientError, TemporaryPeerError, TimeoutError) as exc:
                    await asyncio.sleep(self.reader_streak.failed(exc))
        finally:
            await stop_tasks([outbox])

    async def read_inbox(self) -> None:
        """One IMAP session: process what waits, then IDLE (or poll) until the link drops."""
        client = await asyncio.to_thread(self._connect)
        try:
            idle = b"IDLE" in await asyncio.to_thread(client.capabilities)
            while True:
                await self.process_unseen(client)
                self.reader_streak.ok()
                if idle:
                    await asyncio.to_thread(self._idle, client)
                else:
                    await asyncio.sleep(self.s.poll_s)
                    await asyncio.to_thread(client.noop)
        finally:
            # Not LOGOUT from another thread while one may still wait in IDLE on this socket:
            # shut the socket, which ends that wait at once (a stop must not hang on IMAP).
            _close(client)

    def _connect(self) -> IMAPClient:
        context = ssl.create_default_context() if self.s.imap_ssl else None
        client = IMAPClient(
            self.s.imap_host,
            port=self.s.imap_port,
            ssl=self.s.imap_ssl,
            ssl_context=context,
            timeout=60,
        )
        client.login(self.s.imap_user, self.s.imap_password.get_secret_value())
        info = client.select_folder(self.s.imap_folder)
        self._uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        return client

    def _idle(self, client: IMAPClient) -> None:
        client.idle()
        try:
            client.idle_check(timeout=self.s.idle_s)
        finally:
            client.idle_done()

    async def process_unseen(self, client: IMAPClient) -> int:
        known = await get_str(self.redis, self.uidvalidity_key)
        if known and int(known) != self._uidvalidity:
            # The mailbox was rebuilt: UIDs mean other messages now. \Seen still tells what
            # was processed, and a message processed before is a duplicate by its Message-ID.
            log.warning("email_uidvalidity_changed", channel=CHANNEL)
        await self.redis.set(self.uidvalidity_key, str(self._uidvalidity))
        uids = sorted(await asyncio.to_thread(client.search, ["UNSEEN"]))
        for uid in uids:
            await self.process(client, uid)
        return len(uids)

    async def process(self, client: IMAPClient, uid: int) -> None:
        head = await asyncio.to_thread(client.fetch, [uid], ["RFC822.SIZE", "BODY.PEEK[HEADER]"])
        size = int(head.get(uid, {}).get(b"RFC822.SIZE", 0))
        if size > self.max_bytes:
            raw = bytes(head[uid].get(b"BODY[HEADER]", b""))
            letter = replace(read(raw, own_address=self.s.address), size=size)
            await self.too_large(letter)
        else:
            data = await asyncio.to_thread(client.fetch, [uid], ["BODY.PEEK[]"])
            raw = bytes(data.get(uid, {}).get(b"BODY[]", b""))
            await self.take(read(raw, own_address=self.s.address))
        await asyncio.to_thread(self._done, client, uid)

    def _done(self, client: IMAPClient, uid: int) -> None:
        """Only now is the message confirmed: \\Seen, or moved to the processed folder."""
        client.add_flags([uid], [b"\\Seen"])
        if self.s.processed_folder:
            client.move([uid], self.s.processed_folder)

    async def take(self, letter: Letter) -> None:
        """Record one letter: run it through the engine (replies queued) or say why not."""
        if letter.bounce_of:
            await self.bounced(letter)
            return
        if letter.auto is not None:
            log.info("email_not_answered", channel=CHANNEL, reason=letter.auto)
            metrics.EMAIL_IGNORED.labels(letter.auto).inc()
            return
        conv = self.keyring.pseudonym(CHANNEL, letter.sender)
        if not await self.within_rate(conv):
            log.warning("email_storm", channel=CHANNEL, conv=conv)
            metrics.EMAIL_IGNORED.labels("storm").inc()
            return
        await self.follow(conv, letter)
        try:
            inbound = parse(letter, max_photos=self.ctx.engine.config.max_photos)
        except BadInput as exc:
            log.info("email_unusable", channel=CHANNEL, conv=conv, attachments=len(letter.unusable))
            await self.answer(conv, letter, exc.reply or NOT_ANSWERABLE)
            return
        if inbound is None:
            return
        try:
            await handle_queued(self.ctx.engine, inbound)
        except KanalError as exc:
            raise TemporaryPeerError("engine busy: the letter waits unseen") from exc

    async def too_large(self, letter: Letter) -> None:
        log.info("email_too_large", channel=CHANNEL, bytes=letter.size)
        if letter.auto is not None or letter.bounce_of:
            return
        conv = self.keyring.pseudonym(CHANNEL, letter.sender)
        if await self.within_rate(conv):
            await self.follow(conv, letter)
            await self.answer(conv, letter, TOO_LARGE.format(mb=round(self.s.max_mb)))

    async def answer(self, conv: str, letter: Letter, text: str) -> None:
        """A reply of the worker's own (not the engine's), queued once: the letter's key and
        the outbox entry are written together, or neither (a redelivery is then a duplicate)."""
        digest = hashlib.sha256(letter.message_id.encode()).hexdigest()[:32]
        out = Outbound(channel=CHANNEL, to=letter.sender, conv=conv, text=text)
        if not await queue_once(self.redis, f"kanal:email:answered:{digest}", out):
            log.info("email_duplicate", channel=CHANNEL, conv=conv)

    async def within_rate(self, conv: str) -> bool:
        key = f"kanal:email:rate:{conv}"
        return await within_hourly(self.redis, key, self.s.replies_per_hour, time.time())

    async def bounced(self, letter: Letter) -> None:
        """A bounce of one of our replies: that conversation's mail goes to the dead letters."""
        for message_id in letter.bounce_of:
            conv = await get_str(self.redis, sent_key(message_id))
            if not conv:
                continue
            gone = Outbound(channel=CHANNEL, to="", conv=conv, text="", kind="bounce")
            await dead_letter(self.redis, CHANNEL, "", gone, "bounced", gone=True)
            log.warning("email_bounced", channel=CHANNEL, conv=conv)
            return
        log.info("email_not_answered", channel=CHANNEL, reason="bounce_unknown")

    # ---- threads ---------------------------------------------------------------------------
    async def thread(self, conv: str) -> Thread | None:
        sealed = await self.redis.hget(thread_key(conv), "current")
        return self._open(sealed)

    def _open(self, sealed: Any) -> Thread | None:
        if not sealed:
            return None
        try:
            doc = json.loads(
                self.keyring.decrypt(sealed if isinstance(sealed, str) else sealed.decode())
            )
            return Thread(
                token=doc["token"],
                subject=doc["subject"],
                last_id=doc.get("last_id"),
                references=tuple(doc.get("references", ())),
                sent=tuple(doc.get("sent", ())),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("email_thread_unreadable", channel=CHANNEL)
            return None

    def _seal(self, thread: Thread) -> str:
        return self.keyring.encrypt(json.dumps(asdict(thread)).encode())

    async def follow(self, conv: str, letter: Letter) -> Thread:
        """The thread ``letter`` belongs to: the current one if it answers it, else a new one."""
        current = await self.thread(conv)
        refs = _last((*letter.references, letter.message_id))
        if current is not None and current.follows(letter):
            thread = replace(current, last_id=letter.message_id, references=refs)
        else:
            thread = Thread(
                token=new_token(),
                subject=_subject(letter.subject),
                last_id=letter.message_id,
                references=refs,
            )
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(thread_key(conv), "current", self._seal(thread))
            tx.expire(thread_key(conv), THREAD_TTL_S)
            await tx.execute()
        return thread

    async def thread_for(self, out: Outbound) -> Thread:
        """Where a reply goes: the thread of its report (a status update months later), or the
        conversation's current thread."""
        if out.tracking_id and out.kind != "tracking":
            sealed = await self.redis.hget(thread_key(out.conv), f"report:{out.tracking_id}")
            found = self._open(sealed)
            if found is not None:
                return found
        current = await self.thread(out.conv)
        return current or Thread(token=new_token(), subject="Laporan Anda")

    # ---- sending ---------------------------------------------------------------------------
    async def send(self, out: Outbound) -> None:
        thread = await self.thread_for(out)
        domain = self.s.address.partition("@")[2] or "kanal.invalid"
        message_id = make_msgid(domain=domain)
        now = datetime.now(UTC)
        msg = render(out, thread, sender=self.s.address, now=now, message_id=message_id)
        await self.deliver(msg, out)
        # The thread goes on from our message: the next reply answers it.
        after = replace(
            thread,
            last_id=message_id,
            references=_last((*thread.references, message_id)),
            sent=_last((*thread.sent, message_id)),
        )
        current = await self.thread(out.conv)
        key = thread_key(out.conv)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(sent_key(message_id), out.conv, ex=30 * 24 * 3600)
            if current is None or current.token == thread.token:
                tx.hset(key, "current", self._seal(after))
            if out.tracking_id:
                tx.hset(key, f"report:{out.tracking_id}", self._seal(after))
            tx.expire(key, THREAD_TTL_S)
            await tx.execute()

    async def deliver(self, msg: EmailMessage, out: Outbound) -> None:
        if not self.s.smtp_host:
            raise TemporaryPeerError("EMAIL_SMTP_HOST is not set: replies wait")
        try:
            await aiosmtplib.send(
                msg,
                hostname=self.s.smtp_host,
                port=self.s.smtp_port,
                username=self.s.smtp_user or None,
                password=self.s.smtp_password.get_secret_value() or None,
                start_tls=self.s.smtp_starttls and not self.s.smtp_ssl,
                use_tls=self.s.smtp_ssl,
                timeout=30,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(500 <= c < 600 for c in codes):
                raise RecipientUnreachable(
                    "recipient refused", status=codes[0], reason="smtp_5xx"
                ) from exc
            raise TemporaryPeerError("recipient deferred") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentPeerError(
                    "smtp refused", status=exc.code, reason="smtp_5xx"
                ) from exc
            raise TemporaryPeerError("smtp deferred", status=exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryPeerError(f"smtp unavailable: {type(exc).__name__}") from exc


def _last(ids: tuple[str, ...], keep: int = 10) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))[-keep:]


def _subject(subject: str) -> str:
    from bots.email.mime import _SUBJECT_NOISE, _TOKEN

    clean = _SUBJECT_NOISE.sub("", _TOKEN.sub("", subject)).strip()
    return clean[:120] or "Laporan Anda"


def _close(client: IMAPClient) -> None:
    with contextlib.suppress(OSError, IMAPClientError, AttributeError):
        client.socket().shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError, IMAPClientError, AttributeError):
        client.socket().close()


CHANNEL_LIMITS = RateLimits(per_s=5.0, per_recipient_per_s=1.0, burst=5)


def make_worker(ctx: WorkerContext, settings: EmailSettings) -> EmailWorker:
    return EmailWorker(ctx, settings)


__all__ = [
    "CHANNEL_LIMITS",
    "EmailSettings",
    "EmailWorker",
    "make_worker",
    "sent_key",
    "thread_key",
]
