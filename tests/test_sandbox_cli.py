"""``kanal crm-sandbox``: the foreground server and the officer/list commands, as processes."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx

from bridge.sandbox import SandboxStore
from tests import sandbox_fixtures as fixtures
from tests.sandbox_fixtures import create

store, sandbox, http = fixtures.store, fixtures.sandbox, fixtures.http
REPO = Path(__file__).resolve().parents[1]


async def _cli(*args: str) -> tuple[int, str]:
    code = "from bridge.sandbox.cli import app; app()"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_cli_officer_writes_while_server_runs(
    http: httpx.AsyncClient, store: SandboxStore
) -> None:
    request_id = await create(http)
    db = str(store.path)
    photo = "https://crm.example/bukti/2.jpg"
    status, out = await _cli(
        "officer", "status", request_id, "resolved", "--photo-url", photo, "--db", db
    )
    assert status == 0, out
    (item,) = (await http.get(f"/requests/{request_id}.json")).json()
    assert item["external_status_code"] == "resolved"
    feed = (await http.get("/servicerequestupdates.json")).json()
    assert feed[-1]["media_url"] == photo
    status, out = await _cli("list", "--db", db)
    assert status == 0 and request_id in out and "resolved" in out
    assert (await _cli("officer", "status", request_id, "dibuang", "--db", db))[0] != 0


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    code = "from bridge.sandbox.cli import app; app()"
    args = ("--port", "0", "--db", str(tmp_path / "crm.sqlite3"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    url = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert url, line
    async with httpx.AsyncClient(base_url=url.group()) as client:
        assert (await client.get("/healthz")).status_code == 200
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
