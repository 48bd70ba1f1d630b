"""``POST /crm/webhook``: status updates the CRM pushes, relayed at once to the citizen.

The body is one FixMyStreet-style ``servicerequestupdates`` entry or a JSON array of them, signed
as :mod:`bridge.signing` describes. Each update goes through :meth:`StatusService.relay`, which
deduplicates by ``update_id``: an update that arrives by webhook *and* by the poll reaches the
citizen once. Answers:

- 200 ``{"accepted": n, "relayed": m}`` — ``m`` counts updates sent on to a citizen (not
  duplicates, not requests Kanal did not file);
- 401 missing, garbled, wrong or stale signature; 400 malformed JSON or update; 413 body over
  64 KiB; 503 no secret configured (``CRM_WEBHOOK_SECRET``: unsigned pushes are never taken) or
  Redis unavailable (the CRM should retry).

Log lines carry the reason and ids only, never the body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.open311 import ServiceRequestUpdate
from bridge.signing import DEFAULT_TOLERANCE_S, HEADER, check
from bridge.status import StatusService
from kanal.logging import get_logger

log = get_logger(__name__)

PATH = "/crm/webhook"
MAX_BODY_BYTES = 64 * 1024

_UPDATES = TypeAdapter(list[ServiceRequestUpdate])


class _TooLarge(Exception):
    pass


def local_webhook_url(host: str, port: int) -> str:
    """Where a CRM in this process or on this machine reaches ``POST /crm/webhook``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind, reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{PATH}"


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(body)


def _parse(body: bytes) -> list[ServiceRequestUpdate] | str:
    """The updates in ``body``, or what is wrong with it (field names only, never values)."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "not JSON"
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        return "expected an update object or an array of them"
    try:
        return _UPDATES.validate_python(payload)
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
        return f"malformed update ({', '.join(fields)})"


def webhook_route(
    status: StatusService,
    secrets: Sequence[str],
    clock: Callable[[], float] = time.time,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> Route:
    """The ``POST /crm/webhook`` route; ``secrets`` newest first (rotation), none: refuse all."""
    keys = [secret for secret in secrets if secret]

    async def receive(request: Request) -> Response:
        if not keys:
            log.warning("webhook_disabled")
            return _error(503, "disabled", "CRM webhook is off: CRM_WEBHOOK_SECRET is not set")
        try:
            body = await _read_body(request)
        except _TooLarge:
            log.warning("webhook_rejected", reason="too_large")
            return _error(413, "too_large", f"Body over {MAX_BODY_BYTES} bytes")
        except ClientDisconnect:
            return Response(status_code=400)
        verdict = check(keys, body, request.headers.get(HEADER), clock(), tolerance_s)
        if verdict != "ok":
            log.warning("webhook_rejected", reason=verdict)
            return _error(401, verdict, f"Missing, invalid or expired {HEADER} header")
        updates = _parse(body)
        if isinstance(updates, str):
            log.warning("webhook_rejected", reason="malformed", detail=updates)
            return _error(400, "malformed", updates)
        relayed = 0
        try:
            for u in updates:
                if await status.relay_update(u):
                    relayed += 1
        except RedisError as exc:
            # Updates already relayed are deduplicated when the CRM sends the batch again.
            log.error("webhook_relay_failed", error=type(exc).__name__, relayed=relayed)
            return _error(503, "unavailable", "Try again later")
        log.info(
            "webhook_accepted",
            accepted=len(updates),
            relayed=relayed,
            update_ids=[u.update_id for u in updates][:20],
        )
        return JSONResponse({"accepted": len(updates), "relayed": relayed})

    return Route(PATH, receive, methods=["POST"], name="crm_webhook")


__all__ = ["MAX_BODY_BYTES", "PATH", "local_webhook_url", "webhook_route"]
