"""Signed webhooks between the CRM and the bridge: one scheme, used by both sides.

Modelled on Stripe's and GitHub's webhook signatures. The sender puts one header on the request::

    X-Kanal-Signature: t=1790000000,v1=5257a869e7ec…8d8bd   (64 hex digits)

``t`` is the sender's clock in Unix seconds and ``v1`` is the lowercase hex HMAC-SHA256, keyed
with the shared secret, of ``f"{t}.".encode() + raw_body``. While a secret is rotated the sender
may send one ``v1=`` per secret it holds; the receiver accepts the request if any of them matches
any secret it holds. Because the timestamp is signed, a captured request cannot be replayed once
it is older (or newer) than ``tolerance_s``. Unknown schemes (``v0=…``) are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Sequence
from typing import Literal

HEADER = "X-Kanal-Signature"
DEFAULT_TOLERANCE_S = 300
MAX_HEADER_CHARS = 2048

Verdict = Literal["ok", "missing", "malformed", "bad_signature", "stale"]

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def parse_secrets(value: str) -> list[str]:
    """A comma-separated setting (``CRM_WEBHOOK_SECRET``), newest first, blanks dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: float) -> str:
    """The ``X-Kanal-Signature`` value for ``body`` sent at ``now`` (Unix seconds)."""
    if not secret:
        raise ValueError("a webhook signature needs a non-empty secret")
    timestamp = str(int(now))
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def check(
    secrets: Sequence[str],
    body: bytes,
    header: str | None,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> Verdict:
    """Why a signed request is (not) acceptable: ``"ok"`` or the reason to refuse it.

    The signature is checked before the timestamp, so ``"stale"`` is only ever said of a
    request that was really signed with one of ``secrets`` (a replay or a skewed clock).
    """
    if not header or not header.strip():
        return "missing"
    if len(header) > MAX_HEADER_CHARS:
        return "malformed"
    timestamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return "malformed"
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value.lower())
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not candidates:
        return "malformed"
    if not all(_DIGEST.fullmatch(candidate) for candidate in candidates):
        return "malformed"
    timestamp = timestamps[0]
    matched = False
    for secret in (s for s in secrets if s):
        expected = _digest(secret, timestamp, body).encode()
        for candidate in candidates:
            # No early exit: the time taken does not say which secret or value matched.
            matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        return "bad_signature"
    if not math.isfinite(now) or abs(now - int(timestamp)) > tolerance_s:
        return "stale"
    return "ok"


def verify(
    secrets: Sequence[str],
    body: bytes,
    header: str | None,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``header`` is a valid, fresh signature of ``body`` under one of ``secrets``."""
    return check(secrets, body, header, now, tolerance_s) == "ok"


__all__ = [
    "DEFAULT_TOLERANCE_S",
    "HEADER",
    "Verdict",
    "check",
    "parse_secrets",
    "sign",
    "verify",
]
