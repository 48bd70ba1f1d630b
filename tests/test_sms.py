"""The SMS channel against a real Kannel: bearerbox + smsbox from Debian, the fake SMSC over TCP.

Every MO here is written by the test as the SMSC, passes through bearerbox and smsbox, and
reaches ``/sms/inbound`` by Kannel's own ``post-url``; every reply goes back through ``sendsms``
and comes out at the SMSC's socket, where the test reads it as the citizen's phone would show it.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from bots.core.engine import Engine
from bots.core.outbox import list_dead
from bots.core.worker import publish
from bots.sms import SmsSettings
from bots.sms.render import render
from bridge.open311 import Open311Client
from bridge.sandbox import SandboxServer
from bridge.status import StatusService
from bridge.submitter import Submitter
from bridge.vault import Vault
from kanal import streams
from kanal.errors import LockTimeout
from kanal.messages import Outbound
from kanal.redis import Redis
from kanal.settings import CrmSettings, KanalSettings, RasaSettings, RedisSettings
from kanal.tasks import stop_tasks
from tests.harness import PLANTED, assert_clean
from tests.kannel import DENIED_PREFIX, Mt
from tests.peers import REPO
from tests.sandbox_fixtures import wait_until
from tests.sms_fixtures import SECRET, SmsStack, post_mo, stack

__all__ = ["stack"]

PHONE = "+62" + PLANTED.phone[1:]  # +6281311112222: the planted number, as operators send it
STORY = "sampah menumpuk di pinggir kali dekat pasar, bau sekali"


async def answer(stack: SmsStack, sender: str, text: str) -> Mt:
    """A citizen's answer: people take a moment to read before they reply."""
    await asyncio.sleep(1.1)
    return await stack.chat(sender, text)


async def report(stack: SmsStack, sender: str = PHONE, story: str = STORY) -> Mt:
    """A whole report by SMS, up to the summary; returns the summary SMS."""
    mt = await stack.chat(sender, f"LAPOR {story}")
    if "Benar?" in mt.text:
        mt = await answer(stack, sender, "1")
    assert "lokasi" in mt.text.lower(), mt
    mt = await answer(stack, sender, "Jl. Kemang Raya no 10 RT 03")
    assert "kelurahan" in mt.text.lower(), mt
    mt = await answer(stack, sender, "Bangka")
    assert mt.text.startswith("Cek laporan:"), mt
    return mt


# ---- the whole way: SMS -> Kannel -> Kanal -> CRM, and the answers back ----------------------
@pytest.fixture
async def crm(
    redis: Redis, engine: Engine, tmp_path: Path
) -> AsyncIterator[tuple[SandboxServer, StatusService]]:
    async with (
        SandboxServer(tmp_path / "crm.sqlite3") as server,
        Open311Client(server.url) as client,
    ):
        vault = Vault(redis, engine.keyring)
        status = StatusService(redis, client, vault, poll_interval_s=0.2)
        tasks = [
            asyncio.create_task(Submitter(redis, client, vault).run()),
            asyncio.create_task(status.run_relay()),
            asyncio.create_task(status.run_lookups()),
        ]
        yield server, status
        await stop_tasks(tasks)


async def test_full_report_reaches_crm_and_answers_come_back_as_sms(
    stack: SmsStack, crm: tuple[SandboxServer, StatusService], logs: io.StringIO
) -> None:
    server, _ = crm
    summary = await report(stack, story=f"{STORY}. {PLANTED.name}, hp {PLANTED.phone}")
    assert "Balas 1 Kirim, 2 Ubah, 3 Batal" in summary.text
    sent = await answer(stack, PHONE, "1")
    assert "Laporan diterima" in sent.text
    tracking = await stack.mt(timeout=20)  # the bridge filed it: the CRM's number, by SMS
    assert tracking.receiver == PHONE and tracking.sender == "1708"
    [req] = server.store.list_requests()
    assert f"nomor {req.id} (Sampah)" in tracking.text and f"CEK {req.id}" in tracking.text
    assert tracking.parts == 1 and not tracking.ucs2

    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            f"/officer/requests/{req.id}/status",
            json={"status": "in_progress", "note": "Truk sampah dijadwalkan besok pagi."},
        )
        assert r.status_code in (200, 201), r.text
    update = await stack.mt(timeout=20)
    assert update.text == (
        f"Laporan {req.id}: dalam pengerjaan. Catatan: Truk sampah dijadwalkan besok pagi."
    )

    # CEK <nomor> by SMS: the bridge looks it up and answers by SMS.
    checking = await answer(stack, PHONE, f"cek {req.id}")
    assert f"status laporan {req.id}" in checking.text
    looked = await stack.mt(timeout=20)
    assert looked.text.startswith(f"Laporan {req.id}: dalam pengerjaan.")

    # The phone number never reaches the CRM nor a log line.
    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{server.url}/requests/{req.id}.json")).json()
    crm_side = json.dumps(seen) + json.dumps(
        [r.model_dump(mode="json") for r in server.store.list_requests()]
    )
    assert_clean(crm_side, where="the CRM")
    assert_clean(logs.getvalue())


# ---- numbers ---------------------------------------------------------------------------------
async def test_08_628_and_plus628_are_one_conversation(stack: SmsStack) -> None:
    mt = await stack.chat("0813-1111-2222", f"LAPOR {STORY}")
    assert "lokasi" in mt.text.lower(), mt
    mt = await answer(stack, "6281311112222", "Jl. Kemang Raya no 10 RT 03")
    assert "kelurahan" in mt.text.lower(), mt  # the same report goes on
    mt = await answer(stack, "+6281311112222", "Bangka")
    assert mt.text.startswith("Cek laporan: Sampah, Jl. Kemang Raya no 10 RT 03"), mt
    # Every answer went to the one E.164 number, and there is one conversation.
    assert {m.receiver for m in (mt,)} == {PHONE}
    keys = [k async for k in stack.redis.scan_iter(match="kanal:conv:*")]
    assert len(keys) == 1


# ---- encodings and length ------------------------------------------------------------------
async def test_emoji_and_accents_both_ways(stack: SmsStack, engine: Engine) -> None:
    story = "Got mampet 😡 di depan rumah Bu Inés, air meluap ke jalan"
    mt = await stack.chat(PHONE, f"lapor {story}")  # an MO in UCS-2 through Kannel
    conv = engine.keyring.pseudonym("sms", PHONE)
    state = await engine.sessions.load(conv)
    assert state.draft.description == story  # not garbled on the way in
    assert not mt.ucs2  # our question is GSM-7
    # Out: an officer's note with an accented name and an emoji goes as UCS-2, intact ...
    note = "Laporan 2400001: selesai. Catatan: Sudah dibersihkan oleh Pak Martín 👍"
    await stack.push(to=PHONE, conv=conv, text=note, kind="update")
    out = await stack.mt()
    assert out.ucs2 and out.text == note
    # ... and curly quotes and a dash are transliterated, so the text stays GSM-7.
    quoted = "Laporan 2400001: selesai. Catatan: “Sudah beres” – petugas"
    await stack.push(to=PHONE, conv=conv, text=quoted, kind="update")
    out = await stack.mt()
    assert not out.ucs2 and out.text == 'Laporan 2400001: selesai. Catatan: "Sudah beres" - petugas'


async def test_long_messages_both_ways(stack: SmsStack, engine: Engine) -> None:
    parts = [
        "lapor Jalan berlubang besar sekali di depan SDN 03, sudah dua minggu tidak diperbaiki ",
        "dan kemarin ada pengendara motor yang jatuh karena tidak melihat lubangnya waktu malam ",
        "hujan. Mohon segera ditambal sebelum ada korban lagi.",
    ]
    await asyncio.to_thread(stack.smsc.mo_parts, PHONE, parts)  # one SMS in three parts
    mt = await stack.mt()
    assert "lokasi" in mt.text.lower() or "Benar?" in mt.text, mt
    conv = engine.keyring.pseudonym("sms", PHONE)
    state = await engine.sessions.load(conv)
    assert state.draft.description == "".join(parts)[len("lapor ") :].strip()  # joined by Kannel
    assert not await stack.quiet(0.5)  # one message, one answer
    # Out: a long status note goes as one concatenated SMS of the segments render counted.
    note = "Catatan: " + "Perbaikan jalan dijadwalkan minggu depan oleh Dinas Bina Marga. " * 4
    msg = Outbound(
        channel="sms",
        to=PHONE,
        conv=conv,
        text="Kabar laporan 2400001: dalam pengerjaan. " + note,
        kind="update",
    )
    expected = render(msg)
    assert expected.segments == 2 and expected.encoding == "gsm7"
    await publish(stack.redis, msg)  # as the bridge does
    out = await stack.mt()
    assert out.parts == expected.segments and out.text == expected.text


# ---- duplicates, secrets, retries ------------------------------------------------------------
async def test_duplicate_mo_is_answered_once(stack: SmsStack) -> None:
    # The gateway delivers the same SMS twice (new Kannel ids, same sender and text).
    await stack.mo(PHONE, "halo")
    await stack.mo(PHONE, "halo")
    first = await stack.mt()
    assert "Kanal" in first.text
    assert not await stack.quiet(1.5)
    # Kannel retrying one message id: the engine's dedup drops it as well.
    for _ in range(2):
        r = await post_mo(stack.url, **{"from": PHONE, "id": "kannel-id-7", "text": "bantuan"})
        assert r.status_code == 200
    help_sms = await stack.mt()
    assert "Cara lapor" in help_sms.text
    assert not await stack.quiet(1.0)


async def test_wrong_or_missing_secret_records_nothing(stack: SmsStack) -> None:
    for secret in ("tebakan", "", None, SECRET + "x"):
        r = await post_mo(stack.url, secret=secret, **{"from": PHONE, "id": "x1", "text": "halo"})
        assert r.status_code == 401
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{stack.url}/sms/dlr", params={"secret": "tebakan", "mt": "a", "status": "2"}
        )
        assert r.status_code == 401
    keys = [k async for k in stack.redis.scan_iter()]
    assert keys == [streams.outbox("sms")]  # the sender's own group; no state, no dedup key
    assert await stack.redis.xlen(streams.outbox("sms")) == 0
    assert not await stack.quiet(0.5)


async def test_unrecorded_mo_gets_5xx_and_kannel_retries_it(
    stack: SmsStack, monkeypatch: pytest.MonkeyPatch, logs: io.StringIO
) -> None:
    real = stack.worker.turn
    calls = {"n": 0}

    async def flaky(inbound):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise LockTimeout("conversation is busy")
        return await real(inbound)

    monkeypatch.setattr(stack.worker, "turn", flaky)
    mt = await stack.chat(PHONE, "halo", timeout=20)  # smsbox's http-request-retry
    assert "Kanal" in mt.text and calls["n"] == 2
    assert '"sms_inbound_not_recorded"' in logs.getvalue()
    assert not await stack.quiet(1.0)


async def test_reply_waits_while_kannel_is_down_and_goes_once_it_is_back(
    stack: SmsStack, engine: Engine, logs: io.StringIO
) -> None:
    await asyncio.to_thread(stack.peer.stop_smsbox)
    conv = engine.keyring.pseudonym("sms", PHONE)
    await stack.push(
        to=PHONE,
        conv=conv,
        kind="tracking",
        text="Laporan Anda tercatat dengan nomor 2400001 "
        "(Sampah & kebersihan). Simpan nomor ini; ketik "
        "'cek 2400001' untuk melihat statusnya. Kabar "
        "berikutnya akan kami kirim di sini.",
        tracking_id="2400001",
    )
    await wait_until(lambda: _logged(logs, "outbox_send_retry"), timeout=10)
    assert not await stack.quiet(1.0)
    await asyncio.to_thread(stack.peer.start_smsbox)
    mt = await stack.mt(timeout=20)
    assert mt.text.startswith("Laporan tercatat, nomor 2400001 (Sampah).")
    assert not await stack.quiet(2.0)  # once
    assert not await list_dead(stack.redis, "sms")


async def _logged(logs: io.StringIO, event: str) -> bool:
    return f'"{event}"' in logs.getvalue()


# ---- delivery reports -----------------------------------------------------------------------
async def test_dlr_failure_dead_letters_for_that_pseudonym(stack: SmsStack, engine: Engine) -> None:
    refused = DENIED_PREFIX + "12345678"  # Kannel: "Not routable", then a DLR 16 (SMSC reject)
    conv = engine.keyring.pseudonym("sms", refused)
    await stack.push(to=refused, conv=conv, kind="update", text="Kabar laporan 2400001: selesai.")

    async def reported() -> bool:
        entries = await stack.redis.xrange("kanal:sms:dlr")
        return any(f["status"] == "16" for _, f in entries)

    await wait_until(reported, timeout=15)
    await wait_until(lambda: list_dead(stack.redis, "sms"), timeout=10)
    await asyncio.sleep(0.5)
    [dead] = await list_dead(stack.redis, "sms")  # once, whichever said it first
    assert dead.conv == conv and dead.reason in ("not_routable", "dlr_rejected")
    assert await stack.redis.get(streams.unreachable_key(conv))

    # A message Kannel accepted, whose final report says it failed (%d = 2).
    other = engine.keyring.pseudonym("sms", PHONE)
    await stack.push(to=PHONE, conv=other, kind="update", text="Kabar laporan 2400002: selesai.")
    await stack.mt()

    async def delivered() -> list[str]:
        entries = await stack.redis.xrange("kanal:sms:dlr")
        return [f["mt"] for _, f in entries if f["conv"] == other and f["status"] == "1"]

    await wait_until(delivered, timeout=10)
    [mt_id] = await delivered()
    async with httpx.AsyncClient() as http:
        r = await http.get(
            f"{stack.url}/sms/dlr", params={"secret": SECRET, "mt": mt_id, "status": "2"}
        )
        assert r.status_code == 200
        again = await http.get(
            f"{stack.url}/sms/dlr", params={"secret": SECRET, "mt": mt_id, "status": "2"}
        )
        assert again.status_code == 200
    dead = [d for d in await list_dead(stack.redis, "sms") if d.conv == other]
    assert [d.reason for d in dead] == ["dlr_failed"]
    assert await stack.redis.get(streams.unreachable_key(other))


async def test_a_bad_number_and_an_empty_sms_get_no_crash(stack: SmsStack) -> None:
    r = await post_mo(stack.url, **{"from": "TELKOMSEL", "id": "op-1", "text": "Promo!"})
    assert r.status_code == 200  # not a citizen: dropped, not retried
    mt = await stack.chat(PHONE, " ")
    assert "kosong" in mt.text.lower()


def test_compose_runs_kannel_and_the_sms_worker() -> None:
    """The deployment: bearerbox, smsbox (healthy before the worker) and ``python -m bots.sms``,
    with an sms-service that posts every MO to the worker, secret included."""
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"kannel-bearerbox", "kannel-smsbox", "sms"} <= set(services)
    sms = services["sms"]
    assert sms["command"] == ["python", "-m", "bots.sms"]
    assert sms["depends_on"]["kannel-smsbox"]["condition"] == "service_healthy"
    assert services["kannel-smsbox"]["depends_on"]["kannel-bearerbox"]["condition"] == (
        "service_healthy"
    )
    known = {
        f"{s.model_config.get('env_prefix', '')}{f}".upper()
        for s in (KanalSettings, RedisSettings, CrmSettings, RasaSettings, SmsSettings)
        for f in s.model_fields
    }
    env = {**doc["x-kanal"]["environment"], **sms["environment"]}
    assert set(env) <= known, set(env) - known
    assert env["SMS_KANNEL_SENDSMS_URL"].startswith("http://kannel-smsbox:13013/")
    for name in ("kannel-bearerbox", "kannel-smsbox", "sms"):
        assert services[name]["healthcheck"]["test"]
    conf = (REPO / "deploy" / "kannel" / "kannel.conf.template").read_text()
    assert 'post-url = "http://sms:8080/sms/inbound?secret=${SMS_INBOUND_SECRET}' in conf
    assert "from=%p&to=%P&id=%I&ts=%t" in conf
    for line in ("catch-all = true", "max-messages = 0", "mo-recode = true", "http-request-retry"):
        assert line in conf
