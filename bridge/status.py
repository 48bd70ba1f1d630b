"""Status: answer "cek <nomor>" lookups and relay the CRM's updates back to the citizen.

Updates are pulled from ``servicerequestupdates.json`` (FixMyStreet-style) every
``poll_interval_s`` and deduplicated by ``update_id``; each one goes through the vault to the
channel the report came from. A lookup gets details only when the asker filed the report;
anyone else gets the public status without details.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bots.core.models import Expects, Outbound
from bridge.open311 import Open311Client
from bridge.submitter import request_key
from bridge.vault import Vault
from kanal import streams
from kanal.errors import PeerError
from kanal.logging import get_logger
from kanal.redis import Redis, get_str, hgetall_str

log = get_logger(__name__)

LOOKUP_GROUP = "bridge-lookups"
CURSOR_KEY = "kanal:relay:cursor"
SEEN_PREFIX = "kanal:relay:seen:"
SEEN_TTL_S = 90 * 24 * 3600

STATUS_TEXT = {
    "received": "diterima",
    "forwarded": "diteruskan ke kelurahan/dinas",
    "in_progress": "dalam pengerjaan",
    "resolved": "selesai",
    "rejected": "ditolak",
    "open": "sedang diproses",
    "closed": "selesai",
}


def status_text(code: str | None, open311_status: str | None = None) -> str:
    return STATUS_TEXT.get(code or "", STATUS_TEXT.get(open311_status or "", "sedang diproses"))


def update_message(srid: str, code: str | None, status: str, note: str | None) -> str:
    text = f"Kabar laporan {srid}: {status_text(code, status)}."
    if code == "rejected":
        text += f" Alasan: {note}" if note else ""
    elif note:
        text += f" Catatan petugas: {note}"
    if code == "resolved":
        text += " Terima kasih sudah melapor."
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
    ) -> None:
        self.redis = redis
        self.crm = crm
        self.vault = vault
        self.consumer = consumer
        self.poll_interval_s = poll_interval_s

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
        try:
            req = await self.crm.get_request(srid)
        except PeerError:
            text = "Maaf, status laporan belum bisa dicek saat ini. Coba lagi beberapa saat lagi."
        else:
            known = await hgetall_str(self.redis, request_key(srid))
            if req is None:
                text = f"Laporan dengan nomor {srid} tidak ditemukan. Periksa lagi nomornya."
            elif known.get("conv") == conv:
                text = f"Laporan {srid}: {status_text(known.get('status_code'), req.status)}."
                if req.status_notes:
                    text += f" Catatan: {req.status_notes}"
                if req.updated_datetime:
                    text += f" (diperbarui {req.updated_datetime.astimezone(UTC):%d-%m-%Y})"
            else:
                text = (
                    f"Laporan {srid}: {status_text(None, req.status)}. Rincian hanya dikirim "
                    "kepada pelapornya."
                )
        log.info("lookup_answered", conv=conv, service_request_id=srid)
        await self._send(contact.channel, contact.address, conv, text, srid, "status")

    # ---- relay --------------------------------------------------------------------------
    async def run_relay(self) -> None:
        while True:
            try:
                await self.poll_once()
            except PeerError as exc:
                log.warning("relay_poll_failed", status=exc.status)
            await asyncio.sleep(self.poll_interval_s)

    async def poll_once(self) -> int:
        cursor = await get_str(self.redis, CURSOR_KEY)
        since = datetime.fromisoformat(cursor) if cursor else datetime.now(UTC) - timedelta(days=1)
        updates = await self.crm.updates(since)
        relayed = 0
        newest = since
        for u in sorted(updates, key=lambda u: int(u.update_id)):
            newest = max(newest, u.updated_datetime)
            if await self.relay(
                u.update_id,
                u.service_request_id,
                u.external_status_code,
                u.status,
                u.description,
                u.media_url,
            ):
                relayed += 1
        # Overlap a little: clocks differ and dedup by update_id makes re-reads harmless.
        await self.redis.set(CURSOR_KEY, (newest - timedelta(seconds=5)).isoformat())
        return relayed

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
        contact = await self.vault.contact(conv) if conv else None
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(seen_key, "1", ex=SEEN_TTL_S)
            if conv and contact is not None:
                tx.hset(request_key(srid), mapping={"status_code": code or status})
                out = Outbound(
                    channel=contact.channel,
                    to=contact.address,
                    conv=conv,
                    text=update_message(srid, code, status, note),
                    expects=Expects.NONE,
                    tracking_id=srid,
                    media_url=media_url,
                    kind="update",
                )
                tx.xadd(streams.outbox(contact.channel), {"outbound": out.model_dump_json()})
            await tx.execute()
        if conv:
            log.info("update_relayed", conv=conv, service_request_id=srid, status=code or status)
        return bool(conv and contact)

    async def _send(
        self, channel: str, to: str, conv: str, text: str, srid: str, kind: str
    ) -> None:
        out = Outbound(channel=channel, to=to, conv=conv, text=text, tracking_id=srid, kind=kind)
        await self.redis.xadd(streams.outbox(channel), {"outbound": out.model_dump_json()})


__all__ = ["StatusService", "status_text", "update_message"]
