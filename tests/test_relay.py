"""Status relay, ratings and status checks: engine → bridge → sandbox CRM over HTTP → citizen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bots.core.engine import Engine
from bridge.open311 import Open311Client
from bridge.sandbox import SandboxServer
from bridge.status import StatusService, update_message
from bridge.submitter import Submitter
from bridge.vault import Vault
from kanal import streams
from kanal.messages import Expects, Outbound
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.conftest import Citizen
from tests.test_engine import JAKARTA, last


@dataclass
class Bridge:
    crm: SandboxServer
    status: StatusService
    redis: Redis

    async def outbox(self, n: int, timeout: float = 10) -> list[Outbound]:
        """Wait until the console outbox holds ``n`` messages; return them all."""
        async with asyncio.timeout(timeout):
            while True:
                entries = await self.redis.xrange(streams.outbox("console"))
                if len(entries) >= n:
                    return [Outbound.model_validate_json(f["outbound"]) for _, f in entries]
                await asyncio.sleep(0.02)


@pytest.fixture
async def bridge(redis: Redis, engine: Engine, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with SandboxServer(tmp_path / "crm.sqlite3") as crm, Open311Client(crm.url) as client:
        vault = Vault(redis, engine.keyring)
        status = StatusService(redis, client, vault, poll_interval_s=0.05)
        tasks = [
            asyncio.create_task(Submitter(redis, client, vault).run()),
            asyncio.create_task(status.run_lookups()),
            asyncio.create_task(status.run_ratings()),
        ]
        yield Bridge(crm, status, redis)
        await stop_tasks(tasks)


async def file_report(c: Citizen) -> None:
    await c.say("lampu jalan mati di gang mawar sudah seminggu")
    out = last(await c.say("ya"))
    if out.expects == Expects.CATEGORY:
        await c.say("4")
    await c.share(*JAKARTA)
    await c.say("lewati")
    assert "diterima" in last(await c.say("kirim")).text


async def test_update_reaches_citizen_then_rating_reaches_crm(
    citizen: Citizen, bridge: Bridge
) -> None:
    await file_report(citizen)
    [tracking] = await bridge.outbox(1)
    srid = tracking.tracking_id
    assert srid and tracking.to == citizen.user and tracking.kind == "tracking"

    bridge.crm.store.add_update(int(srid), "forwarded", "Diteruskan ke Suku Dinas Bina Marga")
    await bridge.status.poll_once()
    bridge.crm.store.add_update(
        int(srid), "resolved", "Lampu sudah diganti", media_url="https://crm.example/bukti.jpg"
    )
    await bridge.status.poll_once()
    await bridge.status.poll_once()  # the same updates again: relayed once
    msgs = await bridge.outbox(3)
    assert len(msgs) == 3
    assert "diteruskan ke kelurahan/dinas" in msgs[1].text and msgs[1].expects == Expects.NONE
    done = msgs[2]
    assert "selesai" in done.text and "bukti.jpg" in done.text
    assert done.expects == Expects.RATING and done.choices == ("1", "2", "3", "4", "5")

    r = await citizen.say("4")
    assert "4/5" in last(r).text
    async with asyncio.timeout(10):
        while bridge.crm.store.get_request(int(srid)).rating != 4:  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
    r = await citizen.say("4")
    assert "4/5" not in last(r).text, "one rating per closed report"


async def test_rejection_carries_the_reason() -> None:
    text = update_message("2400009", "rejected", "closed", "Bukan wewenang Pemprov DKI")
    assert "ditolak" in text and "Alasan: Bukan wewenang" in text and "nilai" in text


async def test_status_check_details_only_for_the_reporter(
    citizen: Citizen, engine: Engine, bridge: Bridge
) -> None:
    await file_report(citizen)
    [tracking] = await bridge.outbox(1)
    srid = str(tracking.tracking_id)
    bridge.crm.store.add_update(int(srid), "in_progress", "Teknisi dijadwalkan Kamis")
    await bridge.status.poll_once()

    await citizen.say(f"cek {srid}")
    stranger = Citizen(engine, user="6289999999999")
    await stranger.say(f"status laporan {srid} gimana?")
    await stranger.say("cek 9999999")
    msgs = await bridge.outbox(5)
    mine = [m for m in msgs[2:] if m.to == citizen.user]
    theirs = [m for m in msgs[2:] if m.to == stranger.user]
    assert len(mine) == 1 and "dalam pengerjaan" in mine[0].text
    assert (
        theirs[0].tracking_id == srid
        and "Rincian hanya dikirim kepada pelapornya" in theirs[0].text
    )
    assert "dalam pengerjaan" not in theirs[0].text and "Teknisi" not in theirs[0].text
    assert "tidak ditemukan" in theirs[1].text
