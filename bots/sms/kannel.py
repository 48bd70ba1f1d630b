"""Kannel's HTTP side: ``/cgi-bin/sendsms`` for mobile-terminated SMS, and its delivery reports.

``sendsms`` answers ``202 0: Accepted for delivery`` (or ``3: Queued for later delivery``); a
``403 Not routable`` means no SMSC will ever take that number (the recipient is unreachable);
Kannel unreachable, a ``5xx`` or a refused login delays the message and loses none (the outbox
retries with backoff). Each message asks for delivery reports (``dlr-mask``) at our ``dlr-url``,
which carries our own message id and Kannel's ``%d`` status.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from bots.sms.render import Sms
from kanal.errors import PermanentPeerError, RecipientUnreachable, TemporaryPeerError
from kanal.logging import get_logger

log = get_logger(__name__)

# Kannel's DLR types (%d): what a report says happened to a message.
DELIVERED, FAILED, BUFFERED, SMSC_ACCEPTED, SMSC_REJECTED = 1, 2, 4, 8, 16
DLR_MASK = DELIVERED | FAILED | SMSC_ACCEPTED | SMSC_REJECTED
FINAL_FAILURES = {FAILED: "dlr_failed", SMSC_REJECTED: "dlr_rejected"}
DLR_NAMES = {
    DELIVERED: "delivered",
    FAILED: "failed",
    BUFFERED: "buffered",
    SMSC_ACCEPTED: "smsc_accepted",
    SMSC_REJECTED: "smsc_rejected",
}


class Kannel:
    """A thin ``sendsms`` client (httpx)."""

    def __init__(
        self,
        sendsms_url: str,
        *,
        username: str,
        password: str,
        sender: str,
        dlr_base: str = "",
        secret: str = "",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = sendsms_url
        self.username = username
        self.password = password
        self.sender = sender
        self.dlr_base = dlr_base.rstrip("/")
        self.secret = secret
        self.http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    def dlr_url(self, mt_id: str) -> str:
        return f"{self.dlr_base}/sms/dlr?secret={quote(self.secret, safe='')}&mt={mt_id}&status=%d"

    async def send(self, sms: Sms, to: str, mt_id: str) -> None:
        params = {
            "username": self.username,
            "password": self.password,
            "from": self.sender,
            "to": to,
            **sms.params(),
        }
        if self.dlr_base:
            params["dlr-mask"] = str(DLR_MASK)
            params["dlr-url"] = self.dlr_url(mt_id)
        try:
            r = await self.http.get(self.url, params=params)
        except httpx.TransportError as exc:
            raise TemporaryPeerError(f"kannel unreachable: {type(exc).__name__}") from exc
        check(r.status_code, r.text)

    async def aclose(self) -> None:
        await self.http.aclose()


def check(status: int, body: str) -> None:
    """Raise what a ``sendsms`` answer means for the message (nothing: Kannel took it)."""
    said = body.strip().lower()
    if 200 <= status < 300:
        return
    if status == 403 and "not routable" in said:
        raise RecipientUnreachable("kannel: not routable", status=status, reason="not_routable")
    if status in (401, 403) or "authorization" in said:
        # Our credentials, not the message: keep it until the operator fixes the login.
        log.error("sms_kannel_login_refused", status=status)
        raise TemporaryPeerError("kannel refused the login", status=status)
    if status >= 500 or status in (408, 429):
        raise TemporaryPeerError("kannel error", status=status)
    raise PermanentPeerError("kannel refused the message", status=status, reason=f"http_{status}")


__all__ = [
    "DLR_MASK",
    "DLR_NAMES",
    "FINAL_FAILURES",
    "Kannel",
    "check",
]
