"""Status updates pushed by the CRM: the signature scheme, ``POST /crm/webhook``, sandbox pushes.

Everything runs over real HTTP against a real Redis: the bridge's route is mounted in Kanal's
own ASGI app, and the sandbox CRM pushes to it the way a production CRM would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.open311 import Open311Client
from bridge.sandbox import AppServer, SandboxServer, SandboxStore
from bridge.sandbox.models import format_ts
from bridge.signing import HEADER, Verdict, check, parse_secrets, sign, verify
from bridge.status import StatusService, status_text
from bridge.submitter import request_key
from bridge.vault import Contact, Vault
from bridge.webhook import MAX_BODY_BYTES, PATH, local_webhook_url, webhook_route
from kanal import streams
from kanal.http import create_app
from kanal.keys import Keyring
from kanal.messages import Outbound
from kanal.redis import Redis
from tests.conftest import Clock
from tests.images import jpeg
from tests.peers import REPO, free_port
from tests.sandbox_fixtures import create, officer, wait_until

SECRET = "whsec-uji-0001"
OLD_SECRET = "whsec-uji-0000"
T = 1_790_000_000
USER = "6281298765432"
NOTE = "Tumpukan sampah sudah diangkut petugas kebersihan pagi ini."


# ---- the signature scheme ---------------------------------------------------------------------
def _with_v1(*secrets: str) -> Callable[[bytes], str]:
    def header(body: bytes) -> str:
        return ",".join([f"t={T}", *(sign(s, body, T).split(",")[1] for s in secrets)])

    return header


@dataclass(frozen=True)
class SigCase:
    label: str
    header: Callable[[bytes], str | None]
    want: Verdict
    now: float = T
    secrets: Sequence[str] = (SECRET,)
    body: bytes = b'{"update_id": "1"}'


SIG_CASES = [
    SigCase("round trip", lambda b: sign(SECRET, b, T), "ok"),
    SigCase("empty body", lambda b: sign(SECRET, b, T), "ok", body=b""),
    SigCase("299 s old", lambda b: sign(SECRET, b, T), "ok", now=T + 299),
    SigCase("299 s ahead", lambda b: sign(SECRET, b, T), "ok", now=T - 299),
    SigCase("replayed 301 s later", lambda b: sign(SECRET, b, T), "stale", now=T + 301),
    SigCase("from 301 s in the future", lambda b: sign(SECRET, b, T), "stale", now=T - 301),
    SigCase(
        "body tampered",
        lambda b: sign(SECRET, b'{"update_id": "2"}', T),
        "bad_signature",
    ),
    SigCase("wrong secret", lambda b: sign("tebakan", b, T), "bad_signature"),
    SigCase("no secret configured", lambda b: sign(SECRET, b, T), "bad_signature", secrets=()),
    SigCase(
        "timestamp moved forward (signature kept)",
        lambda b: sign(SECRET, b, T).replace(f"t={T}", f"t={T + 60}"),
        "bad_signature",
    ),
    SigCase(
        "forged and stale: the signature is judged first",
        lambda b: sign("tebakan", b, T),
        "bad_signature",
        now=T + 3600,
    ),
    SigCase(
        "receiver rotating: old secret still valid",
        lambda b: sign(OLD_SECRET, b, T),
        "ok",
        secrets=(SECRET, OLD_SECRET),
    ),
    SigCase("sender rotating: two v1 values", _with_v1(OLD_SECRET, SECRET), "ok"),
    SigCase("two v1 values, neither ours", _with_v1("a", "b"), "bad_signature"),
    SigCase(
        "unknown scheme beside v1 is ignored",
        lambda b: sign(SECRET, b, T) + ",v0=deadbeef",
        "ok",
    ),
    SigCase(
        "uppercase hex",
        lambda b: f"t={T},v1={sign(SECRET, b, T).split('v1=')[1].upper()}",
        "ok",
    ),
    SigCase("no header", lambda b: None, "missing"),
    SigCase("empty header", lambda b: "", "missing"),
    SigCase("garbage", lambda b: "garbage", "malformed"),
    SigCase("no timestamp", lambda b: sign(SECRET, b, T).split(",")[1], "malformed"),
    SigCase("no v1", lambda b: f"t={T}", "malformed"),
    SigCase(
        "timestamp not a number",
        lambda b: sign(SECRET, b, T).replace(f"{T}", "kemarin"),
        "malformed",
    ),
    SigCase(
        "negative timestamp", lambda b: sign(SECRET, b, T).replace(f"{T}", f"-{T}"), "malformed"
    ),
    SigCase("two timestamps", lambda b: f"t={T}," + sign(SECRET, b, T), "malformed"),
    SigCase("v1 not hex", lambda b: f"t={T},v1={'z' * 64}", "malformed"),
    SigCase("v1 truncated", lambda b: sign(SECRET, b, T)[:-2], "malformed"),
    SigCase("v1 not ASCII", lambda b: f"t={T},v1={'é' * 64}", "malformed"),
    SigCase("huge header", lambda b: sign(SECRET, b, T) + ",x=" + "a" * 5000, "malformed"),
]


@pytest.mark.parametrize("case", SIG_CASES, ids=lambda c: c.label)
def test_signature_cases(case: SigCase) -> None:
    header = case.header(case.body)
    assert check(case.secrets, case.body, header, case.now) == case.want
    assert verify(case.secrets, case.body, header, case.now) is (case.want == "ok")


def test_signature_wire_format_is_stripe_style() -> None:
    """A CRM vendor can implement the scheme from the docstring: HMAC(secret, "t." + body)."""
    body = b'{"update_id":"7","status":"closed"}'
    mac = hmac.new(SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body, T + 0.9) == f"t={T},v1={mac}"
    with pytest.raises(ValueError):
        sign("", body, T)
    assert parse_secrets(" baru , lama ,, ") == ["baru", "lama"]
    assert parse_secrets("") == []


def test_local_webhook_url() -> None:
    assert local_webhook_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/crm/webhook"
    assert local_webhook_url("::", 8080) == "http://[::1]:8080/crm/webhook"
    assert local_webhook_url("10.0.0.5", 81) == "http://10.0.0.5:81/crm/webhook"


# ---- the route --------------------------------------------------------------------------------
async def remember_request(redis: Redis, keyring: Keyring, srid: str) -> None:
    """What the bridge records when it files a report: request → pseudonym, sealed contact."""
    conv = keyring.pseudonym("console", USER)
    contact = {"channel": "console", "address": USER, "language": "id"}
    await redis.hset(
        streams.vault_key(conv), "contact", keyring.encrypt(json.dumps(contact).encode())
    )
    await redis.hset(
        request_key(srid), mapping={"conv": conv, "channel": "console", "status_code": "received"}
    )


@dataclass
class Bridge:
    """Kanal's HTTP app with the webhook mounted, and the Redis it relays into."""

    redis: Redis
    keyring: Keyring
    status: StatusService
    url: str
    clock: Callable[[], float]

    async def known_request(self, srid: str) -> None:
        await remember_request(self.redis, self.keyring, srid)

    async def outbox(self) -> list[Outbound]:
        entries = await self.redis.xrange(streams.outbox("console"))
        return [Outbound.model_validate_json(f["outbound"]) for _, f in entries]

    async def post(
        self, body: bytes | AsyncIterator[bytes], signature: str | None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[HEADER] = signature
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(self.url + PATH, content=body, headers=headers)

    async def push(self, body: bytes, secret: str = SECRET, age_s: float = 0) -> httpx.Response:
        return await self.post(body, sign(secret, body, self.clock() - age_s))


class SlowVault(Vault):
    """Opening a contact takes a while, so concurrent relays of one update overlap."""

    async def contact(self, conv: str) -> Contact | None:
        await asyncio.sleep(0.05)
        return await super().contact(conv)


@contextlib.asynccontextmanager
async def serve_bridge(
    redis: Redis,
    keyring: Keyring,
    clock: Callable[[], float],
    secrets: Sequence[str] = (SECRET,),
    *,
    crm_url: str = "http://127.0.0.1:9",
    port: int = 0,
    vault: type[Vault] = Vault,
) -> AsyncIterator[Bridge]:
    async with Open311Client(crm_url, timeout=5) as crm:
        status = StatusService(redis, crm, vault(redis, keyring), poll_interval_s=3600)
        app = create_app([webhook_route(status, secrets, clock)])
        async with AppServer(app, port=port) as server:
            yield Bridge(redis, keyring, status, server.url, clock)


@pytest.fixture
async def bridge(redis: Redis, keyring: Keyring, clock: Clock) -> AsyncIterator[Bridge]:
    async with serve_bridge(redis, keyring, clock) as served:
        yield served


def update(update_id: str = "501", srid: str = "2400001", **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "update_id": update_id,
        "service_request_id": srid,
        "status": "closed",
        "description": NOTE,
        "updated_datetime": "2026-09-21T02:15:00.000000Z",
        "media_url": "http://127.0.0.1:8311/media/bukti.jpg",
        "external_status_code": "resolved",
    }
    item.update(changes)
    return item


def as_body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


async def test_signed_update_reaches_the_citizen_once(bridge: Bridge, logs: io.StringIO) -> None:
    await bridge.known_request("2400001")
    body = as_body(update())
    response = await bridge.push(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "relayed": 1}
    [msg] = await bridge.outbox()
    assert (msg.to, msg.tracking_id, msg.kind) == (USER, "2400001", "update")
    assert "2400001" in msg.text and status_text("resolved", "closed") in msg.text
    assert NOTE in msg.text and msg.media_url == update()["media_url"]
    # The CRM retries (a lost 200), or the poll brings the same update: relayed once.
    again = await bridge.push(body)
    assert again.status_code == 200 and again.json() == {"accepted": 1, "relayed": 0}
    assert len(await bridge.outbox()) == 1
    assert NOTE not in logs.getvalue() and USER not in logs.getvalue()


async def test_a_batch_keeps_its_order_and_unknown_requests_are_accepted(bridge: Bridge) -> None:
    await bridge.known_request("2400001")
    batch = [
        update("601", status="open", external_status_code="forwarded", description=None),
        update("602", status="open", external_status_code="in_progress", media_url=None),
        update("603", srid="2409999"),  # filed by someone else: nobody to tell
    ]
    response = await bridge.push(as_body(batch))
    assert response.status_code == 200 and response.json() == {"accepted": 3, "relayed": 2}
    texts = [m.text for m in await bridge.outbox()]
    assert len(texts) == 2
    assert status_text("forwarded") in texts[0] and status_text("in_progress") in texts[1]


async def test_concurrent_deliveries_of_one_update_relay_it_once(
    redis: Redis, keyring: Keyring, clock: Clock
) -> None:
    """Webhook retries and the poll racing each other (or several bridges) still send one."""
    async with serve_bridge(redis, keyring, clock, vault=SlowVault) as bridge:
        await bridge.known_request("2400001")
        body = as_body(update())
        pushes = [bridge.push(body) for _ in range(6)]
        u = update()
        polled = [
            bridge.status.relay(
                u["update_id"], u["service_request_id"], "resolved", "closed", NOTE, None
            )
            for _ in range(2)
        ]
        *responses, by_poll_1, by_poll_2 = await asyncio.gather(*pushes, *polled)
        assert {r.status_code for r in responses} == {200}
        assert sum(r.json()["relayed"] for r in responses) + by_poll_1 + by_poll_2 == 1
        assert len(await bridge.outbox()) == 1


@dataclass(frozen=True)
class Refused:
    label: str
    body: bytes
    want_status: int
    want_error: str
    secret: str | None = SECRET  # who signs; None: no header
    age_s: float = 0
    configured: tuple[str, ...] = (SECRET,)
    chunked: bool = False


REFUSED = [
    Refused("forged signature", as_body(update()), 401, "bad_signature", secret="tebakan"),
    Refused("replayed after 10 minutes", as_body(update()), 401, "stale", age_s=600),
    Refused("unsigned", as_body(update()), 401, "missing", secret=None),
    Refused("no secret configured", as_body(update()), 503, "disabled", configured=()),
    Refused(
        "no secret configured, unsigned",
        as_body(update()),
        503,
        "disabled",
        secret=None,
        configured=(),
    ),
    Refused("oversized", as_body([update()] * 400), 413, "too_large"),
    Refused("oversized, chunked", as_body([update()] * 400), 413, "too_large", chunked=True),
    Refused("not JSON", b'{"update_id": "501", ', 400, "malformed"),
    Refused("not UTF-8", b"\xff\xfe[]", 400, "malformed"),
    Refused("a JSON string", as_body("selesai"), 400, "malformed"),
    Refused("no update_id", as_body({"service_request_id": "2400001"}), 400, "malformed"),
    Refused("unknown status", as_body(update(status="selesai")), 400, "malformed"),
    Refused("one bad item spoils the batch", as_body([update(), {"x": 1}]), 400, "malformed"),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.label)
async def test_refused_pushes_change_nothing(
    case: Refused, redis: Redis, keyring: Keyring, clock: Clock, logs: io.StringIO
) -> None:
    async with serve_bridge(redis, keyring, clock, case.configured) as bridge:
        await bridge.known_request("2400001")
        signature = None
        if case.secret is not None:
            signature = sign(case.secret, case.body, clock() - case.age_s)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(case.body), 4096):
                yield case.body[start : start + 4096]

        response = await bridge.post(chunks() if case.chunked else case.body, signature)
        assert response.status_code == case.want_status, response.text
        assert response.json()["error"] == case.want_error
        assert await bridge.outbox() == []
        assert (await redis.hgetall(request_key("2400001")))["status_code"] == "received"
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    events = [line for line in lines if line["event"].startswith("webhook_")]
    assert events, "a refused push leaves a log line"
    if case.want_status == 503:
        assert events[-1]["event"] == "webhook_disabled"
    else:
        assert events[-1]["event"] == "webhook_rejected"
        assert events[-1]["reason"] == case.want_error
    for private in (NOTE, "bukti.jpg", USER, SECRET):
        assert private not in logs.getvalue(), private


async def test_only_post(bridge: Bridge) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(bridge.url + PATH)).status_code == 405
    assert MAX_BODY_BYTES == 64 * 1024


# ---- the sandbox pushes -----------------------------------------------------------------------
@pytest.fixture
def crm_store(tmp_path: Path) -> SandboxStore:
    return SandboxStore(tmp_path / "crm.sqlite3")


@contextlib.asynccontextmanager
async def crm_and_bridge(
    redis: Redis, keyring: Keyring, store: SandboxStore, *, crm_secret: str = SECRET
) -> AsyncIterator[tuple[SandboxServer, Bridge]]:
    """The sandbox CRM pushing to a bridge that never polls (poll interval: one hour)."""
    crm_port = free_port()
    async with (
        serve_bridge(redis, keyring, time.time, crm_url=f"http://127.0.0.1:{crm_port}") as bridge,
        SandboxServer(
            store,
            port=crm_port,
            webhook_url=bridge.url + PATH,
            webhook_secret=crm_secret,
        ) as crm,
    ):
        yield crm, bridge


async def outbox_has(bridge: Bridge, n: int, timeout: float) -> list[Outbound]:
    async def check() -> bool:
        return len(await bridge.outbox()) >= n

    await wait_until(check, timeout)
    return await bridge.outbox()


async def test_officer_action_reaches_the_citizen_without_polling(
    redis: Redis, keyring: Keyring, crm_store: SandboxStore
) -> None:
    async with crm_and_bridge(redis, keyring, crm_store) as (crm, bridge):
        async with httpx.AsyncClient(base_url=crm.url, timeout=10) as http:
            srid = await create(http)
            await bridge.known_request(srid)
            started = time.monotonic()
            response = await officer(http, srid, status="in_progress", note="Petugas menuju.")
            assert response.status_code == 201
            [msg] = await outbox_has(bridge, 1, timeout=3.0)
        assert time.monotonic() - started < 3.0
        assert msg.tracking_id == srid and status_text("in_progress") in msg.text

        async def marked_pushed() -> bool:  # once the bridge's 200 has reached the sandbox
            since = datetime.now(UTC) - timedelta(days=1)
            return await asyncio.to_thread(crm_store.pending_pushes, since, 5) == []

        await wait_until(marked_pushed, timeout=3.0)
        # The poll finds the same update later: it is not sent twice.
        assert await bridge.status.poll_once() == 0
        assert len(await bridge.outbox()) == 1


async def test_update_written_by_the_cli_is_pushed_by_the_running_server(
    redis: Redis, keyring: Keyring, crm_store: SandboxStore
) -> None:
    async with crm_and_bridge(redis, keyring, crm_store) as (crm, bridge):
        async with httpx.AsyncClient(base_url=crm.url, timeout=10) as http:
            srid = await create(http)
        await bridge.known_request(srid)
        # What `kanal crm-sandbox officer status` does from another terminal: write SQLite.
        other = SandboxStore(crm_store.path)
        await asyncio.to_thread(other.add_update, int(srid), "forwarded", "Diteruskan ke dinas.")
        await asyncio.to_thread(other.add_update, int(srid), "in_progress", "Dikerjakan.")
        first, second = await outbox_has(bridge, 2, timeout=5.0)
        assert status_text("forwarded") in first.text
        assert status_text("in_progress") in second.text


async def test_cli_officer_with_a_proof_photo(
    redis: Redis, keyring: Keyring, crm_store: SandboxStore, tmp_path: Path
) -> None:
    photo = tmp_path / "bukti.jpg"
    photo.write_bytes(jpeg(exif_text="Budi Santoso"))
    async with crm_and_bridge(redis, keyring, crm_store) as (crm, bridge):
        async with httpx.AsyncClient(base_url=crm.url, timeout=10) as http:
            srid = await create(http)
            await bridge.known_request(srid)
            code, out = await sandbox_cli(
                "officer",
                "status",
                srid,
                "resolved",
                "--photo",
                str(photo),
                "--base-url",
                crm.url,
                "--db",
                str(crm_store.path),
            )
            assert code == 0, out
            [msg] = await outbox_has(bridge, 1, timeout=5.0)
            assert msg.media_url and msg.media_url.startswith(f"{crm.url}/media/")
            served = await http.get(msg.media_url)
            assert served.status_code == 200
            assert served.headers["content-type"] == "image/jpeg"
            assert served.content[:2] == b"\xff\xd8" and b"Budi" not in served.content
            assert (await http.get("/media/../crm.sqlite3")).status_code == 404
            assert (await http.get("/media/" + "0" * 32 + ".jpg")).status_code == 404
        not_a_photo = tmp_path / "catatan.jpg"
        not_a_photo.write_text("bukan foto")
        code, _ = await sandbox_cli(
            "officer",
            "status",
            srid,
            "resolved",
            "--photo",
            str(not_a_photo),
            "--db",
            str(crm_store.path),
        )
        assert code != 0
        assert len(await bridge.outbox()) == 1


async def test_pushes_are_retried_while_the_bridge_is_down(
    redis: Redis, keyring: Keyring, crm_store: SandboxStore
) -> None:
    port = free_port()
    async with SandboxServer(
        crm_store, webhook_url=local_webhook_url("127.0.0.1", port), webhook_secret=SECRET
    ) as crm:
        async with httpx.AsyncClient(base_url=crm.url, timeout=10) as http:
            srid = await create(http)
            assert (await officer(http, srid, status="forwarded")).status_code == 201
        await remember_request(redis, keyring, srid)
        await asyncio.sleep(0.8)  # the first pushes are refused: nobody listens yet
        async with serve_bridge(redis, keyring, time.time, port=port) as bridge:
            [msg] = await outbox_has(bridge, 1, timeout=6.0)
            assert status_text("forwarded") in msg.text


async def test_a_push_signed_with_the_wrong_secret_is_refused_and_the_poll_delivers(
    redis: Redis, keyring: Keyring, crm_store: SandboxStore, logs: io.StringIO
) -> None:
    async with crm_and_bridge(redis, keyring, crm_store, crm_secret="rahasia-lain") as (
        crm,
        bridge,
    ):
        async with httpx.AsyncClient(base_url=crm.url, timeout=10) as http:
            srid = await create(http)
            await bridge.known_request(srid)
            assert (await officer(http, srid, status="forwarded")).status_code == 201

        def rejected() -> bool:
            return '"webhook_rejected"' in logs.getvalue()

        async def gave_up() -> bool:
            return '"webhook_push_gave_up"' in logs.getvalue() and rejected()

        await wait_until(gave_up, timeout=5.0)
        assert await bridge.outbox() == []
        # A 401 is not retried; the update waits for the poll, which relays it.
        assert await bridge.status.poll_once() == 1
        [msg] = await bridge.outbox()
        assert msg.tracking_id == srid


def test_webhook_url_needs_a_secret(crm_store: SandboxStore) -> None:
    with pytest.raises(ValueError):
        SandboxServer(crm_store, webhook_url="http://127.0.0.1:8080/crm/webhook")


def test_old_databases_do_not_push_their_history(tmp_path: Path) -> None:
    path = tmp_path / "lama.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            """CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT,
                service_code TEXT NOT NULL, status TEXT NOT NULL,
                external_status_code TEXT NOT NULL, status_notes TEXT, description TEXT,
                lat REAL, long REAL, address_string TEXT, address_id TEXT, media_url TEXT,
                attributes TEXT NOT NULL DEFAULT '{}', requested_datetime TEXT NOT NULL,
                updated_datetime TEXT NOT NULL, rating INTEGER);
            CREATE TABLE updates (update_id INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id INTEGER NOT NULL REFERENCES requests(id), status TEXT NOT NULL,
                external_status_code TEXT NOT NULL, description TEXT NOT NULL, media_url TEXT,
                updated_datetime TEXT NOT NULL);"""
        )
        now = format_ts(datetime.now(UTC))
        db.execute(
            "INSERT INTO requests VALUES (2400001, 'sampah', 'open', 'forwarded', NULL, NULL,"
            " NULL, NULL, 'Gambir', NULL, NULL, '{}', ?, ?, NULL)",
            (now, now),
        )
        db.execute(
            "INSERT INTO updates VALUES (1, 2400001, 'open', 'forwarded', 'x', NULL, ?)", (now,)
        )
        db.commit()
    store = SandboxStore(path)
    since = datetime.now(UTC) - timedelta(days=1)
    assert store.pending_pushes(since, 5) == []
    store.add_update(2400001, "resolved", "Selesai.")
    assert [u.update_id for u in store.pending_pushes(since, 5)] == [2]


async def sandbox_cli(*args: str) -> tuple[int, str]:
    code = "from bridge.sandbox.cli import app; app()"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_cli_refuses_a_webhook_without_a_secret(tmp_path: Path) -> None:
    code, out = await sandbox_cli(
        "--port",
        "0",
        "--db",
        str(tmp_path / "crm.sqlite3"),
        "--webhook-url",
        "http://127.0.0.1:8080/crm/webhook",
    )
    assert code == 2 and "secret" in out
