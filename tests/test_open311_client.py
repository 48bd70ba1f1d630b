"""The bridge's Open311 client against the real sandbox CRM (and tiny failing servers)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import structlog
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from structlog.testing import LogCapture

from bridge.open311 import PERSONAL_FIELDS, NewServiceRequest, Open311Client
from bridge.sandbox import PERSONAL_FIELDS as SANDBOX_PERSONAL_FIELDS
from bridge.sandbox import AppServer, SandboxServer, SandboxStore
from kanal.errors import PermanentPeerError, TemporaryPeerError
from tests import sandbox_fixtures as fixtures
from tests.sandbox_fixtures import (
    API_KEY,
    JURISDICTION,
    SlowForm,
    keys_in_flight,
    officer,
    swagger_parameters,
    valid_form,
    wait_until,
)

store, sandbox, secured, http = fixtures.store, fixtures.sandbox, fixtures.secured, fixtures.http

DESCRIPTION = "Lampu jalan mati di depan sekolah sejak minggu lalu."
PHOTO = "https://kanal.example/media/tok3n?sig=abc"
REPORT = NewServiceRequest(
    service_code="lampu_jalan",
    lat=-6.2088,
    long=106.8456,
    address_string="Jl. Jend. Sudirman, Kel. Karet Tengsin",
    description=DESCRIPTION,
    media_url=PHOTO,
    attributes={"kelurahan": "Karet Tengsin", "channel": "sms", "reporter": "p-77aa01"},
)


class Recording(httpx.AsyncBaseTransport):
    """The real HTTP transport, keeping a copy of every request it sends."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[tuple[httpx.Request, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request, await request.aread()))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def crm(sandbox: SandboxServer) -> AsyncIterator[Open311Client]:
    async with Open311Client(sandbox.url, timeout=5) as client:
        yield client


@contextmanager
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event at any level, whatever configuration other tests left."""
    old = structlog.get_config()
    capture = LogCapture()
    structlog.configure(
        processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)
    )
    try:
        yield capture.entries
    finally:
        structlog.configure(**old)


async def test_create_returns_the_tracking_number(crm: Open311Client, store: SandboxStore) -> None:
    request_id = (await crm.create_request(REPORT, idempotency_key="c-1")).service_request_id
    assert request_id == "2400001"
    found = await crm.get_request(request_id)
    assert found is not None
    assert (found.service_code, found.status, found.external_status_code) == (
        "lampu_jalan",
        "open",
        "received",
    )
    assert (found.lat, found.long, found.media_url) == (REPORT.lat, REPORT.long, PHOTO)
    assert found.requested_datetime.tzinfo is not None
    stored = store.get_request(int(request_id))
    assert stored is not None and stored.attributes == REPORT.attributes
    assert await crm.get_request("2499999") is None


async def test_same_key_files_once(crm: Open311Client, store: SandboxStore) -> None:
    first = (await crm.create_request(REPORT, idempotency_key="c-42")).service_request_id
    again = (await crm.create_request(REPORT, idempotency_key="c-42")).service_request_id
    assert first == again
    assert len(store.list_requests()) == 1
    assert (await crm.create_request(REPORT, idempotency_key="c-43")).service_request_id != first


async def test_services(crm: Open311Client) -> None:
    services = await crm.services()
    assert len(services) == 12 and services[0].service_code == "sampah"


UNKNOWN_SERVICE = REPORT.model_copy(update={"service_code": "kebakaran"})
SIGNED = {"api_key": API_KEY, "jurisdiction_id": JURISDICTION}


@pytest.mark.parametrize(
    ("label", "client_kwargs", "report", "status"),
    [
        ("unknown service", SIGNED, UNKNOWN_SERVICE, 400),
        ("wrong api_key", {**SIGNED, "api_key": "salah"}, REPORT, 403),
        ("no jurisdiction", {"api_key": API_KEY}, REPORT, 400),
    ],
)
async def test_4xx_is_permanent(
    secured: SandboxServer,
    store: SandboxStore,
    label: str,
    client_kwargs: dict[str, Any],
    report: NewServiceRequest,
    status: int,
) -> None:
    async with Open311Client(secured.url, **client_kwargs) as client:
        with pytest.raises(PermanentPeerError) as caught:
            await client.create_request(report, idempotency_key=label)
    assert caught.value.status == status and not caught.value.retryable
    assert store.list_requests() == []


async def test_closed_port_is_temporary() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Open311Client(f"http://127.0.0.1:{port}", timeout=2) as client:
        with pytest.raises(TemporaryPeerError) as caught:
            await client.create_request(REPORT, idempotency_key="c-1")
    assert caught.value.retryable and caught.value.status is None


def failing_app(status: int, delay: float = 0.0) -> Starlette:
    async def answer(request: Request) -> Response:
        await asyncio.sleep(delay)
        return JSONResponse([{"code": status, "description": "gagal"}], status_code=status)

    paths = ["/requests.json", "/servicerequestupdates.json", "/requests/{id}.json"]
    return Starlette(routes=[Route(path, answer, methods=["GET", "POST"]) for path in paths])


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TemporaryPeerError),
        (502, TemporaryPeerError),
        (503, TemporaryPeerError),
        (429, TemporaryPeerError),
        (400, PermanentPeerError),
        (401, PermanentPeerError),
        (422, PermanentPeerError),
    ],
)
async def test_status_mapping(status: int, error: type[Exception]) -> None:
    async with AppServer(failing_app(status)) as server, Open311Client(server.url) as client:
        with pytest.raises(error) as caught:
            await client.create_request(REPORT, idempotency_key="c-1")
        assert getattr(caught.value, "status", None) == status
        with pytest.raises(error):
            await client.updates(datetime.now(UTC))


async def test_timeout_is_temporary() -> None:
    async with (
        AppServer(failing_app(200, delay=2)) as server,
        Open311Client(server.url, timeout=0.2) as client,
    ):
        with pytest.raises(TemporaryPeerError):
            await client.create_request(REPORT, idempotency_key="c-1")


async def test_in_flight_duplicate_is_temporary(
    sandbox: SandboxServer, http: httpx.AsyncClient, crm: Open311Client
) -> None:
    slow = SlowForm(valid_form())
    headers = {"Idempotency-Key": "c-7", "Content-Type": "application/x-www-form-urlencoded"}
    first = asyncio.create_task(http.post("/requests.json", content=slow, headers=headers))
    await wait_until(lambda: keys_in_flight(http))
    with pytest.raises(TemporaryPeerError) as caught:
        await crm.create_request(REPORT, idempotency_key="c-7")
    assert caught.value.status == 409
    slow.release()
    assert (await first).status_code == 201


async def test_updates_parse(crm: Open311Client, http: httpx.AsyncClient) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    request_id = (await crm.create_request(REPORT, idempotency_key="c-1")).service_request_id
    assert (await officer(http, request_id, status="in_progress")).status_code == 201
    proof = "https://crm.example/bukti/9.jpg"
    response = await officer(http, request_id, status="resolved", note="Sudah", media_url=proof)
    assert response.status_code == 201
    updates = (await crm.updates(since))[0]
    assert [u.external_status_code for u in updates] == ["in_progress", "resolved"]
    assert {u.service_request_id for u in updates} == {request_id}
    assert [u.status for u in updates] == ["open", "closed"]
    assert updates[1].media_url == proof and updates[1].description == "Sudah"
    assert int(updates[0].update_id) < int(updates[1].update_id)
    assert updates[0].updated_datetime <= updates[1].updated_datetime
    assert updates[1].updated_datetime.tzinfo is not None
    assert (await crm.updates(updates[1].updated_datetime + timedelta(seconds=1)))[0] == []
    assert len((await crm.updates(since, end_date=updates[0].updated_datetime))[0]) == 1


async def test_rating(crm: Open311Client, store: SandboxStore) -> None:
    request_id = (await crm.create_request(REPORT, idempotency_key="c-1")).service_request_id
    await crm.post_rating(request_id, 5)
    assert store.get_request(int(request_id)).rating == 5  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="between 1 and 5"):
        await crm.post_rating(request_id, 6)
    with pytest.raises(PermanentPeerError):
        await crm.post_rating("2499999", 3)


async def test_outgoing_post_is_spec_shaped_and_anonymous(
    secured: SandboxServer, store: SandboxStore
) -> None:
    transport = Recording()
    client = Open311Client(
        secured.url, api_key=API_KEY, jurisdiction_id=JURISDICTION, transport=transport
    )
    async with client:
        await client.create_request(REPORT, idempotency_key="c-1")
    ((request, body),) = transport.sent
    assert request.method == "POST" and request.url.path == "/requests.json"
    assert request.url.query == b"" and request.headers["idempotency-key"] == "c-1"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    names = [name for name, _ in parse_qsl(body.decode())]
    plain = {name.split("[", 1)[0] for name in names}
    keys = {name[len("attribute[") : -1] for name in names if name.startswith("attribute[")}
    declared = swagger_parameters("/requests.{response_format}", "post")
    required = {p["name"] for p in declared if p["required"] and p["in"] != "path"}
    assert required <= plain
    # swagger.json omits description and media_url (the GeoReport v2 text has them); api_key is
    # its securityDefinition.
    allowed = {p["name"] for p in declared} | {"description", "media_url", "api_key"}
    assert plain <= allowed, plain - allowed
    assert not (plain | keys) & (PERSONAL_FIELDS | SANDBOX_PERSONAL_FIELDS)
    assert store.personal_fields_received == 0


def test_new_request_cannot_carry_personal_data() -> None:
    assert not set(NewServiceRequest.model_fields) & (PERSONAL_FIELDS | SANDBOX_PERSONAL_FIELDS)
    with pytest.raises(ValidationError):
        NewServiceRequest.model_validate({**REPORT.model_dump(), "phone": "081234567890"})
    with pytest.raises(ValidationError):
        REPORT.model_validate({**REPORT.model_dump(), "attributes": {"email": "a@b.id"}})
    with pytest.raises(ValidationError):  # no location
        NewServiceRequest(service_code="sampah", description="Sampah menumpuk")
    with pytest.raises(ValidationError):
        NewServiceRequest(service_code="sampah", address_string="Jl. A", description="x" * 4001)


async def test_logs_carry_no_content(crm: Open311Client, http: httpx.AsyncClient) -> None:
    with captured_logs() as events:
        request_id = (await crm.create_request(REPORT, idempotency_key="c-1")).service_request_id
        await crm.get_request(request_id)
        await officer(http, request_id, status="forwarded")
        await crm.updates(datetime.now(UTC) - timedelta(minutes=1))
    assert {"open311.call", "open311.created"} <= {event["event"] for event in events}
    text = repr(events)
    for secret in (DESCRIPTION, "Sudirman", "-6.2088", "106.8456", "tok3n", "sig=", "start_date"):
        assert secret not in text, secret
