"""A CRM outage ends with every report filed once, in order, and every citizen told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.open311 import Open311Client
from bridge.sandbox import AppServer, SandboxServer
from bridge.submitter import PARKED, Submitter, ledger_key
from bridge.vault import Vault
from kanal import streams
from kanal.keys import Keyring
from kanal.messages import Complaint, Location
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.peers import free_port
from tests.test_bridge_crash import SECRET, enqueue, tracking_messages


class Flaky:
    """A CRM front that answers 503 while ``down`` (and counts what it refused)."""

    def __init__(self, upstream: Open311Client) -> None:
        self.upstream = upstream
        self.down = True
        self.refused = 0

    async def handle(self, request: Request) -> Response:
        if self.down:
            self.refused += 1
            return JSONResponse([{"code": 503, "description": "maintenance"}], status_code=503)
        body = await request.body()
        r = await self.upstream._http.request(  # forward as is, headers and all
            request.method,
            request.url.path.lstrip("/"),
            params=request.query_params,
            content=body,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )
        return Response(r.content, status_code=r.status_code, media_type="application/json")


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(tmp_path / "crm.sqlite3") as server:
        yield server


async def test_outage_then_recovery_files_everything_once_in_order(
    redis: Redis, crm: SandboxServer
) -> None:
    ids = await enqueue(redis, 25)
    async with Open311Client(crm.url) as upstream:
        flaky = Flaky(upstream)
        app = Starlette(routes=[Route("/{p:path}", flaky.handle, methods=["GET", "POST"])])
        async with AppServer(app) as front, Open311Client(front.url) as client:
            submitter = Submitter(
                redis,
                client,
                Vault(redis, Keyring([SECRET])),
                base_backoff_s=0.02,
                max_backoff_s=0.2,
            )
            task = asyncio.create_task(submitter.run())
            try:
                await asyncio.sleep(2.0)  # the outage: every attempt refused, nothing lost
                assert flaky.refused >= 5
                assert not crm.store.list_requests()
                assert not await redis.hexists(ledger_key(ids[0]), "service_request_id")
                flaky.down = False
                async with asyncio.timeout(30):
                    while not await redis.hexists(ledger_key(ids[-1]), "service_request_id"):
                        await asyncio.sleep(0.05)
            finally:
                await stop_tasks([task])
    requests = sorted(crm.store.list_requests(), key=lambda r: r.id)
    assert len(requests) == 25
    numbers = [(r.description or "").split("\n\n[Ref Kanal:")[0] for r in requests]
    assert numbers == [f"sampah menumpuk nomor {i}" for i in range(25)], "filed in order"
    assert len(await tracking_messages(redis)) == 25
    assert await redis.xlen(PARKED) == 0


async def test_crm_unreachable_then_back_on_the_same_port(redis: Redis, tmp_path: Path) -> None:
    port = free_port()
    ids = await enqueue(redis, 5)
    async with Open311Client(f"http://127.0.0.1:{port}", timeout=1) as client:
        submitter = Submitter(
            redis, client, Vault(redis, Keyring([SECRET])), base_backoff_s=0.02, max_backoff_s=0.2
        )
        task = asyncio.create_task(submitter.run())
        try:
            await asyncio.sleep(1.0)  # connection refused all along
            async with SandboxServer(tmp_path / "crm.sqlite3", port=port) as crm:
                async with asyncio.timeout(30):
                    while not await redis.hexists(ledger_key(ids[-1]), "service_request_id"):
                        await asyncio.sleep(0.05)
                assert len(crm.store.list_requests()) == 5
        finally:
            await stop_tasks([task])


async def test_a_4xx_parks_the_report_and_tells_the_citizen(
    redis: Redis, crm: SandboxServer
) -> None:
    [cid] = await enqueue(redis, 1)
    await redis.delete(streams.COMPLAINTS)  # keep the sealed contact, replace the report
    async with Open311Client(crm.url) as client:
        bad = Complaint(  # a category the CRM does not know: a 400, permanent
            complaint_id=cid,
            conv=Keyring([SECRET]).pseudonym("console", "6281200000000"),
            channel="console",
            category="not-a-category",
            description="x",
            location=Location(lat=-6.2, lon=106.8),
            created_at=datetime.now(UTC),
        )
        await redis.xadd(streams.COMPLAINTS, {"complaint": bad.model_dump_json()})
        task = asyncio.create_task(Submitter(redis, client, Vault(redis, Keyring([SECRET]))).run())
        try:
            async with asyncio.timeout(10):
                while not await redis.xlen(PARKED):
                    await asyncio.sleep(0.05)
        finally:
            await stop_tasks([task])
    assert crm.store.list_requests() == []
    [msg] = await tracking_messages(redis)
    assert "belum bisa diterima" in msg.text
