"""Webhook pushes of the sandbox CRM: every status update, signed, to one URL.

The ``updates`` table is the outbox (``pushed_at IS NULL``), so an update is pushed however it
was recorded: by ``POST /officer/requests/{id}/status`` (which wakes the pusher at once) or by
``kanal crm-sandbox officer status`` in another process (found by the scan every second).
Updates go out one per request, oldest first, signed as :mod:`bridge.signing` describes. A
failure is retried with exponential backoff, and later updates wait, so a citizen never hears
"resolved" before "in progress". After ``max_attempts`` (or a 4xx that retrying cannot fix) the
update is given up: the receiver's poll of ``servicerequestupdates.json`` still delivers it.
Delivery is at least once; the receiver deduplicates by ``update_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx

from bridge.sandbox.forms import update_json
from bridge.sandbox.models import StoredUpdate
from bridge.sandbox.store import SandboxStore
from bridge.signing import HEADER, sign
from kanal.logging import get_logger

log = get_logger(__name__)

Outcome = Literal["pushed", "retry", "refused"]
_RETRYABLE_4XX = frozenset({408, 425, 429})


class WebhookPusher:
    """Pushes the store's unpushed updates to ``url``; ``start()``/``stop()`` run it."""

    def __init__(
        self,
        store: SandboxStore,
        url: str,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
        scan_interval_s: float = 1.0,
        max_attempts: int = 5,
        base_delay_s: float = 0.5,
        max_age: timedelta = timedelta(days=1),
        timeout_s: float = 5.0,
        string_ids: bool = False,
    ) -> None:
        self.string_ids = string_ids
        if not secret:
            raise ValueError("webhook pushes need a secret to sign them with")
        self.store = store
        self.url = url
        self._secret = secret
        self.clock = clock
        self.scan_interval_s = scan_interval_s
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_age = max_age
        self.timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Push now rather than at the next scan (a new update was just recorded)."""
        self._wake.set()

    async def start(self) -> None:
        """Start pushing in the background (once; later calls do nothing)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="crm-sandbox-webhook")

    async def stop(self) -> None:
        """Stop pushing; an update in flight is pushed again next time (at least once)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Scan every ``scan_interval_s`` (or when woken) until cancelled."""
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                self._wake.clear()
                try:
                    backoff = await self.push_pending(client)
                except Exception as exc:  # the sandbox keeps serving whatever goes wrong here
                    log.exception("webhook_push_crashed", error=type(exc).__name__)
                    backoff = self.scan_interval_s
                if backoff is not None:
                    await asyncio.sleep(backoff)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.scan_interval_s)

    async def push_pending(self, client: httpx.AsyncClient) -> float | None:
        """Push what is pending, in order; the backoff to wait if one must be retried."""
        since = datetime.now(UTC) - self.max_age
        while True:
            batch = await asyncio.to_thread(self.store.pending_pushes, since, self.max_attempts)
            if not batch:
                return None
            for update in batch:
                outcome, detail = await self._push(client, update)
                if outcome == "pushed":
                    await asyncio.to_thread(self.store.mark_pushed, update.update_id)
                    log.info("webhook_pushed", update_id=update.update_id, http_status=detail)
                    continue
                give_up_at = self.max_attempts if outcome == "refused" else None
                attempts = await asyncio.to_thread(
                    self.store.note_push_failure, update.update_id, give_up_at=give_up_at
                )
                if attempts >= self.max_attempts:
                    log.error(
                        "webhook_push_gave_up",
                        update_id=update.update_id,
                        attempts=attempts,
                        reason=detail,
                    )
                    continue
                delay = min(30.0, self.base_delay_s * 2.0 ** (attempts - 1))
                log.warning(
                    "webhook_push_failed",
                    update_id=update.update_id,
                    attempts=attempts,
                    reason=detail,
                    retry_in_s=delay,
                )
                return delay

    async def _push(self, client: httpx.AsyncClient, update: StoredUpdate) -> tuple[Outcome, str]:
        body = json.dumps(
            update_json(update, string_ids=self.string_ids), ensure_ascii=False
        ).encode()
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(self._secret, body, self.clock()),
        }
        try:
            response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return "retry", type(exc).__name__
        code = response.status_code
        if 200 <= code < 300:
            return "pushed", str(code)
        if 400 <= code < 500 and code not in _RETRYABLE_4XX:
            return "refused", str(code)
        return "retry", str(code)


__all__ = ["WebhookPusher"]
