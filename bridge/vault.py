"""The identity vault: pseudonym → contact, encrypted at rest. Only the bridge opens it.

Bots seal the contact (``Keyring.encrypt``) into ``kanal:vault:<conv>`` when a citizen files a
report or asks for a status; the bridge opens it to route tracking numbers and status updates
back to the same channel. Nothing here is ever logged.

Retention: a contact is kept while any of its reports is open, and for ``retention_days`` after
the last one closed (or after it was last used, if it never filed one). :meth:`Vault.purge` then
deletes it; the bridge runs it every hour and ``kanal vault purge`` runs it by hand.
:meth:`Vault.rotate` re-encrypts every contact with the newest key of ``KANAL_SECRET_KEY``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from pydantic import BaseModel, ConfigDict

from kanal import streams
from kanal.keys import Keyring
from kanal.logging import get_logger
from kanal.redis import Redis, hget_str, hgetall_str

log = get_logger(__name__)


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    address: str
    language: str = "id"


def open_reports_key(conv: str) -> str:
    return streams.vault_key(conv) + ":open"


@dataclass(frozen=True)
class PurgeResult:
    scanned: int
    purged: int
    kept_open: int


class Vault:
    def __init__(
        self,
        redis: Redis,
        keyring: Keyring,
        *,
        retention_days: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.keyring = keyring
        self.retention_s = retention_days * 86400
        self.clock = clock

    async def contact(self, conv: str) -> Contact | None:
        sealed = await hget_str(self.redis, streams.vault_key(conv), "contact")
        if not sealed:
            return None
        try:
            return Contact.model_validate(json.loads(self.keyring.decrypt(sealed)))
        except (InvalidToken, ValueError):
            log.error("vault_unreadable", conv=conv)
            return None

    # Bookkeeping, queued on the caller's transaction so it commits with the effect it records.
    def report_filed(
        self, tx: Any, conv: str, service_request_id: str, complaint_id: str | None = None
    ) -> None:
        tx.sadd(open_reports_key(conv), service_request_id)
        if complaint_id:
            tx.hdel(streams.vault_key(conv), f"pending:{complaint_id}")

    def report_parked(self, tx: Any, conv: str, complaint_id: str) -> None:
        tx.hdel(streams.vault_key(conv), f"pending:{complaint_id}")
        tx.hset(streams.vault_key(conv), "closed_at", str(int(self.clock())))

    def report_closed(self, tx: Any, conv: str, service_request_id: str) -> None:
        tx.srem(open_reports_key(conv), service_request_id)
        tx.hset(streams.vault_key(conv), "closed_at", str(int(self.clock())))

    async def purge(self, *, dry_run: bool = False) -> PurgeResult:
        """Delete contacts past retention whose reports are all closed."""
        now = self.clock()
        scanned = purged = kept_open = 0
        async for key in self.redis.scan_iter(match="kanal:vault:*", count=500):
            name = str(key)
            if name.endswith(":open"):
                continue
            scanned += 1
            conv = name.removeprefix("kanal:vault:")
            if await self.redis.scard(open_reports_key(conv)):
                kept_open += 1
                continue
            record = await hgetall_str(self.redis, name)
            if any(field.startswith("pending:") for field in record):
                kept_open += 1  # a report not yet filed
                continue
            stamps = [float(record[f]) for f in ("closed_at", "touched_at") if f in record]
            if not stamps:  # written by something that did not stamp it: start the clock now
                await self.redis.hset(name, "touched_at", str(int(now)))
                continue
            if now - max(stamps) < self.retention_s:
                continue
            purged += 1
            if not dry_run:
                await self.redis.delete(name, open_reports_key(conv))
        log.info("vault_purged", scanned=scanned, purged=purged, kept_open=kept_open, dry=dry_run)
        return PurgeResult(scanned, purged, kept_open)

    async def rotate(self) -> int:
        """Re-encrypt every contact with the newest key; returns how many were rewritten."""
        rotated = 0
        async for key in self.redis.scan_iter(match="kanal:vault:*", count=500):
            name = str(key)
            if name.endswith(":open"):
                continue
            sealed = await hget_str(self.redis, name, "contact")
            if not sealed:
                continue
            try:
                fresh = self.keyring.fernet.rotate(sealed.encode()).decode()
            except InvalidToken:
                log.error("vault_unreadable", conv=name.removeprefix("kanal:vault:"))
                continue
            await self.redis.hset(name, "contact", fresh)
            rotated += 1
        log.info("vault_rotated", contacts=rotated)
        return rotated


__all__ = ["Contact", "PurgeResult", "Vault", "open_reports_key"]
