"""``kanal parked list | replay`` and ``kanal outbox dead list | replay`` as an operator runs
them: real processes against a real Redis, after a real submitter and a real outbox sender."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bots.core.outbox import OutboxPolicy, deliver_outbox
from bots.core.worker import publish
from bridge.open311 import Open311Client
from bridge.sandbox import AppServer, SandboxServer
from bridge.submitter import Submitter, ledger_key
from bridge.vault import Vault
from kanal import streams
from kanal.errors import RecipientUnreachable
from kanal.keys import Keyring
from kanal.messages import Complaint, Location, Outbound
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.harness import PLANTED, assert_clean
from tests.peers import REPO

SECRET = "ops-test-key"
STORY = f"got mampet depan rumah {PLANTED.name}, hubungi {PLANTED.phone}"


def kanal(redis_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "RASA_"))}
    env.update(REDIS_URL=redis_url, KANAL_DATA_DIR=str(tmp), KANAL_SECRET_KEY=SECRET)
    return subprocess.run(
        [sys.executable, "-m", "kanal", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def refusing(_: Request) -> Response:
    body = [{"code": 400, "description": "service_code not configured"}]
    return JSONResponse(body, status_code=400)


async def until(pred: object, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await pred():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_a_parked_report_is_listed_without_details_and_filed_once_on_replay(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    keyring = Keyring([SECRET])
    conv = keyring.pseudonym("telegram", PLANTED.chat_id)
    contact = json.dumps({"channel": "telegram", "address": PLANTED.chat_id}).encode()
    await redis.hset(streams.vault_key(conv), "contact", keyring.encrypt(contact))
    c = Complaint(
        complaint_id="c0ffee00c0ffee00c0ffee00c0ffee00",
        conv=conv,
        channel="telegram",
        category="banjir",
        description=STORY,
        location=Location(lat=-6.2, lon=106.8, address="Jl. Kenanga 5", kecamatan="Menteng"),
        created_at=datetime.now(UTC),
    )
    await redis.xadd(streams.COMPLAINTS, {"complaint": c.model_dump_json()})
    vault = Vault(redis, keyring)
    refuser = Starlette(routes=[Route("/{p:path}", refusing, methods=["GET", "POST"])])
    async with AppServer(refuser) as bad, Open311Client(bad.url) as client:
        task = asyncio.create_task(Submitter(redis, client, vault).run())
        try:
            await until(lambda: _xlen(redis, streams.PARKED))
        finally:
            await stop_tasks([task])

    listed = kanal(redis_url, tmp_path, "parked", "list")
    assert listed.returncode == 0, listed.stderr
    [header, row] = listed.stdout.strip().splitlines()
    assert header.startswith("entry\t")
    entry_id, _, reason, complaint_id, category, channel, reporter = row.split("\t")
    assert (reason, complaint_id, category, channel, reporter) == (
        "crm 400",
        c.complaint_id,
        "banjir",
        "telegram",
        conv,
    )
    assert "mampet" not in listed.stdout and "Kenanga" not in listed.stdout
    assert_clean(listed.stdout + listed.stderr, where="kanal parked list")

    # The CRM's configuration is fixed: replay, and the real sandbox files it, once.
    replayed = kanal(redis_url, tmp_path, "parked", "replay", entry_id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert await redis.xlen(streams.PARKED) == 0
    async with SandboxServer(tmp_path / "crm.sqlite3") as crm, Open311Client(crm.url) as client:
        task = asyncio.create_task(Submitter(redis, client, vault, consumer="second").run())
        try:
            await until(lambda: redis.hexists(ledger_key(c.complaint_id), "service_request_id"))
        finally:
            await stop_tasks([task])
        assert len(crm.store.list_requests()) == 1
    again = kanal(redis_url, tmp_path, "parked", "replay", entry_id)
    assert again.returncode == 1 and "no parked report" in again.stdout
    assert "no parked reports" in kanal(redis_url, tmp_path, "parked", "list").stdout


async def test_a_dead_letter_is_listed_without_details_and_sent_again_on_replay(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    conv = Keyring([SECRET]).pseudonym("sms", PLANTED.phone)
    out = Outbound(
        channel="sms",
        to=PLANTED.phone,
        conv=conv,
        text="Kabar laporan 2400007: dalam pengerjaan. Catatan petugas: truk datang besok.",
        tracking_id="2400007",
        kind="update",
    )
    await publish(redis, out)
    policy = OutboxPolicy(claim_idle_ms=300, block_ms=50)

    async def blocked(_: Outbound) -> None:
        raise RecipientUnreachable("the operator said no", reason="no_such_number")

    task = asyncio.create_task(deliver_outbox(redis, "sms", blocked, policy=policy))
    try:
        await until(lambda: _xlen(redis, streams.dead_letters("sms")))
    finally:
        await stop_tasks([task])
    assert await redis.exists(streams.unreachable_key(conv))

    listed = kanal(redis_url, tmp_path, "outbox", "dead", "list")
    assert listed.returncode == 0, listed.stderr
    [_, row] = listed.stdout.strip().splitlines()
    channel, entry_id, _, reason, attempts, kind, reporter, tracking = row.split("\t")
    assert (channel, reason, attempts, kind, reporter, tracking) == (
        "sms",
        "no_such_number",
        "1",
        "update",
        conv,
        "2400007",
    )
    assert "truk" not in listed.stdout
    assert_clean(listed.stdout + listed.stderr, where="kanal outbox dead list")

    replayed = kanal(redis_url, tmp_path, "outbox", "dead", "replay", entry_id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert_clean(replayed.stdout, where="kanal outbox dead replay")
    assert await redis.xlen(streams.dead_letters("sms")) == 0
    assert not await redis.exists(streams.unreachable_key(conv))
    sent: list[Outbound] = []

    async def works(o: Outbound) -> None:
        sent.append(o)

    task = asyncio.create_task(deliver_outbox(redis, "sms", works, policy=policy))
    try:
        await until(lambda: _true(len(sent) == 1))
        await asyncio.sleep(0.3)
    finally:
        await stop_tasks([task])
    assert sent == [out]
    missing = kanal(redis_url, tmp_path, "outbox", "dead", "replay", "1-1")
    assert missing.returncode == 1 and "no dead letter" in missing.stdout


async def _xlen(redis: Redis, stream: str) -> bool:
    return int(await redis.xlen(stream)) > 0


async def _true(value: bool) -> bool:
    return value
