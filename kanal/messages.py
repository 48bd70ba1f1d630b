"""Typed messages that cross the engine's boundary: Inbound, Outbound, Complaint."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Expects(StrEnum):
    """What the bot waits for next; channels render it, tests and tools read it."""

    DESCRIPTION = "description"
    CATEGORY = "category"
    LOCATION = "location"
    PHOTO = "photo"
    CONFIRM = "confirm"
    RATING = "rating"
    NONE = "none"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeoPoint(_Frozen):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PhotoIn(_Frozen):
    """Raw bytes as the platform delivered them; validated and cleaned by the media store."""

    data: bytes
    filename: str | None = None


class Inbound(_Frozen):
    """One event from a citizen, as an adapter parsed it."""

    channel: str
    user_id: str
    event_id: str
    text: str = ""
    location: GeoPoint | None = None
    photos: tuple[PhotoIn, ...] = ()
    language: str = "id"
    received_at: datetime | None = None
    # A whole letter (an e-mail): the story, the address and the photos may all be in it. The
    # engine takes everything at once, asks only for what is missing, and files a complete one
    # without a confirmation question (the reply says how to correct it).
    whole: bool = False


class Outbound(_Frozen):
    """One message to a citizen. ``to`` is the platform address; ``conv`` the pseudonym."""

    channel: str
    to: str
    conv: str
    text: str
    expects: Expects = Expects.NONE
    choices: tuple[str, ...] = ()
    tracking_id: str | None = None
    media_url: str | None = None
    # "reply" to the citizen's own message; from the bridge: "tracking", "status", "update".
    kind: str = "reply"
    # How many bridge messages this reply promises (a tracking number, a status answer).
    follow_up: int = 0


class Location(_Frozen):
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    kelurahan: str | None = None
    kecamatan: str | None = None
    kota: str | None = None


class Complaint(_Frozen):
    """A finished report on ``kanal:complaints``. Carries no contact: only the pseudonym."""

    complaint_id: str
    conv: str
    channel: str
    category: str
    description: str
    location: Location
    photos: tuple[str, ...] = ()
    created_at: datetime


__all__ = ["Complaint", "Expects", "GeoPoint", "Inbound", "Location", "Outbound", "PhotoIn"]
