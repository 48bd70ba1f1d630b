"""The sandbox CRM: an Open311 GeoReport v2 server (JSON only) over :class:`SandboxStore`.

Besides the standard endpoints it serves the FixMyStreet-style updates feed
(``/servicerequestupdates.json``), a rating endpoint for citizens' feedback, and officer
actions (``/officer/requests/{id}/status``) so status relays can be exercised end to end.
``Idempotency-Key`` (IETF httpapi draft) is honoured on ``POST /requests.json``.
With ``webhook_url`` set, every status update is also pushed there, signed
(:mod:`bridge.sandbox.push`). Officers' proof photos are served at ``/media/{hash}.jpg``.
A CRM without public photo links takes the photo itself: ``POST /requests.json`` may come as
``multipart/form-data`` with a file part ``media``; those bytes are kept as sent and the
request's ``media_url`` is the sandbox's own ``/media/request-{id}.jpg``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.catalog import (
    BY_CODE,
    CATEGORIES,
    DEFAULT_NOTES,
    SERVICE_NOTICE,
    definition_json,
    service_json,
)
from bridge.sandbox.forms import (
    Open311Failure,
    check_image,
    date_param,
    has_personal_fields,
    http_url,
    json_only,
    media_hash,
    new_request,
    payload_hash,
    read_body,
    read_form,
    read_submission,
    request_id_param,
    request_json,
    update_json,
)
from bridge.sandbox.models import OFFICER_STATUSES, IdempotencyKeyReused, OpenStatus, UnknownRequest
from bridge.sandbox.modes import DEFAULT, SandboxMode
from bridge.sandbox.push import WebhookPusher
from bridge.sandbox.store import SandboxStore


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": description}], status_code=status)


async def _on_failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Open311Failure)
    return _error(exc.status, exc.description)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail))


class _Sandbox:
    def __init__(
        self,
        store: SandboxStore,
        api_key: str | None,
        jurisdiction: str | None,
        pusher: WebhookPusher | None,
        mode: SandboxMode = DEFAULT,
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.jurisdiction = jurisdiction
        self.pusher = pusher
        self.mode = mode
        self.in_flight: set[str] = set()
        # token -> (request id, when the id becomes visible), in tokens mode
        self.queued: dict[str, tuple[int, float]] = {}

    def _authorise(self, key: str | None) -> None:
        if self.api_key and not hmac.compare_digest((key or "").encode(), self.api_key.encode()):
            raise Open311Failure(403, "Invalid or missing api_key")

    def _jurisdiction(self, value: str | None) -> None:
        if self.jurisdiction is not None and value != self.jurisdiction:
            raise Open311Failure(400, "Invalid or missing jurisdiction_id")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        count = await run_in_threadpool(lambda: self.store.personal_fields_received)
        in_flight = len(self.in_flight)
        return JSONResponse({"personal_fields_received": count, "keys_in_flight": in_flight})

    async def services(self, request: Request) -> Response:
        json_only(request)
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        codes = self.mode.service_codes
        if codes is None:
            return JSONResponse([service_json(category) for category in CATEGORIES])
        return JSONResponse(
            [
                {**service_json(category), "service_code": codes[category.code]}
                for category in CATEGORIES
                if category.code in codes
            ]
        )

    async def service_definition(self, request: Request) -> Response:
        json_only(request)
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        category = BY_CODE.get(str(request.path_params["code"]))
        if category is None:
            raise Open311Failure(404, "Unknown service_code")
        return JSONResponse(definition_json(category))

    async def requests(self, request: Request) -> Response:
        json_only(request)
        if request.method == "POST":
            return await self._create(request)
        params = dict(request.query_params)
        self._jurisdiction(params.get("jurisdiction_id"))
        if params.get("service_request_id"):
            parts = (part.strip() for part in params["service_request_id"].split(","))
            ids = [int(part) for part in parts if part.isdigit()]
            found = await run_in_threadpool(self.store.list_requests, ids)
        else:
            raw = ",".join(request.query_params.getlist("status"))
            statuses: list[OpenStatus] = []
            for value in filter(None, (part.strip() for part in raw.split(","))):
                if value not in ("open", "closed"):
                    raise Open311Failure(400, "status must be open or closed")
                statuses.append("open" if value == "open" else "closed")
            found = await run_in_threadpool(
                lambda: self.store.list_requests(
                    service_code=params.get("service_code") or None,
                    start_date=date_param(params, "start_date"),
                    end_date=date_param(params, "end_date"),
                    status=statuses or None,
                )
            )
        return JSONResponse([request_json(item) for item in found])

    async def _create(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not self.mode.honour_idempotency_key:
            key = None  # as most real servers: the header means nothing here
        if key is not None and not 0 < len(key) <= 255:
            raise Open311Failure(400, "Idempotency-Key must be 1 to 255 characters")
        if key is not None and key in self.in_flight:
            raise Open311Failure(409, "A request with this Idempotency-Key is being processed")
        if key is not None:
            self.in_flight.add(key)
        try:
            items, media = await read_submission(request)
            if has_personal_fields(items):
                await run_in_threadpool(self.store.note_personal_fields)
            fields = dict(items)
            self._authorise(fields.get("api_key"))
            self._jurisdiction(fields.get("jurisdiction_id"))
            new = new_request(items, lambda code: self.mode.kanal_category(code) in BY_CODE)
            fingerprint = payload_hash(items if media is None else [*items, media_hash(media)])
            photo, template = None, None
            if media is not None:
                photo = (media, await run_in_threadpool(check_image, media))
                template = str(request.base_url).rstrip("/") + "/media/request-{id}.jpg"
            try:
                stored, replayed = await run_in_threadpool(
                    self.store.create_request, new, key, fingerprint, photo, template
                )
            except IdempotencyKeyReused:
                raise Open311Failure(
                    422, "This Idempotency-Key was already used with a different request"
                ) from None
        finally:
            if key is not None:
                self.in_flight.discard(key)
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        if self.mode.tokens:
            token = secrets.token_hex(12)
            self.queued[token] = (stored.id, time.monotonic() + self.mode.token_delay_s)
            body: list[dict[str, object]] = [{"token": token, "service_notice": SERVICE_NOTICE}]
            return JSONResponse(body, status_code=201, headers=headers)
        body = [
            {
                "service_request_id": str(stored.id),
                "service_notice": SERVICE_NOTICE,
                "account_id": None,
            }
        ]
        return JSONResponse(body, status_code=201, headers=headers)

    async def request_detail(self, request: Request) -> Response:
        json_only(request)
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        found = await run_in_threadpool(self.store.get_request, request_id_param(request))
        if found is None:
            raise Open311Failure(404, "Service request not found")
        return JSONResponse([request_json(found)])

    async def updates(self, request: Request) -> Response:
        json_only(request)
        params = dict(request.query_params)
        self._jurisdiction(params.get("jurisdiction_id"))
        start, end = date_param(params, "start_date"), date_param(params, "end_date")
        found = await run_in_threadpool(self.store.list_updates, start, end)
        if self.mode.max_updates is not None:
            found = found[: self.mode.max_updates]  # a paged feed: the rest on a later call
        string_ids = self.mode.string_update_ids
        return JSONResponse([update_json(u, string_ids=string_ids) for u in found])

    async def rating(self, request: Request) -> Response:
        json_only(request)
        request_id = request_id_param(request)
        fields = dict(await read_form(request))
        self._authorise(fields.get("api_key"))
        self._jurisdiction(fields.get("jurisdiction_id"))
        raw = fields.get("rating", "").strip()
        if raw not in ("1", "2", "3", "4", "5"):
            raise Open311Failure(400, "rating must be a whole number from 1 to 5")
        try:
            await run_in_threadpool(self.store.set_rating, request_id, int(raw))
        except UnknownRequest:
            raise Open311Failure(404, "Service request not found") from None
        return JSONResponse([{"service_request_id": str(request_id), "rating": int(raw)}])

    async def officer_status(self, request: Request) -> Response:
        request_id = request_id_param(request)
        try:
            payload = json.loads(await read_body(request))
        except (ValueError, UnicodeDecodeError):
            raise Open311Failure(400, "Send a JSON object") from None
        if not isinstance(payload, dict):
            raise Open311Failure(400, "Send a JSON object")
        self._authorise(payload.get("api_key") or request.query_params.get("api_key"))
        status = payload.get("status")
        note = payload.get("note")
        if status not in OFFICER_STATUSES:
            raise Open311Failure(400, f"status must be one of {', '.join(OFFICER_STATUSES)}")
        if note is not None and not isinstance(note, str):
            raise Open311Failure(400, "note must be text")
        if status == "rejected" and not (note and note.strip()):
            raise Open311Failure(400, "A rejection needs a note giving the reason")
        media_url = payload.get("media_url")
        if media_url is not None and not isinstance(media_url, str):
            raise Open311Failure(400, "media_url must be text")
        media_url = http_url(media_url, "media_url")
        try:
            update = await run_in_threadpool(
                self.store.add_update, request_id, status, note or DEFAULT_NOTES[status], media_url
            )
        except UnknownRequest:
            raise Open311Failure(404, "Service request not found") from None
        if self.pusher is not None:
            self.pusher.wake()
        return JSONResponse(
            update_json(update, string_ids=self.mode.string_update_ids), status_code=201
        )

    async def media(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        media_id, _, ext = name.partition(".")
        found = self.store.photo_path(media_id) if ext == "jpg" else None
        if found is None:
            raise Open311Failure(404, "No such photo")
        return FileResponse(found, media_type="image/jpeg")

    async def request_media(self, request: Request) -> Response:
        found = await run_in_threadpool(self.store.get_media, request_id_param(request))
        if found is None:
            raise Open311Failure(404, "No photo for this service request")
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(found[0], media_type=found[1], headers=headers)

    async def tokens(self, request: Request) -> Response:
        json_only(request)
        self._jurisdiction(request.query_params.get("jurisdiction_id"))
        token = str(request.path_params["token"])
        if token not in self.queued:
            raise Open311Failure(404, "Unknown token")
        request_id, ready_at = self.queued[token]
        if time.monotonic() < ready_at:
            return JSONResponse([{"token": token}])  # queued: no id yet
        return JSONResponse([{"token": token, "service_request_id": str(request_id)}])


def create_app(
    store: SandboxStore,
    *,
    api_key: str | None = None,
    jurisdiction_id: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    mode: SandboxMode = DEFAULT,
) -> Starlette:
    """The sandbox CRM as an ASGI app; ``api_key``/``jurisdiction_id`` are enforced when set.

    With ``webhook_url`` (which needs ``webhook_secret``) updates are pushed there by
    ``app.state.pusher``; the app's lifespan runs it, or the embedding server does
    (:class:`~bridge.sandbox.server.SandboxServer`).
    """
    pusher = None
    if webhook_url:
        if not webhook_secret:
            raise ValueError("a webhook URL needs a webhook secret to sign the pushes")
        pusher = WebhookPusher(
            store, webhook_url, webhook_secret, string_ids=mode.string_update_ids
        )
    sandbox = _Sandbox(store, api_key, jurisdiction_id, pusher, mode)
    routes = [
        Route("/healthz", sandbox.healthz),
        Route("/sandbox/stats.json", sandbox.stats),
        Route("/services.{fmt}", sandbox.services),
        Route("/services/{code}.{fmt}", sandbox.service_definition),
        Route("/requests.{fmt}", sandbox.requests, methods=["GET", "POST"]),
        Route("/requests/{id}/rating.{fmt}", sandbox.rating, methods=["POST"]),
        Route("/requests/{id}.{fmt}", sandbox.request_detail),
        Route("/request/{id}.{fmt}", sandbox.request_detail),  # the path swagger.json spells
        Route("/servicerequestupdates.{fmt}", sandbox.updates),
        Route("/tokens/{token}.{fmt}", sandbox.tokens),
        # Photos uploaded with a request; before /media/{name}, the officers' proof photos.
        Route("/media/request-{id}.jpg", sandbox.request_media),
        Route("/officer/requests/{id}/status", sandbox.officer_status, methods=["POST"]),
        Route("/media/{name}", sandbox.media),
    ]
    handlers = {Open311Failure: _on_failure, HTTPException: _on_http_error}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if pusher is not None:
            await pusher.start()
        try:
            yield
        finally:
            if pusher is not None:
                await pusher.stop()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.pusher = pusher
    return app


__all__ = ["create_app"]
