"""Killing the bridge (SIGKILL) loses nothing and files nothing twice.

The bridge runs as a real process (``python -m bridge``) against a real Redis and the sandbox CRM
over HTTP. A small proxy in front of the CRM lets a test freeze the bridge at the worst moment:
after the CRM has filed a report but before the bridge has heard back.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox import AppServer, SandboxServer
from bridge.sandbox.modes import SandboxMode
from bridge.submitter import ledger_key
from kanal import streams
from kanal.keys import Keyring
from kanal.messages import Complaint, Location, Outbound
from kanal.redis import Redis
from tests.harness import assert_clean
from tests.peers import REPO, free_port

SECRET = "crash-test-key"


class Proxy:
    """Forwards to the CRM; ``hold_after`` makes POSTs hang once the CRM has answered."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.hold_after = False
        self.hold_before = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.posts = 0

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if request.method == "POST":
            self.posts += 1
            if self.hold_before:
                self.held.set()
                await self.release.wait()
        async with httpx.AsyncClient(base_url=self.upstream) as client:
            r = await client.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=body,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        if request.method == "POST" and self.hold_after:
            self.held.set()
            await self.release.wait()
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    def app(self) -> Starlette:
        route = Route("/{path:path}", self.handle, methods=["GET", "POST"])
        return Starlette(routes=[route])


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(tmp_path / "crm.sqlite3") as server:
        yield server


@pytest.fixture
async def proxy(crm: SandboxServer) -> AsyncIterator[tuple[Proxy, str]]:
    p = Proxy(crm.url)
    async with AppServer(p.app()) as server:
        yield p, server.url
        p.release.set()


def bridge_env(redis_url: str, crm_url: str, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "RASA_"))}
    env.update(
        REDIS_URL=redis_url,
        CRM_URL=crm_url,
        CRM_TIMEOUT_S="30",
        CRM_POLL_INTERVAL_S="3600",
        KANAL_SECRET_KEY=SECRET,
        KANAL_DATA_DIR=str(data),
        KANAL_CONSUMER="bridge-crash-test",
        KANAL_HTTP_PORT=str(free_port()),
        KANAL_LOG_LEVEL="INFO",
    )
    return env


def bridge_log(env: dict[str, str]) -> str:
    """Everything the bridge processes of a test logged (each appends to one file)."""
    path = Path(env["KANAL_DATA_DIR"]) / "bridge.log"
    return path.read_text() if path.exists() else ""


def assert_clean_bridge_log(env: dict[str, str]) -> None:
    text = bridge_log(env)
    assert "complaint_filed" in text, "the scan must have something to scan"
    assert_clean(text, where="the bridge's log")
    assert "62812000" not in text, "a sender id reached the bridge's log"
    assert "sampah menumpuk" not in text, "no message text in logs"


def start_bridge(env: dict[str, str]) -> subprocess.Popen[bytes]:
    Path(env["KANAL_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    with (Path(env["KANAL_DATA_DIR"]) / "bridge.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


async def enqueue(redis: Redis, n: int) -> list[str]:
    keyring = Keyring([SECRET])
    ids = []
    for i in range(n):
        user = f"62812000{i:05d}"
        conv = keyring.pseudonym("console", user)
        c = Complaint(
            complaint_id=uuid.uuid4().hex,
            conv=conv,
            channel="console",
            category="sampah",
            description=f"sampah menumpuk nomor {i}",
            location=Location(lat=-6.2, lon=106.8, kecamatan="Menteng"),
            created_at=datetime.now(UTC),
        )
        contact = {"channel": "console", "address": user, "language": "id"}
        await redis.hset(
            streams.vault_key(conv), "contact", keyring.encrypt(json.dumps(contact).encode())
        )
        await redis.xadd(streams.COMPLAINTS, {"complaint": c.model_dump_json()})
        ids.append(c.complaint_id)
    return ids


async def is_filed(redis: Redis, complaint_id: str) -> bool:
    return bool(await redis.hget(ledger_key(complaint_id), "service_request_id"))


async def wait_filed(redis: Redis, ids: list[str], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            filed = sum([await is_filed(redis, i) for i in ids])
            if filed == len(ids):
                return
            await asyncio.sleep(0.1)


async def tracking_messages(redis: Redis) -> list[Outbound]:
    entries = await redis.xrange(streams.outbox("console"))
    return [Outbound.model_validate_json(f["outbound"]) for _, f in entries]


@pytest.mark.parametrize("moment", ["before_crm_files", "after_crm_files"])
async def test_kill_between_reading_and_filing(
    redis: Redis,
    redis_url: str,
    crm: SandboxServer,
    proxy: tuple[Proxy, str],
    tmp_path: Path,
    moment: str,
) -> None:
    p, proxy_url = proxy
    [cid] = await enqueue(redis, 1)
    if moment == "before_crm_files":
        p.hold_before = True
    else:
        p.hold_after = True
    env = bridge_env(redis_url, proxy_url, tmp_path)
    bridge = start_bridge(env)
    try:
        await asyncio.wait_for(p.held.wait(), 30)
        kill(bridge)  # the bridge has read the complaint; its POST is in flight
        assert not await is_filed(redis, cid)
        p.hold_before = p.hold_after = False
        bridge = start_bridge(env)
        await wait_filed(redis, [cid])
    finally:
        kill(bridge)
    assert len(crm.store.list_requests()) == 1, "filed exactly once"
    if moment == "before_crm_files":
        assert p.posts == 2, "not filed: the restarted bridge looked, found nothing, posted"
    else:
        assert p.posts == 1, "filed: the restarted bridge found it and did not post again"
    [msg] = await tracking_messages(redis)
    assert msg.tracking_id == str(crm.store.list_requests()[0].id)
    pending = await redis.xpending(streams.COMPLAINTS, "bridge")
    assert pending["pending"] == 0
    assert_clean_bridge_log(env)


@pytest.mark.parametrize("honours_key", [True, False], ids=["key-honoured", "key-ignored"])
async def test_random_kills_during_200_submissions(
    redis: Redis, redis_url: str, tmp_path: Path, honours_key: bool
) -> None:
    mode = SandboxMode(honour_idempotency_key=honours_key)
    async with SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm:
        await _random_kills(redis, redis_url, crm, tmp_path)


async def _random_kills(redis: Redis, redis_url: str, crm: SandboxServer, tmp_path: Path) -> None:
    ids = await enqueue(redis, 200)
    env = bridge_env(redis_url, crm.url, tmp_path)
    rng = random.Random(1708)
    kills = 0
    bridge = start_bridge(env)
    try:
        for _ in range(40):
            if sum([await is_filed(redis, i) for i in ids]) == len(ids):
                break
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            kill(bridge)
            kills += 1
            bridge = start_bridge(env)
        await wait_filed(redis, ids, timeout=120)
    finally:
        kill(bridge)
    requests = crm.store.list_requests()
    assert len(requests) == 200, f"{len(requests)} requests after {kills} kills"
    assert kills >= 3
    tracking = [m.tracking_id for m in await tracking_messages(redis)]
    assert len(tracking) == 200 and len(set(tracking)) == 200
    assert_clean_bridge_log(env)
