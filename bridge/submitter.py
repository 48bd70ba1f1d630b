"""Files complaints from ``kanal:complaints`` into the CRM: exactly once, in order, never lost.

Each entry is read through a consumer group and acknowledged in the same MULTI/EXEC that records
the result (the ledger, the request→pseudonym map, the citizen's tracking message). The POST
carries the complaint id as its ``Idempotency-Key``, but most real CRMs ignore that key: so the
ledger notes when a report was first sent, and before any later POST of it (after a timeout, a
5xx, a crash) the bridge looks for the request it may already have filed (``GET requests.json``
in a window around that moment, with the report's service code, matched by the Kanal reference
at the end of the description and in ``attribute[kanal_ref]``). It posts again only when there
is none. A 5xx or timeout is retried with exponential backoff and jitter (and blocks the entries
behind it, keeping order); a 4xx parks the entry on ``kanal:complaints:parked`` and tells the
citizen. A 2xx is never a failure: a ``token`` (a CRM that queues requests) is polled on
``tokens/{token}.json`` until the id exists, and only then does the citizen get the number.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bridge.open311 import Created, NewServiceRequest, Open311Client
from bridge.scrub import scrub
from bridge.services import ServiceMap
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
from kanal.redis import Redis, hgetall_str
from kanal.redis import fields as redis_fields
from kanal.retry import backoff

log = get_logger(__name__)

GROUP = "bridge"
PARKED = streams.PARKED
# A CRM that answered 2xx with no id is asked this often to list the report, then it is parked.
MAX_UNLISTED_ATTEMPTS = 30
TOKENS = "kanal:crm:tokens"  # token → the complaint, while a queueing CRM has not given an id
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


def reference(complaint_id: str) -> str:
    """The short Kanal reference the CRM's copy carries, to find it again (not a person)."""
    return "KNL-" + complaint_id[:10].upper()


def reporter_reference(c: Complaint, keyring: Keyring | None, *, linkable: bool) -> str:
    """Who reported, as the CRM sees it. By default a reference of this report's own (keyed,
    so only Kanal can tie it to the reporter; two reports of one person share nothing). With
    ``KANAL_LINKABLE_REPORTER=true``, the stable pseudonym, for a city that counts repeats."""
    if linkable:
        return c.conv
    if keyring is None:
        return "r_" + c.complaint_id[:24]
    return "r_" + keyring.sign(f"reporter-ref:{c.complaint_id}".encode())[:24]


def to_open311(
    c: Complaint,
    media_urls: list[str] | None = None,
    *,
    service_code: str | None = None,
    reporter: str | None = None,
) -> NewServiceRequest:
    """The CRM's view of a complaint: category, place, scrubbed story, a reporter reference of
    its own (see :func:`reporter_reference`). No contact."""
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
    ref = reference(c.complaint_id)
    attributes = {
        "channel": c.channel,
        "reporter": reporter or reporter_reference(c, None, linkable=False),
        "photo_count": str(len(c.photos)),
        "kanal_ref": ref,
        "kanal_category": c.category,
    }
    if loc.kelurahan:
        attributes["kelurahan"] = loc.kelurahan
    if loc.kecamatan:
        attributes["kecamatan"] = loc.kecamatan
    urls = media_urls or []
    for i, url in enumerate(urls[1:], start=2):
        attributes[f"media_url_{i}"] = url
    tail = f"\n\n[Ref Kanal: {ref}]"
    return NewServiceRequest(
        service_code=service_code or c.category,
        lat=loc.lat,
        long=loc.lon,
        address_string=", ".join(where) or None,
        description=scrub(c.description)[: 4000 - len(tail)] + tail,
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
        services: ServiceMap | None = None,
        consumer: str = "bridge-1",
        max_backoff_s: float = 60.0,
        base_backoff_s: float = 0.5,
        token_poll_s: float = 5.0,
        lookup_window_s: float = 600.0,
        keyring: Keyring | None = None,
        linkable_reporter: bool = False,
    ) -> None:
        self.keyring = keyring
        self.linkable_reporter = linkable_reporter
        self.redis = redis
        self.crm = crm
        self.vault = vault
        self.media = media
        self.services = services or ServiceMap()
        self.consumer = consumer
        self.max_backoff_s = max_backoff_s
        self.base_backoff_s = base_backoff_s
        self.token_poll_s = token_poll_s
        self.lookup_window_s = lookup_window_s
        self._lookup_unsupported = False

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
        ledger = await hgetall_str(self.redis, ledger_key(complaint.complaint_id))
        if ledger.get("service_request_id"):
            log.info("complaint_already_filed", complaint_id=complaint.complaint_id)
            await self.redis.xack(streams.COMPLAINTS, GROUP, entry_id)
            return
        if ledger.get("token"):  # queued by the CRM before a crash: wait for its id
            await self._await_token(entry_id, complaint, ledger["token"])
            return
        started = time.perf_counter()
        try:
            created = await self._file(complaint, ledger.get("sent_at"))
        except PermanentPeerError as exc:
            metrics.CRM_ERRORS.labels("permanent").inc()
            log.error(
                "complaint_rejected_by_crm",
                complaint_id=complaint.complaint_id,
                status=exc.status,
                reason=exc.reason,
            )
            reason = f"crm {exc.status}" if exc.status else (exc.reason or "crm refused")
            await self._park(entry_id, fields, reason=reason, complaint=complaint)
            return
        if created.token and not created.service_request_id:
            await self._await_token(entry_id, complaint, created.token)
            return
        assert created.service_request_id
        srid = created.service_request_id
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

    async def _file(self, complaint: Complaint, sent_at: str | None) -> Created:
        """POST the report, or find the copy an earlier attempt already filed. Never posts a
        report twice on purpose: after the first send, every attempt looks up first."""
        urls = self.media.urls(complaint) if self.media else []
        keyring = self.keyring or (self.media.keyring if self.media else None)
        request = to_open311(
            complaint,
            urls,
            service_code=self.services.code(complaint.category),
            reporter=reporter_reference(complaint, keyring, linkable=self.linkable_reporter),
        )
        photo: bytes | None = None
        if self.media and complaint.photos and not urls:
            photo = await asyncio.to_thread(self.media.store.get, complaint.photos[0])
            if photo is None:
                log.warning("photo_missing", complaint_id=complaint.complaint_id)
        attempt = 0
        answered_without_id = False
        since = float(sent_at) if sent_at else None
        while True:
            try:
                if since is not None:
                    found = await self._find_filed(complaint, request.service_code, since)
                    if found:
                        return Created(service_request_id=found)
                    if answered_without_id:  # a 2xx said it was filed: never post it again
                        raise TemporaryPeerError("filed, not yet listed by the CRM")
                else:
                    since = time.time()
                    await self.redis.hset(ledger_key(complaint.complaint_id), "sent_at", str(since))
                    await self.redis.expire(ledger_key(complaint.complaint_id), LEDGER_TTL_S)
                if not answered_without_id:
                    created = await self.crm.create_request(
                        request, idempotency_key=complaint.complaint_id, media=photo
                    )
                    if created.service_request_id or created.token:
                        return created
                    answered_without_id = True
                    raise TemporaryPeerError("a 2xx without an id or a token")
            except TemporaryPeerError as exc:
                metrics.CRM_ERRORS.labels("temporary").inc()
                attempt += 1
                if answered_without_id and attempt > MAX_UNLISTED_ATTEMPTS:
                    raise PermanentPeerError(
                        "the CRM said it filed the report but never listed it",
                        reason="filed_without_id",
                    ) from exc
                delay = backoff(attempt, base_s=self.base_backoff_s, cap_s=self.max_backoff_s)
                log.warning(
                    "crm_unavailable",
                    complaint_id=complaint.complaint_id,
                    attempt=attempt,
                    status=exc.status,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _find_filed(
        self, complaint: Complaint, service_code: str, since: float
    ) -> str | None:
        """The CRM's copy of this report, if an earlier attempt filed it."""
        if self._lookup_unsupported:
            return None
        window = timedelta(seconds=self.lookup_window_s)
        start = datetime.fromtimestamp(since, UTC) - window
        try:
            found = await self.crm.find_requests(
                service_code=service_code, start_date=start, end_date=datetime.now(UTC) + window
            )
        except PermanentPeerError as exc:
            # This CRM cannot list requests: only its Idempotency-Key handling can help now.
            self._lookup_unsupported = True
            log.error("crm_lookup_unsupported", status=exc.status)
            return None
        ref = reference(complaint.complaint_id)
        for req in found:
            if ref in (req.description or ""):
                log.info(
                    "complaint_found_filed",
                    complaint_id=complaint.complaint_id,
                    service_request_id=req.service_request_id,
                )
                return req.service_request_id
        return None

    # ---- tokens (a CRM that queues requests) ------------------------------------------------
    async def _await_token(self, entry_id: str, c: Complaint, token: str) -> None:
        """The CRM took the report and will give it an id later: remember the token, poll it
        (``run_tokens``), and let the stream move on. The citizen has heard "diteruskan"."""
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(ledger_key(c.complaint_id), mapping={"token": token})
            tx.expire(ledger_key(c.complaint_id), LEDGER_TTL_S)
            tx.hset(TOKENS, token, c.model_dump_json())
            tx.xack(streams.COMPLAINTS, GROUP, entry_id)
            await tx.execute()
        metrics.TOKENS_WAITING.inc()
        log.info("complaint_queued_by_crm", complaint_id=c.complaint_id, conv=c.conv)

    async def run_tokens(self) -> None:
        """Poll every waiting token until its request has an id, then tell the citizen."""
        attempt = 0
        while True:
            try:
                await self.poll_tokens()
                attempt = 0
                await asyncio.sleep(self.token_poll_s)
            except TemporaryPeerError as exc:
                attempt += 1
                delay = backoff(attempt, base_s=self.token_poll_s, cap_s=self.max_backoff_s)
                log.warning("token_poll_failed", status=exc.status, retry_in_s=round(delay, 1))
                await asyncio.sleep(delay)

    async def poll_tokens(self) -> int:
        waiting = await hgetall_str(self.redis, TOKENS)
        done = 0
        for token, doc in waiting.items():
            try:
                c = Complaint.model_validate_json(doc)
            except ValueError:
                log.error("token_record_unreadable")
                await self.redis.hdel(TOKENS, token)
                continue
            try:
                srid = await self.crm.token(token)
            except PermanentPeerError as exc:
                log.error("token_refused", complaint_id=c.complaint_id, status=exc.status)
                continue
            if srid is None:
                continue
            await self._record(None, c, srid, token=token)
            metrics.FILED.labels(c.category).inc()
            metrics.TOKENS_WAITING.dec()
            log.info("complaint_filed", complaint_id=c.complaint_id, service_request_id=srid)
            done += 1
        return done

    async def _record(
        self, entry_id: str | None, c: Complaint, srid: str, *, token: str | None = None
    ) -> None:
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
            if entry_id is not None:
                tx.xack(streams.COMPLAINTS, GROUP, entry_id)
            if token is not None:
                tx.hdel(TOKENS, token)
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


__all__ = [
    "GROUP",
    "PARKED",
    "TOKENS",
    "MediaLinks",
    "Submitter",
    "ledger_key",
    "reference",
    "reporter_reference",
    "request_key",
    "to_open311",
]
