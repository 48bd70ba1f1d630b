"""No personal value reaches the CRM or any log line.

Personal values are planted in every field a citizen can fill (story, address, photo metadata)
and in the sender identity; after the report is filed and an update relayed, the CRM (over its
own Open311 API and in its database file) and every captured log line are scanned for them.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bots.core.engine import Engine
from bridge.open311 import Open311Client
from bridge.sandbox import SandboxServer
from bridge.status import StatusService
from bridge.submitter import Submitter
from bridge.vault import Vault
from kanal import streams
from kanal.keys import Keyring
from kanal.messages import Expects, PhotoIn
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.conftest import Citizen
from tests.images import jpeg
from tests.test_engine import last

SENDER = "+6281311112222"
PLANTED = [
    "Budi",
    "Santoso",
    "3174012345678901",
    "budi.santoso@gmail.com",
    "0813-1111-2222",
    "081311112222",
    "6281311112222",
    "@budisantoso",
    "Kamera-SN-99887766",
]
STORY = (
    "Kepada Yth. Bapak/Ibu petugas. Nama saya Budi Santoso, NIK 3174012345678901, email "
    "budi.santoso@gmail.com, WA 0813-1111-2222, twitter @budisantoso. Saya ingin melaporkan "
    "sampah yang menumpuk di depan gang kami sudah dua minggu tidak diangkut. Mohon "
    "ditindaklanjuti.\nHormat saya,\nBudi Santoso"
)


async def test_planted_personal_values_never_leave(
    engine: Engine, redis: Redis, logs: io.StringIO, tmp_path: Path
) -> None:
    c = Citizen(engine, user=SENDER, channel="sms")
    async with SandboxServer(tmp_path / "crm.sqlite3") as crm, Open311Client(crm.url) as client:
        vault = Vault(redis, engine.keyring)
        status = StatusService(redis, client, vault)
        task = asyncio.create_task(Submitter(redis, client, vault).run())
        try:
            out = last(await c.say(STORY))
            if out.expects == Expects.CATEGORY:
                out = last(await c.say("1"))
            assert out.expects == Expects.LOCATION
            out = last(
                await c.say("Jl. Melati No 5 RT 03/RW 04 Kel. Tebet Barat, telp 081311112222")
            )
            assert out.expects == Expects.PHOTO
            photo = jpeg(exif_text="Budi Santoso 081311112222 Kamera-SN-99887766")
            await c.engine.handle(c.inbound(photos=(PhotoIn(data=photo, filename="budi.jpg"),)))
            await c.say("selesai")
            assert "diterima" in last(await c.say("kirim")).text
            async with asyncio.timeout(10):
                while not crm.store.list_requests():
                    await asyncio.sleep(0.05)
            [req] = crm.store.list_requests()
            crm.store.add_update(req.id, "resolved", "Sudah diangkut")
            await status.poll_once()
            await c.say(f"cek {req.id}")
            await c.say("5")
            async with httpx.AsyncClient(base_url=crm.url) as http:
                listed = (await http.get("/requests.json")).text
                one = (await http.get(f"/requests/{req.id}.json")).text
                updates = (await http.get("/servicerequestupdates.json")).text
        finally:
            await stop_tasks([task])

    crm_side = "\n".join([req.model_dump_json(), listed, one, updates])
    crm_side += (tmp_path / "crm.sqlite3").read_bytes().decode("latin-1")
    for wal in tmp_path.glob("crm.sqlite3-*"):
        crm_side += wal.read_bytes().decode("latin-1")
    log_text = logs.getvalue()
    assert log_text.count("\n") > 10, "the scan must have something to scan"
    for value in PLANTED:
        assert value not in crm_side, f"{value!r} reached the CRM"
        assert value not in log_text, f"{value!r} reached a log line"
    assert "sampah yang menumpuk" in req.description, "the problem itself is kept"
    assert req.attributes["channel"] == "sms"
    assert req.attributes["reporter"].startswith("r_"), "a reference of its own, not the pseudonym"
    assert not any(v.startswith("p_") for v in req.attributes.values())
    for forbidden in ("menumpuk", "Melati", "-6.", "106."):
        assert forbidden not in log_text, f"{forbidden!r}: logs carry no text or coordinates"
    # The citizen's own channel still got everything, through the vault.
    outbox = [json.loads(f["outbound"]) for _, f in await redis.xrange(streams.outbox("sms"))]
    assert outbox and all(m["to"] == SENDER for m in outbox)


@pytest.mark.parametrize("linkable", [False, True], ids=["unlinkable", "linkable"])
async def test_two_reports_of_one_citizen_cannot_be_linked_by_the_crm(
    redis: Redis, tmp_path: Path, linkable: bool
) -> None:
    from bridge.submitter import ledger_key
    from kanal.messages import Complaint, Location

    keyring = Keyring(["link-test"])
    conv = keyring.pseudonym("telegram", "5550001")
    ids = []
    for n, (category, lat) in enumerate([("sampah", -6.2001), ("jalan_rusak", -6.2402)]):
        c = Complaint(
            complaint_id=uuid.uuid4().hex,
            conv=conv,
            channel="telegram",
            category=category,
            description=f"laporan ke-{n + 1}",
            location=Location(lat=lat, lon=106.8, kecamatan="Menteng"),
            created_at=datetime.now(UTC),
        )
        await redis.xadd(streams.COMPLAINTS, {"complaint": c.model_dump_json()})
        ids.append(c.complaint_id)
    vault = Vault(redis, keyring)
    async with SandboxServer(tmp_path / "crm.sqlite3") as crm, Open311Client(crm.url) as client:
        submitter = Submitter(redis, client, vault, keyring=keyring, linkable_reporter=linkable)
        task = asyncio.create_task(submitter.run())
        try:
            async with asyncio.timeout(20):
                while not all(
                    [await redis.hexists(ledger_key(i), "service_request_id") for i in ids]
                ):
                    await asyncio.sleep(0.05)
        finally:
            await stop_tasks([task])
        first, second = crm.store.list_requests()
    # The same for millions of reports, or the problem's own place (not the reporter's).
    coarse = {"channel", "photo_count", "kelurahan", "kecamatan"}
    shared = {
        k for k, v in first.attributes.items() if k not in coarse and second.attributes.get(k) == v
    }
    if linkable:
        assert shared == {"reporter"} and first.attributes["reporter"] == conv
    else:
        assert shared == set(), f"the CRM could link them by {shared}"
        assert conv not in first.model_dump_json() + second.model_dump_json()
