"""Signed, expiring media links: ``{KANAL_PUBLIC_URL}/media/{token}``.

The CRM receives a photo as a link it can open without an account. The token is 60
base64url characters (45 bytes)::

    version (1) | expires, Unix seconds (8) | media id (16) | HMAC-SHA256 (first 20 bytes)

signed with the keyring's newest key for this purpose only. Without the key nobody can make
one, and a change of any character makes it invalid (the encoding is checked to be the
canonical one, so no two spellings of a token exist). It expires; the route answers the same
404 for a forged, expired or unknown token, and never logs the token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import struct
import time
from collections.abc import Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kanal.errors import ConfigError, KanalError
from kanal.keys import Keyring
from kanal.mediastore import MediaStore, valid_media_id

log = structlog.get_logger(__name__)

_VERSION = 1
_HEAD = struct.Struct(">BQ16s")  # version, expires, media id
_MAC_BYTES = 20
_TOKEN_CHARS = 60  # (25 + 20) bytes * 4/3: a multiple of 3 bytes, so no padding, no spare bits
_PURPOSE = b"kanal media url v1\x00"
MAX_CACHE_S = 86_400


def _mac(keyring: Keyring, head: bytes) -> bytes:
    return bytes.fromhex(keyring.sign(_PURPOSE + head)[: _MAC_BYTES * 2])


def sign_token(media_id: str, keyring: Keyring, expires: int) -> str:
    """The token for ``media_id``, valid until the Unix time ``expires``."""
    if not valid_media_id(media_id):
        raise ValueError("not a media id")
    head = _HEAD.pack(_VERSION, expires, bytes.fromhex(media_id))
    return base64.urlsafe_b64encode(head + _mac(keyring, head)).decode("ascii")


def sign_media_url(public_url: str, media_id: str, keyring: Keyring, ttl_s: int, now: float) -> str:
    """``{public_url}/media/{token}``, valid for ``ttl_s`` seconds from ``now``."""
    if not public_url.strip():
        raise ConfigError("KANAL_PUBLIC_URL is not set: media links need a public address")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    token = sign_token(media_id, keyring, int(now) + int(ttl_s))
    return f"{public_url.strip().rstrip('/')}/media/{token}"


def _open(token: str, keyring: Keyring) -> tuple[str, int] | None:
    """(media id, expires) of an authentic token, whether or not it has expired."""
    if len(token) != _TOKEN_CHARS or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token)
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).decode("ascii") != token:
        return None  # stray characters or a second spelling of the same bytes
    head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
    macs = [bytes.fromhex(s[: _MAC_BYTES * 2]) for s in keyring.signatures(_PURPOSE + head)]
    if not any(hmac.compare_digest(mac, m) for m in macs):
        return None  # a link signed before a key rotation still opens
    version, expires, media_id = _HEAD.unpack(head)
    if version != _VERSION:
        return None
    return media_id.hex(), expires


def verify_token(token: str, keyring: Keyring, now: float) -> str | None:
    """The media id of an authentic, unexpired token; ``None`` otherwise."""
    opened = _open(token, keyring)
    if opened is None or now >= opened[1]:
        return None
    return opened[0]


def _not_found() -> Response:
    return Response(
        "Not Found", status_code=404, media_type="text/plain", headers={"Cache-Control": "no-store"}
    )


def media_route(
    store: MediaStore, keyring: Keyring, clock: Callable[[], float] = time.time
) -> Route:
    """``GET /media/{token}``: the stripped JPEG, or 404 (forged, expired and unknown alike)."""

    async def media(request: Request) -> Response:
        token = str(request.path_params["token"])
        now = clock()
        opened = _open(token, keyring)
        if opened is None or now >= opened[1]:
            log.info("media_refused", reason="invalid" if opened is None else "expired")
            return _not_found()
        media_id, expires = opened
        try:
            data = await asyncio.to_thread(store.get, media_id)
        except (KanalError, OSError) as exc:
            log.warning("media_store_failed", media_id=media_id, error=type(exc).__name__)
            return Response(
                "Service Unavailable",
                status_code=503,
                media_type="text/plain",
                headers={"Cache-Control": "no-store", "Retry-After": "30"},
            )
        if data is None:
            log.info("media_refused", reason="missing", media_id=media_id)
            return _not_found()
        max_age = max(0, min(int(expires - now), MAX_CACHE_S))
        headers = {
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": 'inline; filename="photo.jpg"',
        }
        return Response(data, media_type="image/jpeg", headers=headers)

    return Route("/media/{token}", media, methods=["GET"], name="media")


__all__ = ["MAX_CACHE_S", "media_route", "sign_media_url", "sign_token", "verify_token"]
