"""Typed records of the sandbox CRM: what is submitted, stored and reported as an update."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kanal.errors import KanalError

ExternalStatus = Literal["received", "forwarded", "in_progress", "resolved", "rejected"]
OpenStatus = Literal["open", "closed"]
OFFICER_STATUSES: tuple[ExternalStatus, ...] = ("forwarded", "in_progress", "resolved", "rejected")
CLOSED_STATUSES: frozenset[str] = frozenset({"resolved", "rejected"})

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so text order is time order


class IdempotencyKeyReused(KanalError):
    """The idempotency key was already used with a different payload (HTTP 422)."""


class UnknownRequest(KanalError, LookupError):
    """No service request has this id (HTTP 404)."""


class NewRequest(BaseModel):
    """What a citizen-facing client submitted; personal fields are never part of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    description: str | None = None
    media_url: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        """A stable hash of the payload, for idempotency checks."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class StoredRequest(NewRequest):
    """A service request as the CRM keeps it."""

    id: int
    status: OpenStatus
    external_status_code: ExternalStatus
    status_notes: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    rating: int | None


class StoredUpdate(BaseModel):
    """One status change of a service request."""

    model_config = ConfigDict(frozen=True)

    update_id: int
    request_id: int
    status: OpenStatus
    external_status_code: ExternalStatus
    description: str
    media_url: str | None
    updated_datetime: datetime


def format_ts(moment: datetime) -> str:
    """UTC timestamp text as stored (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


__all__ = [
    "CLOSED_STATUSES",
    "OFFICER_STATUSES",
    "ExternalStatus",
    "IdempotencyKeyReused",
    "NewRequest",
    "OpenStatus",
    "StoredRequest",
    "StoredUpdate",
    "UnknownRequest",
    "format_ts",
]
