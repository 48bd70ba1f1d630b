"""The NLU path through a real Rasa 3.6 server: intents, categories, entities, the parse CLI,
and the keyword fallback when Rasa dies mid-conversation."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bots.core.engine import Engine, EngineConfig
from bots.core.gazetteer import Gazetteer
from bots.core.sessions import SessionStore
from kanal.keys import Keyring
from kanal.mediastore import LocalMediaStore as MediaStore
from kanal.messages import Expects, Outbound
from kanal.redis import Redis
from kanal.settings import RasaSettings
from nlu import rasa
from nlu.cli import parse_lines
from nlu.client import (
    CATEGORIES,
    CircuitBreaker,
    RasaNlu,
    ResilientNlu,
    understanding_from_rasa,
)
from nlu.fallback import FallbackNlu, KeywordMatcher
from nlu.managed import open_nlu
from nlu.types import INTENTS
from tests.conftest import Citizen, Clock
from tests.harness import PLANTED, assert_clean
from tests.nlu_fixtures import rasa_log_dir, rasa_model, rasa_nlu, rasa_server

__all__ = ["rasa_log_dir", "rasa_model", "rasa_nlu", "rasa_server"]

# The first test that needs the server may have to train (minutes) and start it (~30 s).
pytestmark = pytest.mark.timeout(1200)

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    text: str
    intent: str
    category: str | None = None


INTENT_CASES = [
    Case("selamat malam min", "salam"),
    Case("bot ini bisa dipakai untuk apa saja?", "bantuan"),
    Case("batalkan saja laporannya", "batal"),
    Case("ya benar, kirim", "konfirmasi_ya"),
    Case("bukan, itu salah", "konfirmasi_tidak"),
    Case("tidak ada foto, lewati saja", "lewati"),
    Case("terima kasih banyak ya min", "terima_kasih"),
    Case("tolong rumah tetangga kebakaran, apinya sudah besar", "darurat"),
    Case("siapa pemenang liga inggris musim ini", "di_luar_topik"),
]

CATEGORY_CASES = [
    Case("sampah di depan rumah saya sudah seminggu tidak diangkut", "lapor", "sampah"),
    Case("got mampet, air meluap ke jalan setiap hujan", "lapor", "banjir"),
    Case("aspal jalan berlubang besar, motor sering jatuh", "lapor", "jalan_rusak"),
    Case("lampu PJU di gang kami mati sudah tiga malam", "lapor", "lampu_jalan"),
    Case("ada pohon besar miring hampir tumbang ke rumah warga", "lapor", "pohon"),
    Case("juru parkir liar minta uang 5 ribu di depan minimarket", "lapor", "parkir_liar"),
    Case("lampu merah di perempatan tidak menyala, lalu lintas semrawut", "lapor", "lalu_lintas"),
    Case(
        "pedagang kaki lima berjualan di atas trotoar sampai pejalan kaki turun ke jalan",
        "lapor",
        "pkl",
    ),
    Case("ada pengemis membawa anak kecil di lampu merah setiap sore", "lapor", "pmks"),
    Case("halte bus atapnya bocor dan kursinya rusak", "lapor", "fasilitas_umum"),
    Case("ada bangunan liar tanpa izin berdiri di bantaran kali", "lapor", "pelanggaran"),
    Case("anjing liar sering mengejar anak-anak di komplek kami", "lapor", "lainnya"),
]

OUT_OF_SCOPE = ["air PAM tidak keluar sejak subuh", "jual pulsa murah kak, minat?"]


@pytest.mark.parametrize("case", INTENT_CASES, ids=lambda c: c.intent)
async def test_intents(rasa_nlu: ResilientNlu, case: Case) -> None:
    u = await rasa_nlu.parse(case.text)
    assert u.source == "rasa"
    assert (u.intent, u.category) == (case.intent, None)
    assert u.confidence >= 0.5


@pytest.mark.parametrize("case", CATEGORY_CASES, ids=lambda c: c.category or "")
async def test_categories(rasa_nlu: ResilientNlu, case: Case) -> None:
    u = await rasa_nlu.parse(case.text)
    assert (u.intent, u.category) == ("lapor", case.category)
    # Clear reports are trusted without a confirmation question (engine: >= 0.6).
    assert u.category_confidence >= 0.6


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
async def test_requests_outside_the_categories(rasa_nlu: ResilientNlu, text: str) -> None:
    u = await rasa_nlu.parse(text)
    assert u.intent == "di_luar_topik" or (u.intent, u.category) == ("lapor", "lainnya")


async def test_tracking_number(rasa_nlu: ResilientNlu) -> None:
    text = "min tolong cek status laporan 12345678"
    u = await rasa_nlu.parse(text)
    assert u.intent == "cek_status"
    [number] = [e for e in u.entities if e.entity == "nomor_laporan"]
    assert number.value == "12345678"
    assert (number.start, number.end) == (text.index("1234"), len(text))


@pytest.mark.parametrize(("text", "stars"), [("kasih bintang 4", "4"), ("nilainya lima", "5")])
async def test_rating(rasa_nlu: ResilientNlu, text: str, stars: str) -> None:
    u = await rasa_nlu.parse(text)
    assert u.intent == "nilai"
    assert u.entity("rating") == stars


async def test_location_words(rasa_nlu: ResilientNlu) -> None:
    text = "sampah numpuk di gang Mawar RT 03/RW 05, tolong diangkut"
    u = await rasa_nlu.parse(text)
    assert (u.intent, u.category) == ("lapor", "sampah")
    places = [e for e in u.entities if e.entity == "lokasi"]
    assert places and "Mawar" in places[0].value
    assert text[places[0].start : places[0].end] == places[0].value


async def test_kelurahan_and_kecamatan(rasa_nlu: ResilientNlu) -> None:
    u = await rasa_nlu.parse("lampu jalan mati di kelurahan Kampung Melayu kecamatan Jatinegara")
    assert u.category == "lampu_jalan"
    assert u.entity("kelurahan") == "Kampung Melayu"
    assert u.entity("kecamatan") == "Jatinegara"


async def test_slang_and_typos_still_understood(rasa_nlu: ResilientNlu) -> None:
    u = await rasa_nlu.parse("sampahhh dh numpuk bgt gk diangkut2 dr kmrn")
    assert (u.intent, u.category) == ("lapor", "sampah")


async def test_parse_contract(rasa_server: rasa.RasaServer) -> None:
    lines = [
        json.dumps({"text": "jalan di depan sekolah berlubang besar"}),
        "",
        json.dumps({"text": "cek laporan 2024001"}),
        "not json",
        json.dumps({"teks": "salah kunci"}),
        json.dumps({"text": "halo"}),
    ]
    out = io.StringIO()
    settings = RasaSettings(url=rasa_server.url, timeout_s=2.0)
    read = await parse_lines(io.StringIO("\n".join(lines) + "\n"), out, settings)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert read == len(answers) == 5
    pothole, status, bad_json, bad_key, hello = answers
    assert set(pothole) == {"text", "intent", "category", "confidence", "entities"}
    assert pothole["text"] == "jalan di depan sekolah berlubang besar"
    assert (pothole["intent"], pothole["category"]) == ("lapor", "jalan_rusak")
    assert 0.6 <= pothole["confidence"] <= 1.0
    assert status["intent"] == "cek_status"
    assert {"entity": "nomor_laporan", "value": "2024001", "start": 12, "end": 19} in status[
        "entities"
    ]
    assert "error" in bad_json and "error" in bad_key
    assert (hello["intent"], hello["category"], hello["entities"]) == ("salam", None, [])


async def test_parse_command_as_a_process(rasa_server: rasa.RasaServer) -> None:
    """`kanal nlu parse` as the bots' operators run it: JSON lines in, JSON lines out."""
    env = {**os.environ, "RASA_URL": rasa_server.url, "KANAL_LOG_LEVEL": "WARNING"}
    stdin = "\n".join(
        json.dumps({"text": t}) for t in ["pohon tumbang menutup jalan", "makasih min"]
    )
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kanal", "nlu", "parse"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    tree, thanks = (json.loads(line) for line in proc.stdout.splitlines())
    assert (tree["intent"], tree["category"]) == ("lapor", "pohon")
    assert thanks["intent"] == "terima_kasih"
    assert all(a["intent"] in INTENTS for a in (tree, thanks))


async def test_no_message_text_in_any_log(
    rasa_nlu: ResilientNlu, rasa_log_dir: Path, logs: io.StringIO
) -> None:
    secret = "tumpukan sampah di depan rumah Pak Wiryo nomor 17"
    await rasa_nlu.parse(secret)
    planted = f"nama saya {PLANTED.name}, wa {PLANTED.phone}, {PLANTED.email}, sampah numpuk"
    await rasa_nlu.parse(planted)
    assert "Wiryo" not in logs.getvalue()
    rasa_log = (rasa_log_dir / "rasa-server.log").read_text(errors="replace")
    assert "Wiryo" not in rasa_log
    assert_clean(logs.getvalue() + rasa_log, where="the gateway's or Rasa's own log")


async def test_model_is_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    result = await asyncio.to_thread(rasa.train)
    assert not result.trained and time.monotonic() - started < 30
    before = rasa.model_hash()
    data = tmp_path / "data"
    data.mkdir()
    for path in rasa.DATA_DIR.glob("*.yml"):
        (data / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(rasa, "DATA_DIR", data)
    assert rasa.model_hash() == before
    with (data / "nlu.yml").open("a") as fh:
        fh.write("\n- intent: salam\n  examples: |\n    - halo kanal baru\n")
    assert rasa.model_hash() != before


# ---- the fallback --------------------------------------------------------------------------


def engine_with(nlu: ResilientNlu, redis: Redis, tmp_path: Path, clock: Clock) -> Engine:
    return Engine(
        sessions=SessionStore(redis),
        nlu=nlu,
        gazetteer=Gazetteer(),
        media=MediaStore(tmp_path / "media"),
        keyring=Keyring(["test-secret-key"]),
        config=EngineConfig(),
        clock=clock,
    )


ALARMING = re.compile(r"\b(error|galat|kesalahan|gangguan|gagal|rasa|server|nlu|sistem)\b", re.I)


def calm(replies: list[Outbound]) -> bool:
    """The bot answered, and said nothing about errors or machinery."""
    return bool(replies) and not any(ALARMING.search(r.text) for r in replies)


async def test_rasa_killed_mid_conversation(
    redis: Redis, tmp_path: Path, clock: Clock, matcher: KeywordMatcher, logs: io.StringIO
) -> None:
    """RASA_URL empty: Kanal starts its own Rasa in the background (as `kanal run` does) and
    answers from the keyword matcher meanwhile. Kill Rasa mid-report: the citizen goes on."""
    breaker = CircuitBreaker(failures=2, cooldown_s=60.0)
    settings = RasaSettings(url="", timeout_s=2.0)
    async with open_nlu(
        settings, data_dir=tmp_path, wait=False, fallback=FallbackNlu(matcher), breaker=breaker
    ) as nlu:
        server = nlu.server
        assert server is not None and server.url.startswith("http://127.0.0.1:")
        u = await nlu.parse("halo")  # still loading
        assert (u.intent, u.source) == ("salam", "fallback")
        deadline = time.monotonic() + 600
        while not server.cold_start_s and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert server.cold_start_s, "the managed Rasa never came up"
        citizen = Citizen(engine_with(nlu, redis, tmp_path, clock))

        r = await citizen.say("Min, lampu jalan di gang kami mati sudah tiga malam, gelap sekali")
        assert nlu.last_source == "rasa"
        assert r[-1].expects == Expects.LOCATION  # category understood, location asked

        server.kill()

        r = await citizen.say("Jl. Kenari II no 5, Kenari, Senen")
        assert calm(r)
        r = await citizen.say("lewati")
        assert calm(r)
        for _ in range(3):
            u = await nlu.parse("halo")
            assert (u.intent, u.source) == ("salam", "fallback")
        assert breaker.state == "open"
        assert nlu.last_source == "fallback"
        r = await citizen.say("tolong cek laporan 1234567")
        assert calm(r)
    events = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert any(e.get("event") == "nlu_breaker_open" for e in events)
    assert "Kenari II" not in logs.getvalue()


# ---- without a server: breaker, timeouts and the mapping ------------------------------------


async def test_refused_connection_falls_back_and_opens_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown_s=30.0, clock=clock)
    nlu = ResilientNlu(RasaNlu(f"http://127.0.0.1:{rasa.free_port()}"), FallbackNlu(), breaker)
    try:
        for _ in range(3):
            u = await nlu.parse("sampah numpuk di pinggir jalan")
            assert (u.source, u.intent) == ("fallback", "lapor")
        assert breaker.state == "open"
        clock.advance(31)
        assert breaker.state == "half-open"
        await nlu.parse("halo")  # the one trial fails: open again
        assert breaker.state == "open"
    finally:
        await nlu.aclose()


async def test_slow_rasa_times_out_into_the_fallback() -> None:
    """A server that accepts and never answers: each parse costs at most the timeout."""

    release = asyncio.Event()
    handlers: list[asyncio.Task[object] | None] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())
        await release.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    nlu = ResilientNlu(RasaNlu(f"http://127.0.0.1:{port}", timeout_s=0.3), FallbackNlu())
    try:
        started = time.monotonic()
        for _ in range(4):
            u = await nlu.parse("terima kasih")
            assert (u.source, u.intent) == ("fallback", "terima_kasih")
        # three timeouts open the breaker; the fourth message does not wait at all
        assert time.monotonic() - started < 0.3 * 3 + 1.0
        assert nlu.breaker.state == "open"
    finally:
        await nlu.aclose()
        release.set()
        await asyncio.gather(*(t for t in handlers if t), return_exceptions=True)
        server.close()
        await server.wait_closed()


async def test_breaker_closes_when_rasa_answers_again() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(503)
        return httpx.Response(200, json={"intent": {"name": "salam", "confidence": 0.97}})

    clock = Clock()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    breaker = CircuitBreaker(failures=2, cooldown_s=10.0, clock=clock)
    nlu = ResilientNlu(RasaNlu("http://rasa.invalid", client=client), FallbackNlu(), breaker)
    try:
        assert (await nlu.parse("halo")).source == "fallback"
        assert (await nlu.parse("halo")).source == "fallback"
        assert breaker.state == "open"
        assert (await nlu.parse("halo")).source == "fallback"  # not even tried
        assert calls["n"] == 2
        clock.advance(11)
        u = await nlu.parse("halo")
        assert (u.source, u.intent, u.confidence) == ("rasa", "salam", 0.97)
        assert breaker.state == "closed"
    finally:
        await nlu.aclose()


MAPPING_CASES = [
    # (Rasa's answer, text, expected intent, category)
    ({"intent": {"name": "nlu_fallback", "confidence": 0.4}}, "???", "di_luar_topik", None),
    ({"intent": {"name": "salam", "confidence": 0.99}}, "halo", "salam", None),
    (
        {
            "intent": {"name": "lapor", "confidence": 0.9},
            "response_selector": {
                "lapor": {
                    "response": {"intent_response_key": "lapor/banjir", "confidence": 0.8},
                    "ranking": [],
                }
            },
        },
        "got mampet",
        "lapor",
        "banjir",
    ),
    (
        {
            "intent": {"name": "lapor", "confidence": 0.9},
            "response_selector": {
                "lapor": {"response": {"intent_response_key": "lapor/bukan_kode"}}
            },
        },
        "x",
        "lapor",
        None,
    ),
    # Rasa misses an emergency or a status question: the keyword rules catch them.
    (
        {"intent": {"name": "lapor", "confidence": 0.9}},
        "ada kecelakaan motor, orangnya pingsan",
        "darurat",
        None,
    ),
    (
        {"intent": {"name": "salam", "confidence": 0.6}},
        "status laporan 7654321",
        "cek_status",
        None,
    ),
    # ...but a confident report that happens to hold a number stays a report
    (
        {"intent": {"name": "lapor", "confidence": 0.95}},
        "laporan sampah numpuk, kodepos 12950",
        "lapor",
        None,
    ),
]


@pytest.mark.parametrize(("body", "text", "intent", "category"), MAPPING_CASES)
def test_mapping_from_rasa(
    body: dict[str, object], text: str, intent: str, category: str | None
) -> None:
    u = understanding_from_rasa(body, text)
    assert (u.intent, u.category) == (intent, category)
    assert u.intent in INTENTS and (u.category is None or u.category in CATEGORIES)
    if category:
        assert u.category_confidence == pytest.approx(0.9 * 0.8)


@pytest.mark.parametrize(
    ("text", "stars"), [("nilainya empat ya", "4"), ("5 deh", "5"), ("kasih 9 dong", None)]
)
def test_rating_backs_up_rasa(text: str, stars: str | None) -> None:
    u = understanding_from_rasa({"intent": {"name": "nilai", "confidence": 0.9}}, text)
    assert u.entity("rating") == stars


def test_place_entities_keep_the_citizens_words() -> None:
    text = "sampah di gang Mawar"
    body = {
        "intent": {"name": "lapor", "confidence": 0.9},
        "entities": [{"entity": "lokasi", "start": 10, "end": 20, "value": "gang mawar"}],
    }
    assert understanding_from_rasa(body, text).entity("lokasi") == "gang Mawar"


def test_no_python310_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KANAL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KANAL_PYTHON310", raising=False)
    monkeypatch.setattr(rasa, "_PY310_CANDIDATES", ())
    monkeypatch.setattr(rasa.shutil, "which", lambda name: None)
    with pytest.raises(rasa.RasaError, match=r"needs Python 3\.10"):
        rasa.ensure_venv(link=False)
    assert not any(tmp_path.glob("venv-rasa-*"))
