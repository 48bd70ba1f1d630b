"""Fixtures and helpers shared by the sandbox CRM and Open311 client tests.

Import the fixtures you use into a test module (``from tests.sandbox_fixtures import sandbox``).
The Open311 spec is read from ``../shared/specs`` next to the repository, never copied.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from bridge.sandbox import SandboxServer, SandboxStore

SPEC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "open311-georeport-v2"
API_KEY = "kunci-uji"
JURISDICTION = "jakarta.go.id"
CATEGORY_CODES = [
    "sampah",
    "banjir",
    "jalan_rusak",
    "lampu_jalan",
    "pohon",
    "parkir_liar",
    "lalu_lintas",
    "pkl",
    "pmks",
    "fasilitas_umum",
    "pelanggaran",
    "lainnya",
]


def load_spec(name: str) -> Any:
    return json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))


def _registry() -> Registry:
    resources = [
        (path.name, Resource.from_contents(load_spec(path.name), default_specification=DRAFT7))
        for path in SPEC_DIR.glob("*.json")
        if path.name != "swagger.json"
    ]
    return Registry().with_resources(resources)


def assert_valid(body: Any, schema_name: str) -> None:
    """Fail with every schema error if ``body`` does not match ``schema_name``."""
    validator = Draft7Validator(
        load_spec(schema_name),
        registry=_registry(),
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


def assert_utc_timestamp(value: str) -> datetime:
    """ISO 8601 with an explicit UTC offset (``Z`` or ``+00:00``)."""
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0), value
    return moment


def swagger_parameters(path: str, method: str) -> list[dict[str, Any]]:
    """The declared parameters of one swagger.json operation, ``$ref``s resolved."""
    swagger = load_spec("swagger.json")
    resolved = []
    for parameter in swagger["paths"][path][method]["parameters"]:
        if "$ref" in parameter:
            parameter = swagger["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        resolved.append(parameter)
    return resolved


def valid_form(**changes: str | None) -> dict[str, str]:
    """A complete, valid ``POST /requests.json`` form; ``None`` removes a field."""
    form: dict[str, str | None] = {
        "api_key": API_KEY,
        "jurisdiction_id": JURISDICTION,
        "service_code": "sampah",
        "lat": "-6.1754",
        "long": "106.8272",
        "address_string": "Jl. Medan Merdeka Barat, Gambir",
        "description": "Tumpukan sampah di trotoar sejak tiga hari.",
        "media_url": "https://kanal.example/media/abc123",
        "attribute[kelurahan]": "Gambir",
        "attribute[kecamatan]": "Gambir",
        "attribute[channel]": "telegram",
        "attribute[reporter]": "p-3f9a1c",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


@pytest.fixture
def store(tmp_path: Path) -> SandboxStore:
    return SandboxStore(tmp_path / "crm.sqlite3")


@pytest.fixture
async def sandbox(store: SandboxStore) -> AsyncIterator[SandboxServer]:
    """An open sandbox: no api_key, no jurisdiction required."""
    async with SandboxServer(store) as server:
        yield server


@pytest.fixture
async def secured(store: SandboxStore) -> AsyncIterator[SandboxServer]:
    """A sandbox that requires ``API_KEY`` and ``JURISDICTION``."""
    async with SandboxServer(store, api_key=API_KEY, jurisdiction_id=JURISDICTION) as server:
        yield server


@pytest.fixture
async def http(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        yield client


async def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Poll an async ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


class SlowForm:
    """A form body that stops half-way until ``release()``: a request still in flight."""

    def __init__(self, form: dict[str, str]) -> None:
        body = str(httpx.QueryParams(form)).encode()
        self._halves = (body[: len(body) // 2], body[len(body) // 2 :])
        self._release = asyncio.Event()

    def release(self) -> None:
        self._release.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._halves[0]
        await self._release.wait()
        yield self._halves[1]


async def keys_in_flight(client: httpx.AsyncClient) -> int:
    response = await client.get("/sandbox/stats.json")
    return int(response.json()["keys_in_flight"])


async def create(client: httpx.AsyncClient, key: str | None = None, **changes: str | None) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    response = await client.post("/requests.json", data=valid_form(**changes), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()[0]["service_request_id"])


async def officer(client: httpx.AsyncClient, request_id: str, **body: str) -> httpx.Response:
    return await client.post(f"/officer/requests/{request_id}/status", json=body)


def assert_open311_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body[0]["code"] == status and body[0]["description"], body
