"""The bridge against Open311 servers that follow the spec but are not the sandbox's defaults:
string update ids, token responses, a city's own service codes, a paged updates feed, a bad
record in the feed, a CRM that keeps failing. Real Redis, the sandbox over HTTP in each mode,
``kanal chat`` as a real process where a citizen is in the loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.open311 import Open311Client
from bridge.sandbox import AppServer, SandboxServer
from bridge.sandbox.modes import CITY_CODES, SandboxMode
from bridge.services import ServiceMap
from bridge.status import StatusService
from bridge.submitter import Submitter, reference, to_open311
from bridge.vault import Vault
from kanal import metrics, streams
from kanal.errors import PermanentPeerError
from kanal.keys import Keyring
from kanal.messages import Outbound
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.harness import PLANTED, assert_clean
from tests.peers import GAZETTEER, REPO
from tests.test_bridge_crash import SECRET, enqueue, is_filed, tracking_messages

REPORT = ["halo", "sampah numpuk di pinggir kali, bau banget", "ya", "/lokasi -6.1702 106.8305"]


def chat(redis_url: str, data: Path, crm_url: str, **env: str) -> subprocess.Popen[str]:
    data.mkdir(parents=True, exist_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "RASA_"))}
    e.update(
        REDIS_URL=redis_url,
        CRM_URL=crm_url,
        CRM_POLL_INTERVAL_S="0.3",
        CRM_TOKEN_POLL_S="0.3",
        KANAL_DATA_DIR=str(data),
        KANAL_GAZETTEER_FILE=str(GAZETTEER),
        KANAL_SECRET_KEY="real-crm-test",
        KANAL_LOG_LEVEL="INFO",
        **env,
    )
    with (data / "chat.log").open("w") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kanal",
                "chat",
                "--json",
                "--user",
                PLANTED.chat_id,
                "--wait",
                "5",
            ],
            cwd=REPO,
            env=e,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


class Console:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []

    def send(self, line: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    async def read_until(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The next message ``pred`` accepts (read off the loop: the sandbox serves on it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.stdout
            line = await asyncio.wait_for(
                asyncio.to_thread(self.proc.stdout.readline), deadline - time.monotonic()
            )
            if not line:
                break
            msg = json.loads(line)
            self.seen.append(msg)
            if pred(msg):
                return msg
        raise AssertionError(f"expected message never came; seen: {self.seen[-5:]}")

    async def close(self) -> int:
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.close()
            return await asyncio.to_thread(self.proc.wait, 60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()


async def test_an_update_with_a_string_id_reaches_the_console(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    mode = SandboxMode(string_update_ids=True)
    async with SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm:
        console = Console(chat(redis_url, tmp_path / "var", crm.url))
        try:
            for line in [*REPORT, "lewati", "kirim"]:
                console.send(line)
            tracking = (await console.read_until(lambda m: bool(m.get("tracking_id"))))[
                "tracking_id"
            ]
            update = crm.store.add_update(
                int(tracking), "in_progress", "<p>Truk <b>dijadwalkan</b> besok</p>"
            )
            async with httpx.AsyncClient() as http:
                feed = (await http.get(f"{crm.url}/servicerequestupdates.json")).json()
            assert any(u["update_id"] == f"{tracking}-{update.update_id}" for u in feed)
            got = await console.read_until(lambda m: "dalam pengerjaan" in m["text"])
            assert "Truk dijadwalkan besok" in got["text"], "HTML notes arrive as plain text"
        finally:
            assert await console.close() == 0
    assert "task_crashed" not in (tmp_path / "var" / "chat.log").read_text()


async def test_a_token_response_ends_with_the_real_tracking_number(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    mode = SandboxMode(tokens=True, token_delay_s=1.5)
    async with SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm:
        console = Console(chat(redis_url, tmp_path / "var", crm.url))
        try:
            for line in [*REPORT, "lewati"]:
                console.send(line)
            console.send("kirim")
            said = await console.read_until(lambda m: "sedang diteruskan" in m["text"])
            assert not said.get("tracking_id")
            console.send("cek status")  # before the CRM gave it a number
            pending = await console.read_until(
                lambda m: "diteruskan ke CRM" in m["text"] and m is not said
            )
            assert "nomor laporannya akan kami kirim" in pending["text"]
            tracking = (await console.read_until(lambda m: bool(m.get("tracking_id"))))[
                "tracking_id"
            ]
        finally:
            assert await console.close() == 0
        [req] = crm.store.list_requests()
        assert tracking == str(req.id), "the CRM's own id, not the token"
    assert "belum bisa diterima" not in json.dumps(console.seen), "a 2xx is never a failure"
    assert await redis.xlen(streams.PARKED) == 0
    assert_clean((tmp_path / "var" / "chat.log").read_text())


async def test_a_remapped_service_code_is_what_the_crm_receives(
    redis: Redis, tmp_path: Path
) -> None:
    path = tmp_path / "service-map.yml"
    path.write_text(yaml.safe_dump({**CITY_CODES, "fallback": "UMUM-99"}))
    [sampah] = await enqueue(redis, 1)
    mode = SandboxMode(service_codes=CITY_CODES)
    async with (
        SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm,
        Open311Client(crm.url) as client,
    ):
        services = ServiceMap.from_file(path)
        services.learn(s.service_code for s in await client.services())
        # fasilitas_umum and pelanggaran have no service in this city: filed under the fallback.
        assert services.missing() == ["fasilitas_umum", "pelanggaran"]
        assert services.code("fasilitas_umum") == "UMUM-99"
        vault = Vault(redis, Keyring([SECRET]))
        await file_all(Submitter(redis, client, vault, services=services), redis, [sampah])
        [req] = crm.store.list_requests()
        assert req.service_code == "KEBERSIHAN-01"
        assert req.attributes["kanal_category"] == "sampah"


def test_without_a_map_a_category_the_crm_lacks_goes_to_lainnya() -> None:
    services = ServiceMap()
    services.learn(["sampah", "lainnya"])
    assert services.code("sampah") == "sampah" and services.code("pohon") == "lainnya"


async def file_all(submitter: Submitter, redis: Redis, ids: list[str]) -> None:
    """Run the submitter (and its token poll) until every one of ``ids`` has a CRM id."""
    tasks = [asyncio.create_task(submitter.run()), asyncio.create_task(submitter.run_tokens())]
    try:
        async with asyncio.timeout(20):
            while not all([await is_filed(redis, i) for i in ids]):
                await asyncio.sleep(0.05)
    finally:
        await stop_tasks(tasks)


async def forward(upstream: str, request: Request) -> httpx.Response:
    """Pass one request on to the sandbox, as a front proxy does."""
    async with httpx.AsyncClient(base_url=upstream) as client:
        return await client.request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )


class Tamper:
    """A proxy in front of the sandbox: ``fail`` answers 500 that many times, and a malformed
    record can be put at the head of the updates feed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail = 0
        self.bad_record: dict[str, Any] | None = None
        self.calls: list[float] = []

    async def handle(self, request: Request) -> Response:
        self.calls.append(time.monotonic())
        if self.fail > 0:
            self.fail -= 1
            return Response(json.dumps([{"code": 503, "description": "maintenance"}]), 503)
        r = await forward(self.upstream, request)
        body = r.content
        if self.bad_record is not None and request.url.path.startswith("/servicerequestupdates"):
            body = json.dumps([self.bad_record, *r.json()]).encode()
        return Response(body, status_code=r.status_code, media_type="application/json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{p:path}", self.handle, methods=["GET", "POST"])])


async def _filed(redis: Redis, crm: SandboxServer, client: Open311Client, n: int) -> list[str]:
    ids = await enqueue(redis, n)
    await file_all(Submitter(redis, client, Vault(redis, Keyring([SECRET]))), redis, ids)
    return [str(r.id) for r in sorted(crm.store.list_requests(), key=lambda r: r.id)]


async def _updates(redis: Redis) -> list[Outbound]:
    return [m for m in await tracking_messages(redis) if m.kind == "update"]


async def test_a_malformed_update_is_skipped_and_the_next_good_one_relayed(
    redis: Redis, tmp_path: Path
) -> None:
    mode = SandboxMode(string_update_ids=True)
    async with SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm:
        tamper = Tamper(crm.url)
        async with AppServer(tamper.app()) as front, Open311Client(front.url) as client:
            [srid] = await _filed(redis, crm, client, 1)
            tamper.bad_record = {
                "update_id": "bad-1",
                "service_request_id": srid,
                "status": "maybe",
            }
            crm.store.add_update(int(srid), "in_progress", "Petugas menuju lokasi")
            before = metrics.CRM_BAD_RECORDS.labels("servicerequestupdates.json")._value.get()
            status = StatusService(redis, client, Vault(redis, Keyring([SECRET])))
            assert await status.poll_once() == 1
    [update] = await _updates(redis)
    assert "dalam pengerjaan" in update.text
    after = metrics.CRM_BAD_RECORDS.labels("servicerequestupdates.json")._value.get()
    assert after == before + 1


async def test_a_paged_feed_is_read_to_the_end(redis: Redis, tmp_path: Path) -> None:
    mode = SandboxMode(max_updates=3)
    async with (
        SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm,
        Open311Client(crm.url) as client,
    ):
        srids = await _filed(redis, crm, client, 10)
        for srid in srids:
            crm.store.add_update(int(srid), "forwarded", "Diteruskan ke kelurahan")
        status = StatusService(redis, client, Vault(redis, Keyring([SECRET])), page_limit=3)
        assert await status.poll_once() == 10
    assert sorted(m.tracking_id or "" for m in await _updates(redis)) == sorted(srids)


async def test_updates_are_relayed_in_the_order_they_happened(redis: Redis, tmp_path: Path) -> None:
    mode = SandboxMode(string_update_ids=True)
    async with (
        SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm,
        Open311Client(crm.url) as client,
    ):
        [srid] = await _filed(redis, crm, client, 1)
        # "9-10" sorts before "9-9" as text and after it as a number: neither is the order.
        for n in range(12):
            crm.store.add_update(int(srid), "in_progress", f"langkah {n}")
        await StatusService(redis, client, Vault(redis, Keyring([SECRET]))).poll_once()
    notes = [m.text.split("Catatan petugas: ")[1] for m in await _updates(redis)]
    assert notes == [f"langkah {n}" for n in range(12)]


async def test_a_relay_that_keeps_failing_backs_off_and_logs_a_few_lines(
    redis: Redis, tmp_path: Path, logs: Any
) -> None:
    async with SandboxServer(tmp_path / "crm.sqlite3") as crm:
        tamper = Tamper(crm.url)
        async with AppServer(tamper.app()) as front, Open311Client(front.url) as client:
            [srid] = await _filed(redis, crm, client, 1)
            crm.store.add_update(int(srid), "in_progress", "Petugas menuju lokasi")
            tamper.fail, tamper.calls = 7, []
            status = StatusService(
                redis, client, Vault(redis, Keyring([SECRET])), poll_interval_s=0.05
            )
            task = asyncio.create_task(status.run_relay())
            try:
                async with asyncio.timeout(30):
                    while not await _updates(redis):
                        await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)  # the poll that relayed it returns and says so
            finally:
                await stop_tasks([task])
    gaps = [b - a for a, b in zip(tamper.calls, tamper.calls[1:], strict=False)][:7]
    assert gaps[-1] > 4 * gaps[0], f"the retries back off: {gaps}"
    events = [json.loads(line)["event"] for line in logs.getvalue().splitlines()]
    failing = events.count("part_failing")
    assert failing == 3, "failures 1, 2 and 4 are logged; 3, 5, 6, 7 are not"  # bounded
    assert events.count("part_recovered") == 1
    assert events.count("open311.error") == 7  # one line per failed call, at growing intervals


async def test_no_personal_value_in_what_a_real_crm_receives(redis: Redis, tmp_path: Path) -> None:
    [cid] = await enqueue(redis, 1)
    complaints = await redis.xrange(streams.COMPLAINTS)
    mode = SandboxMode(
        string_update_ids=True, tokens=True, token_delay_s=0.2, honour_idempotency_key=False
    )
    async with (
        SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm,
        Open311Client(crm.url) as client,
    ):
        submitter = Submitter(redis, client, Vault(redis, Keyring([SECRET])), token_poll_s=0.1)
        await file_all(submitter, redis, [cid])
        [req] = crm.store.list_requests()
        assert reference(cid) in (req.description or "")
        assert req.attributes["kanal_ref"] == reference(cid)
        payload = req.model_dump_json()
    assert "62812000" not in payload  # the sender ids enqueue() sealed in the vault
    assert complaints


@pytest.mark.parametrize("text", [f"wa {PLANTED.phone}", f"email {PLANTED.email}"])
def test_the_reference_does_not_leak_the_story(text: str) -> None:
    from datetime import UTC, datetime

    from kanal.messages import Complaint, Location

    c = Complaint(
        complaint_id="ab" * 16,
        conv="p_x",
        channel="sms",
        category="sampah",
        description=text,
        location=Location(lat=-6.2, lon=106.8),
        created_at=datetime.now(UTC),
    )
    form = to_open311(c).form()
    assert_clean(json.dumps(form), where="the CRM form")
    assert form["description"].endswith(f"[Ref Kanal: {reference(c.complaint_id)}]")


def _doctor(crm_url: str, tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "RASA_"))}
    e.update(CRM_URL=crm_url, KANAL_DATA_DIR=str(tmp), KANAL_SECRET_KEY="doctor", **env)
    return subprocess.run(
        [sys.executable, "-m", "kanal", "doctor", *args],
        cwd=REPO,
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("honours", [True, False], ids=["honoured", "ignored"])
async def test_doctor_says_which_categories_lack_a_service_and_if_the_key_is_honoured(
    tmp_path: Path, honours: bool
) -> None:
    path = tmp_path / "service-map.yml"
    path.write_text(yaml.safe_dump({**CITY_CODES, "fallback": "UMUM-99"}))
    mode = SandboxMode(service_codes=CITY_CODES, honour_idempotency_key=honours)
    async with SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm:
        plain = await asyncio.to_thread(_doctor, crm.url, tmp_path, CRM_SERVICE_MAP=str(path))
        probed = await asyncio.to_thread(
            _doctor, crm.url, tmp_path, "--probe-idempotency", CRM_SERVICE_MAP=str(path)
        )
        filed = len(crm.store.list_requests())
    assert "fasilitas_umum -> filed as UMUM-99" in plain.stdout
    assert "pelanggaran -> filed as UMUM-99" in plain.stdout
    assert "[warn] Idempotency-Key: not checked" in plain.stdout
    if honours:
        assert "[ok  ] Idempotency-Key: honoured" in probed.stdout and filed == 1
    else:
        assert "[warn] Idempotency-Key: ignored: two probe requests" in probed.stdout
        assert filed == 2


async def test_jurisdiction_id_goes_with_every_call(redis: Redis, tmp_path: Path) -> None:
    """A CRM that requires jurisdiction_id refuses any call without it: the whole flow works."""
    mode = SandboxMode(tokens=True, token_delay_s=0.1, string_update_ids=True)
    async with SandboxServer(
        tmp_path / "crm.sqlite3", jurisdiction_id="jakarta.go.id", mode=mode
    ) as crm:
        async with Open311Client(crm.url, jurisdiction_id="jakarta.go.id") as client:
            assert await client.services()
            [cid] = await enqueue(redis, 1)
            submitter = Submitter(redis, client, Vault(redis, Keyring([SECRET])), token_poll_s=0.1)
            await file_all(submitter, redis, [cid])
            [req] = crm.store.list_requests()
            crm.store.add_update(req.id, "resolved", "Sudah diangkut")
            status = StatusService(redis, client, Vault(redis, Keyring([SECRET])))
            assert await status.poll_once() == 1
            assert await client.get_request(str(req.id)) is not None
            await client.post_rating(str(req.id), 5)
        async with Open311Client(crm.url) as without:
            with pytest.raises(PermanentPeerError):
                await without.services()


class Forgetful:
    """A CRM front that files the request but answers the first POST with ``201 []``: no id,
    no token. The bridge must not take it for a failure, nor post it again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.posts = 0

    async def handle(self, request: Request) -> Response:
        r = await forward(self.upstream, request)
        if request.method == "POST":
            self.posts += 1
            if self.posts == 1:
                return Response("[]", status_code=201, media_type="application/json")
        return Response(r.content, status_code=r.status_code, media_type="application/json")


async def test_a_2xx_without_an_id_is_looked_up_never_posted_again(
    redis: Redis, tmp_path: Path
) -> None:
    mode = SandboxMode(honour_idempotency_key=False)
    async with SandboxServer(tmp_path / "crm.sqlite3", mode=mode) as crm:
        front_app = Forgetful(crm.url)
        app = Starlette(routes=[Route("/{p:path}", front_app.handle, methods=["GET", "POST"])])
        async with AppServer(app) as front, Open311Client(front.url) as client:
            [cid] = await enqueue(redis, 1)
            submitter = Submitter(
                redis, client, Vault(redis, Keyring([SECRET])), base_backoff_s=0.05
            )
            await file_all(submitter, redis, [cid])
        [req] = crm.store.list_requests()
    assert front_app.posts == 1, "posted once: the second attempt found it"
    [msg] = await tracking_messages(redis)
    assert msg.tracking_id == str(req.id)
    assert await redis.xlen(streams.PARKED) == 0
