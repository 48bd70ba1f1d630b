"""Status: answer "cek <nomor>" lookups and relay the CRM's updates back to the citizen.

Updates are pulled from ``servicerequestupdates.json`` (FixMyStreet-style) every
``poll_interval_s`` and deduplicated by ``update_id``; each one goes through the vault to the
channel the report came from. A lookup gets details only when the asker filed the report;
anyone else gets the public status without details.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from redis.exceptions import WatchError

from bridge.open311 import Open311Client, ServiceRequestUpdate
from bridge.submitter import ledger_key, request_key
from bridge.vault import Vault
from kanal import metrics, streams
from kanal.errors import PeerError, PermanentPeerError, TemporaryPeerError
from kanal.logging import get_logger
from kanal.messages import Expects, Outbound
from kanal.notices import RATING_CHOICES, STATUS
from kanal.notices import notice as say
from kanal.redis import Redis, get_str, hgetall_str
from kanal.retry import backoff
from kanal.tasks import FailureStreak
from kanal.text import strip_html

log = get_logger(__name__)

LOOKUP_GROUP = "bridge-lookups"
RATING_GROUP = "bridge-ratings"
CURSOR_KEY = "kanal:relay:cursor"
SEEN_PREFIX = "kanal:relay:seen:"
SEEN_TTL_S = 90 * 24 * 3600

RATING_TTL_S = 14 * 24 * 3600
NOTE_LIMIT = 500  # an officer's note, as the citizen reads it
RELAY_BACKOFF_CAP_S = 300.0
CURSOR_OVERLAP = timedelta(seconds=60)
MIN_WINDOW = timedelta(seconds=1)
CLOSED_CODES = frozenset({"resolved", "rejected", "closed"})


def status_text(code: str | None, open311_status: str | None = None) -> str:
    return STATUS.get(code or "", STATUS.get(open311_status or "", STATUS["open"]))


def is_closed(code: str | None, status: str) -> bool:
    return (code or status) in CLOSED_CODES or (code is None and status == "closed")


def update_message(
    srid: str, code: str | None, status: str, note: str | None, media_url: str | None = None
) -> str:
    """The citizen's words for one status change; a closed report also asks for a rating."""
    text = say("update", tracking_id=srid, status=status_text(code, status))
    note = strip_html(note)[:NOTE_LIMIT] if note else None
    if note:
        text += say("update_reason" if code == "rejected" else "update_note", note=note)
    if media_url:  # a photo the officer attached: the proof of the work, or a look at it
        text += say("update_proof" if code == "resolved" else "update_photo", url=media_url)
    if is_closed(code, status):
        text += say("ask_rating")
    return text


class StatusService:
    def __init__(
        self,
        redis: Redis,
        crm: Open311Client,
        vault: Vault,
        *,
        consumer: str = "bridge-1",
        poll_interval_s: float = 30.0,
        window: timedelta = timedelta(days=1),
        page_limit: int = 1000,
    ) -> None:
        self.redis = redis
        self.crm = crm
        self.vault = vault
        self.consumer = consumer
        self.poll_interval_s = poll_interval_s
        self.window = window
        # A response this long may be a cut page (FixMyStreet's feeds stop at 1000).
        self.page_limit = page_limit

    # ---- lookups ------------------------------------------------------------------------
    async def run_lookups(self) -> None:
        async for entry_id, fields in streams.consume(
            self.redis, streams.LOOKUPS, LOOKUP_GROUP, self.consumer
        ):
            await self.answer(fields)
            await self.redis.xack(streams.LOOKUPS, LOOKUP_GROUP, entry_id)

    async def answer(self, fields: dict[str, str]) -> None:
        conv, srid = fields.get("conv", ""), fields.get("tracking_id", "")
        contact = await self.vault.contact(conv)
        if contact is None:
            log.error("lookup_without_contact", conv=conv)
            return
        if not srid:  # "cek status" without a number: this citizen's own recent reports
            text = await self._mine(conv, [c for c in fields.get("complaints", "").split(",") if c])
            log.info("lookup_answered", conv=conv, own=True)
            await self._send(contact.channel, contact.address, conv, text, "", "status")
            return
        try:
            req = await self.crm.get_request(srid)
        except PeerError:
            text = say("lookup_unavailable")
        else:
            known = await hgetall_str(self.redis, request_key(srid))
            if req is None:
                text = say("lookup_unknown", tracking_id=srid)
            elif known.get("conv") == conv:
                status = status_text(known.get("status_code"), req.status)
                text = say("lookup_owner", tracking_id=srid, status=status)
                if req.status_notes:
                    text += f" Catatan: {strip_html(req.status_notes)[:NOTE_LIMIT]}"
                if req.updated_datetime:
                    text += f" (diperbarui {req.updated_datetime.astimezone(UTC):%d-%m-%Y})"
            else:
                status = status_text(None, req.status)
                text = say("lookup_public", tracking_id=srid, status=status)
        log.info("lookup_answered", conv=conv, service_request_id=srid)
        await self._send(contact.channel, contact.address, conv, text, srid, "status")

    async def _mine(self, conv: str, complaint_ids: list[str]) -> str:
        lines: list[str] = []
        for cid in reversed(complaint_ids):  # newest first
            ledger = await hgetall_str(self.redis, ledger_key(cid))
            srid = ledger.get("service_request_id")
            if not srid:
                lines.append(say("lookup_pending"))
                continue
            known = await hgetall_str(self.redis, request_key(srid))
            if known.get("conv") != conv:
                continue
            status = status_text(known.get("status_code"), None)
            lines.append(say("lookup_owner", tracking_id=srid, status=status))
        return "\n".join(lines) if lines else say("lookup_none")

    # ---- ratings -----------------------------------------------------------------------
    async def run_ratings(self) -> None:
        async for entry_id, fields in streams.consume(
            self.redis, streams.RATINGS, RATING_GROUP, self.consumer
        ):
            srid, rating = fields.get("tracking_id", ""), fields.get("rating", "")
            attempt = 0
            while True:
                try:
                    await self.crm.post_rating(srid, int(rating))
                    log.info("rating_sent", service_request_id=srid, rating=rating)
                    break
                except TemporaryPeerError:
                    attempt += 1
                    await asyncio.sleep(backoff(attempt))
                except (PermanentPeerError, ValueError):
                    log.error("rating_refused", service_request_id=srid)
                    break
            await self.redis.xack(streams.RATINGS, RATING_GROUP, entry_id)

    # ---- relay --------------------------------------------------------------------------
    async def run_relay(self) -> None:
        streak = FailureStreak("relay", base_s=self.poll_interval_s, cap_s=RELAY_BACKOFF_CAP_S)
        while True:
            try:
                await self.poll_once()
            except PeerError as exc:
                await asyncio.sleep(streak.failed(exc))
                continue
            streak.ok()
            await asyncio.sleep(self.poll_interval_s)

    async def poll_once(self) -> int:
        """Relay what the CRM recorded since the cursor, window by window, in the order the
        updates happened (ties: the order the CRM listed them); dedup is by ``update_id``."""
        cursor = await get_str(self.redis, CURSOR_KEY)
        now = datetime.now(UTC)
        since = datetime.fromisoformat(cursor) if cursor else now - timedelta(days=1)
        relayed = 0
        window = self.window
        while since < now:
            end = min(now, since + window)
            updates, bad = await self.crm.updates(since, end)
            full = len(updates) + bad >= self.page_limit
            if full and end - since > MIN_WINDOW:
                # As many as a page holds: the CRM may have cut the list. Look closer.
                window = max(MIN_WINDOW, (end - since) / 2)
                log.info("relay_window_narrowed", seconds=window.total_seconds())
                continue
            if bad:
                metrics.RELAY_SKIPPED.labels("unparsable").inc(bad)
            ordered = sorted(enumerate(updates), key=lambda p: (p[1].updated_datetime, p[0]))
            for _, u in ordered:
                if await self.relay_update(u):
                    relayed += 1
            newest = max((u.updated_datetime for u in updates), default=since)
            # Still a full page in the narrowest window: go on from its newest update (the
            # start is inclusive and dedup skips what was relayed), unless that is no progress.
            since = newest if full and newest > since else end
            window = self.window
            # Overlap a little: clocks differ and dedup by update_id makes re-reads harmless.
            await self.redis.set(CURSOR_KEY, (since - CURSOR_OVERLAP).isoformat())
        return relayed

    async def relay_update(self, u: ServiceRequestUpdate) -> bool:
        """Relay one update from the poll or the webhook (the same update is relayed once)."""
        return await self.relay(
            u.update_id,
            u.service_request_id,
            u.external_status_code,
            u.status,
            u.description,
            u.media_url,
        )

    async def relay(
        self,
        update_id: str,
        srid: str,
        code: str | None,
        status: str,
        note: str | None,
        media_url: str | None,
    ) -> bool:
        seen_key = SEEN_PREFIX + str(update_id)
        if await self.redis.exists(seen_key):
            return False
        known = await hgetall_str(self.redis, request_key(srid))
        conv = known.get("conv")
        if not conv:
            # A request Kanal did not file (another channel of the city's): skip, count, go on.
            log.info("update_for_unknown_request", update_id=update_id, service_request_id=srid)
            metrics.RELAY_SKIPPED.labels("unknown_request").inc()
        contact = await self.vault.contact(conv) if conv else None
        if conv and contact is not None and await self.redis.exists(streams.unreachable_key(conv)):
            # The channel said this citizen is gone (blocked the bot, number gone): stop trying.
            log.info("update_not_sent_unreachable", conv=conv, service_request_id=srid)
            metrics.UNREACHABLE_SKIPPED.inc()
            contact = None
        closed = is_closed(code, status)
        async with self.redis.pipeline(transaction=True) as tx:
            # WATCH: a webhook and the poll relaying the same update at once send it once.
            await tx.watch(seen_key)
            if await tx.exists(seen_key):
                return False
            tx.multi()  # type: ignore[no-untyped-call]
            tx.set(seen_key, "1", ex=SEEN_TTL_S)
            if conv:
                tx.hset(request_key(srid), mapping={"status_code": code or status})
                if closed:
                    self.vault.report_closed(tx, conv, srid)
            if conv and contact is not None:
                out = Outbound(
                    channel=contact.channel,
                    to=contact.address,
                    conv=conv,
                    text=update_message(srid, code, status, note, media_url),
                    expects=Expects.RATING if closed else Expects.NONE,
                    choices=RATING_CHOICES if closed else (),
                    tracking_id=srid,
                    media_url=media_url,
                    kind="update",
                )
                tx.xadd(streams.outbox(contact.channel), {"outbound": out.model_dump_json()})
                if closed:
                    tx.set(streams.rating_key(conv), srid, ex=RATING_TTL_S)
            try:
                await tx.execute()
            except WatchError:
                return False
        if conv and contact is not None:
            metrics.RELAYED.inc()
        if conv:
            log.info("update_relayed", conv=conv, service_request_id=srid, status=code or status)
        return bool(conv and contact)

    async def _send(
        self, channel: str, to: str, conv: str, text: str, srid: str, kind: str
    ) -> None:
        out = Outbound(
            channel=channel, to=to, conv=conv, text=text, tracking_id=srid or None, kind=kind
        )
        await self.redis.xadd(streams.outbox(channel), {"outbound": out.model_dump_json()})


__all__ = ["StatusService", "status_text", "update_message"]
