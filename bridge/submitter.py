"""Files complaints from ``kanal:complaints`` into the CRM: exactly once, in order, never lost.

Each entry is read through a consumer group and acknowledged in the same MULTI/EXEC that records
the result (the ledger, the request→pseudonym map, the citizen's tracking message). The POST
carries the complaint id as its ``Idempotency-Key``, so a crash between the CRM's answer and that
transaction only causes a replay that the CRM answers with the same id. A 5xx or timeout is
retried with exponential backoff and jitter (and blocks the entries behind it, keeping order);
a 4xx parks the entry on ``kanal:complaints:parked`` and tells the citizen.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bridge.open311 import NewServiceRequest, Open311Client
from bridge.scrub import scrub
from bridge.vault import Vault
from kanal import metrics, streams
from kanal.categories import label
from kanal.errors import PermanentPeerError, TemporaryPeerError
from kanal.keys import Keyring
from kanal.logging import get_logger
from kanal.medialinks import sign_media_url
from kanal.mediastore import MediaStore
from kanal.messages import Complaint, Expects, Outbound
from kanal.notices import notice as say
from kanal.redis import Redis, hget_str
from kanal.redis import fields as redis_fields
from kanal.retry import backoff

log = get_logger(__name__)

GROUP = "bridge"
PARKED = streams.PARKED
LEDGER_TTL_S = 90 * 24 * 3600


def ledger_key(complaint_id: str) -> str:
    return f"kanal:ledger:{complaint_id}"


def request_key(service_request_id: str) -> str:
    return f"kanal:req:{service_request_id}"


@dataclass(frozen=True)
class MediaLinks:
    """How photos reach the CRM: signed links under KANAL_PUBLIC_URL, or (empty) the bytes."""

    store: MediaStore
    keyring: Keyring
    public_url: str = ""
    ttl_s: int = 30 * 86400

    def urls(self, c: Complaint) -> list[str]:
        if not self.public_url:
            return []
        # Signed as of the complaint's creation, so a retry sends the very same payload.
        now = c.created_at.timestamp()
        return [
            sign_media_url(self.public_url, media_id, self.keyring, self.ttl_s, now)
            for media_id in c.photos
        ]


def to_open311(c: Complaint, media_urls: list[str] | None = None) -> NewServiceRequest:
    """The CRM's view of a complaint: category, place, scrubbed story, pseudonym. No contact."""
    loc = c.location
    where = [scrub(loc.address)] if loc.address else []
    said = (loc.address or "").lower()
    where += (
        [f"Kel. {loc.kelurahan}"] if loc.kelurahan and loc.kelurahan.lower() not in said else []
    )
    where += (
        [f"Kec. {loc.kecamatan}"] if loc.kecamatan and loc.kecamatan.lower() not in said else []
    )
    where += [loc.kota] if loc.kota and loc.kota.lower() not in said else []
    attributes = {"channel": c.channel, "reporter": c.conv, "photo_count": str(len(c.photos))}
    if loc.kelurahan:
        attributes["kelurahan"] = loc.kelurahan
    if loc.kecamatan:
        attributes["kecamatan"] = loc.kecamatan
    urls = media_urls or []
    for i, url in enumerate(urls[1:], start=2):
        attributes[f"media_url_{i}"] = url
    return NewServiceRequest(
        service_code=c.category,
        lat=loc.lat,
        long=loc.lon,
        address_string=", ".join(where) or None,
        description=scrub(c.description)[:4000],
        media_url=urls[0] if urls else None,
        attributes=attributes,
    )


class Submitter:
    def __init__(
        self,
        redis: Redis,
        crm: Open311Client,
        vault: Vault,
        *,
        media: MediaLinks | None = None,
        consumer: str = "bridge-1",
        max_backoff_s: float = 60.0,
        base_backoff_s: float = 0.5,
    ) -> None:
        self.redis = redis
        self.crm = crm
        self.vault = vault
        self.media = media
        self.consumer = consumer
        self.max_backoff_s = max_backoff_s
        self.base_backoff_s = base_backoff_s

    async def run(self) -> None:
        async for entry_id, fields in streams.consume(
            self.redis, streams.COMPLAINTS, GROUP, self.consumer
        ):
            await self.process(entry_id, fields)

    async def process(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            complaint = Complaint.model_validate_json(fields["complaint"])
        except (KeyError, ValueError):
            log.error("complaint_unreadable", entry=entry_id)
            await self._park(entry_id, fields, reason="unreadable")
            return
        filed = await hget_str(self.redis, ledger_key(complaint.complaint_id), "service_request_id")
        if filed:
            log.info("complaint_already_filed", complaint_id=complaint.complaint_id)
            await self.redis.xack(streams.COMPLAINTS, GROUP, entry_id)
            return
        started = time.perf_counter()
        try:
            srid = await self._post_with_retry(complaint)
        except PermanentPeerError as exc:
            metrics.CRM_ERRORS.labels("permanent").inc()
            log.error(
                "complaint_rejected_by_crm",
                complaint_id=complaint.complaint_id,
                status=exc.status,
            )
            await self._park(entry_id, fields, reason=f"crm {exc.status}", complaint=complaint)
            return
        await self._record(entry_id, complaint, srid)
        metrics.FILED.labels(complaint.category).inc()
        log.info(
            "complaint_filed",
            complaint_id=complaint.complaint_id,
            service_request_id=srid,
            category=complaint.category,
            conv=complaint.conv,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _post_with_retry(self, complaint: Complaint) -> str:
        urls = self.media.urls(complaint) if self.media else []
        request = to_open311(complaint, urls)
        photo: bytes | None = None
        if self.media and complaint.photos and not urls:
            photo = await asyncio.to_thread(self.media.store.get, complaint.photos[0])
            if photo is None:
                log.warning("photo_missing", complaint_id=complaint.complaint_id)
        attempt = 0
        while True:
            try:
                return await self.crm.create_request(
                    request, idempotency_key=complaint.complaint_id, media=photo
                )
            except TemporaryPeerError as exc:
                metrics.CRM_ERRORS.labels("temporary").inc()
                attempt += 1
                delay = backoff(attempt, base_s=self.base_backoff_s, cap_s=self.max_backoff_s)
                log.warning(
                    "crm_unavailable",
                    complaint_id=complaint.complaint_id,
                    attempt=attempt,
                    status=exc.status,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _record(self, entry_id: str, c: Complaint, srid: str) -> None:
        contact = await self.vault.contact(c.conv)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(ledger_key(c.complaint_id), mapping={"service_request_id": srid})
            tx.expire(ledger_key(c.complaint_id), LEDGER_TTL_S)
            self.vault.report_filed(tx, c.conv, srid, c.complaint_id)
            tx.hset(
                request_key(srid),
                mapping={
                    "conv": c.conv,
                    "channel": c.channel,
                    "complaint_id": c.complaint_id,
                    "category": c.category,
                    "status_code": "received",
                },
            )
            if contact is not None:
                out = Outbound(
                    channel=contact.channel,
                    to=contact.address,
                    conv=c.conv,
                    text=say("tracking_sent", tracking_id=srid, label=label(c.category)),
                    expects=Expects.NONE,
                    tracking_id=srid,
                    kind="tracking",
                )
                tx.xadd(streams.outbox(contact.channel), {"outbound": out.model_dump_json()})
            tx.xack(streams.COMPLAINTS, GROUP, entry_id)
            await tx.execute()

    async def _park(
        self,
        entry_id: str,
        fields: dict[str, str],
        *,
        reason: str,
        complaint: Complaint | None = None,
    ) -> None:
        contact = await self.vault.contact(complaint.conv) if complaint else None
        async with self.redis.pipeline(transaction=True) as tx:
            tx.xadd(PARKED, redis_fields({**fields, "reason": reason, "entry": entry_id}))
            if complaint is not None:
                self.vault.report_parked(tx, complaint.conv, complaint.complaint_id)
            if complaint is not None and contact is not None:
                out = Outbound(
                    channel=contact.channel,
                    to=contact.address,
                    conv=complaint.conv,
                    text=say("parked"),
                    kind="tracking",
                )
                tx.xadd(streams.outbox(contact.channel), {"outbound": out.model_dump_json()})
            tx.xack(streams.COMPLAINTS, GROUP, entry_id)
            await tx.execute()


__all__ = ["GROUP", "PARKED", "MediaLinks", "Submitter", "ledger_key", "request_key", "to_open311"]
