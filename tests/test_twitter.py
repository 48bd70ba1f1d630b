"""The X channel end to end, through the fake X API (``tests/x_fake.py``), which validates every
request and response against the official OpenAPI spec and fails the test on any violation.

``kanal run`` (bridge, sandbox CRM) for the full report; ``python -m bots.twitter`` alone for the
rest, SIGKILLed and started again where the test needs it.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bots.twitter.adapter import NOT_A_PHOTO, PUBLIC_REPLIES
from bots.twitter.worker import DM_CURSOR
from bridge.sandbox import SandboxStore
from bridge.sandbox.server import AppServer
from kanal import streams
from kanal.keys import Keyring
from kanal.redis import Redis
from tests.harness import PLANTED, assert_clean
from tests.peers import GAZETTEER, REPO, free_port
from tests.test_run import KanalRun, clean_env
from tests.x_fake import BOT_ID, FakeX, Fault, Window, x_env

SECRET = "twitter-test-key"
CITIZEN = PLANTED.chat_id  # the X user id
HANDLE = "sitirahma_77"
NAME = PLANTED.name  # the display name


@pytest.fixture(autouse=True)
def _fresh_redis(redis: Redis) -> None:
    """Every test here starts on an empty Redis: no cursor or outbox left from the one before."""


@pytest.fixture
async def fake_x() -> AsyncIterator[FakeX]:
    fake = FakeX()
    fake.user(CITIZEN, HANDLE, NAME)
    async with AppServer(fake.app()) as server:
        fake.url = server.url
        yield fake
    assert fake.violations == [], "\n".join(fake.violations)


def photo_jpeg() -> bytes:
    img = Image.frombytes("RGB", (320, 240), os.urandom(320 * 240 * 3))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def env_for(fake: FakeX, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(
        REDIS_URL=redis_url,
        KANAL_SECRET_KEY=SECRET,
        RASA_URL=f"http://127.0.0.1:{free_port()}",  # the keyword matcher answers
        KANAL_GAZETTEER_FILE=str(GAZETTEER),
        KANAL_DATA_DIR=str(tmp_path / "var"),
        KANAL_HTTP_PORT=str(free_port()),
        KANAL_LOG_LEVEL="INFO",
        KANAL_CONSUMER="twitter-test",
        **x_env(fake.url, **extra),
    )


class Worker:
    """``python -m bots.twitter`` as a real process, logging to ``log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with log.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bots.twitter"],
                cwd=REPO,
                env=clean_env(**env),
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return await asyncio.to_thread(self.proc.wait)


async def until(pred: Callable[[], Any], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what or pred}"
        await asyncio.sleep(0.05)


async def say(fake: FakeX, user: str, text: str = "", **kw: Any) -> str:
    """The citizen DMs the bot; the bot's DM replies to that message, joined."""
    before = len(fake.replies_to(user))
    fake.dm(user, text, **kw)
    await until(lambda: len(fake.replies_to(user)) > before, what=f"a reply to {text!r}")
    await asyncio.sleep(0.5)  # a turn may answer with several DMs
    return "\n".join(fake.replies_to(user)[before:])


@pytest.mark.timeout(240)
async def test_a_full_report_by_dm_with_a_photo_ends_with_the_tracking_number_and_an_update(
    fake_x: FakeX, redis_url: str, tmp_path: Path
) -> None:
    """A citizen reports by DM with a photo: numbered choices, the photo downloaded with user
    context, the tracking number by DM, then an officer's update by DM; nothing in public. The
    X user id, handle and display name reach neither the CRM nor a log line."""
    env = env_for(fake_x, redis_url, tmp_path, CRM_POLL_INTERVAL_S="0.3")
    for name in ("KANAL_CONSUMER", "KANAL_DATA_DIR", "KANAL_HTTP_PORT"):
        env.pop(name)
    run = KanalRun(tmp_path, **env)
    try:
        greeting = await say(fake_x, CITIZEN, "halo")
        assert "Halo! Saya Kanal" in greeting
        where = await say(
            fake_x,
            CITIZEN,
            f"sampah numpuk di pinggir kali udah seminggu, bau banget. Saya {NAME}, "
            f"wa {PLANTED.phone}, twitter @{HANDLE}",
        )
        assert "Sampah" in where
        assert "ketik alamat" in where.lower() and "share location" not in where
        photo_ask = await say(
            fake_x,
            CITIZEN,
            "Jl. Kebon Pala RT 03/RW 05, Kelurahan Kampung Melayu, Kecamatan Jatinegara",
        )
        assert "Kampung Melayu" in photo_ask and "foto" in photo_ask.lower()
        got_photo = await say(fake_x, CITIZEN, "", photo=photo_jpeg())
        assert "Foto 1 dari" in got_photo
        summary = await say(fake_x, CITIZEN, "selesai")
        assert "Ringkasan laporan" in summary and "1 foto" in summary
        assert re.search(r"^(Balas 1 untuk|1\. )", summary, re.M), "choices as numbered lines"
        assert "Laporan diterima" in await say(fake_x, CITIZEN, "kirim")
        await until(lambda: any("tercatat dengan nomor" in t for t in fake_x.replies_to(CITIZEN)))
        tracking = next(t for t in fake_x.replies_to(CITIZEN) if "tercatat dengan nomor" in t)
        store = SandboxStore(tmp_path / "var" / "crm-sandbox.sqlite3")
        [req] = store.list_requests()
        assert f"tercatat dengan nomor {req.id}" in tracking
        store.add_update(req.id, "in_progress", "Truk dijadwalkan besok pagi")
        await until(lambda: any("Truk dijadwalkan" in t for t in fake_x.replies_to(CITIZEN)))
        assert await asyncio.to_thread(run.stop) == 0
    finally:
        await asyncio.to_thread(run.close)
    # Status and tracking by DM only; nothing public at all.
    assert fake_x.posted == [] and fake_x.calls_to("tweet") == []
    # User context for every DM call and the photo; the bearer token only for mentions.
    assert {c.auth for c in fake_x.calls_to("dm_events")} == {"oauth1"}
    assert {c.auth for c in fake_x.calls_to("send_dm")} == {"oauth1"}
    assert {c.auth for c in fake_x.calls_to("mentions")} == {"bearer"}
    assert fake_x.downloads == ["oauth1"]
    assert req.media_url, "the photo reached the CRM"
    filed = " ".join(str(v) for v in vars(req).values())
    for value in (CITIZEN, HANDLE, NAME, *NAME.split(), PLANTED.phone):
        assert value not in filed, value
    assert store.personal_fields_received == 0
    logs = run.log.read_text()
    assert_clean(logs)
    assert HANDLE not in logs and "pinggir kali" not in logs


REPORT = (
    "@DKIJakarta tolong, got mampet dan banjir di Jl. Tebet Raya depan masjid. "
    f"Hubungi saya {PLANTED.phone}"
)


@pytest.mark.timeout(180)
async def test_a_public_mention_gets_one_reply_without_details_and_the_rest_nothing(
    fake_x: FakeX, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    ours = fake_x.own_tweet("Jadwal pengangkutan sampah pekan ini")
    fake_x.user("5001", "warga_a", "Warga A")
    report = fake_x.mention(CITIZEN, REPORT)
    fake_x.mention("5001", "@DKIJakarta terima kasih min, sampahnya sudah diangkut")
    fake_x.mention("5002", "@DKIJakarta Dapatkan followers gratis! klik link di bio")
    fake_x.mention("5003", "@DKIJakarta sampah di sini juga numpuk nih", quotes=ours)
    fake_x.mention("5004", f"RT @DKIJakarta: {fake_x.tweets[ours]['text']}", retweets=ours)
    fake_x.mention(BOT_ID, "@DKIJakarta catatan admin")
    fake_x.mention("5005", "@DKIJakarta @BPBDJakarta")
    log = tmp_path / "worker.log"
    env = env_for(fake_x, redis_url, tmp_path)
    worker = Worker(env, log)
    try:
        await until(lambda: fake_x.posted, what="the public reply")
        polls = len(fake_x.calls_to("mentions"))
        await until(lambda: len(fake_x.calls_to("mentions")) >= polls + 5, what="more polls")
        assert await worker.stop() == 0
        # A restart that lost the mention cursor (a crash before it was written) still
        # answers no mention twice.
        await redis.delete("kanal:twitter:mention_cursor")
        env["KANAL_HTTP_PORT"] = str(free_port())
        worker = Worker(env, log)
        await until(
            lambda: len(fake_x.calls_to("mentions")) >= polls + 10, what="polls after restart"
        )
    finally:
        assert await worker.stop() == 0
    [reply] = fake_x.posted
    assert reply["reply"] == {"in_reply_to_tweet_id": report}
    assert reply["text"] in PUBLIC_REPLIES
    assert reply["direct_message_deep_link"].endswith(f"recipient_id={BOT_ID}")
    text = reply["text"].lower()
    assert not re.search(r"\d", text), "no tracking number, no phone, no address number"
    for detail in ("tebet", "got", "banjir", "masjid", "mampet", "sampah", "kategori", "nomor"):
        assert detail not in text, detail
    assert fake_x.sent == [], "a mention starts nothing by DM"
    logs = log.read_text()
    assert logs.count('"event": "twitter_mention_answered"') == 1
    assert '"reason": "quote_of_ours"' in logs and '"reason": "retweet"' in logs
    assert '"reason": "not_a_report"' in logs and '"reason": "own"' in logs
    assert_clean(logs)
    assert "Tebet" not in logs


@pytest.mark.timeout(180)
async def test_a_429_waits_for_the_reset_and_a_used_up_window_is_not_overrun(
    fake_x: FakeX, redis_url: str, tmp_path: Path
) -> None:
    """dm_events answers 429 once: the worker waits for x-rate-limit-reset before it calls
    again. Then its window allows few calls: the worker spreads them and waits for the reset
    when none is left, so X never has to refuse it again. A 5xx backs off; a 429 on the send
    holds the reply. Not one DM is lost."""
    fake_x.faults.append(Fault("GET", "/2/dm_events", 429, reset_in=2.0))
    fake_x.windows["dm_events"] = Window(
        limit=4, remaining=4, reset_at=int(time.time()) + 3, length_s=3.0
    )
    log = tmp_path / "worker.log"
    worker = Worker(env_for(fake_x, redis_url, tmp_path), log)
    try:
        fake_x.dm(CITIZEN, "halo")
        await until(lambda: fake_x.replies_to(CITIZEN), what="the greeting")
        first, second = fake_x.calls_to("dm_events")[:2]
        assert first.status == 429
        assert second.at - first.at >= 1.0, "called again before the reset"
        # A server error, then a 429 on the send: both recover, nothing is lost.
        fake_x.faults.append(Fault("GET", "/2/dm_events", 503, times=2))
        fake_x.faults.append(
            Fault("POST", r"/2/dm_conversations/with/\d+/messages", 429, reset_in=1)
        )
        fake_x.dm("5010", "sampah numpuk di Jl. Tebet Raya")
        fake_x.dm("5011", "", photo=b"GIF89a not a photo", media_type="animated_gif")
        await until(lambda: fake_x.replies_to("5010") and fake_x.replies_to("5011"), 90)
        await asyncio.sleep(4.0)  # a few windows more
    finally:
        assert await worker.stop() == 0
    calls = fake_x.calls_to("dm_events")
    refused = [c for c in calls if c.status == 429]
    assert len(refused) == 1, "only the scripted 429: the window itself was never overrun"
    assert len(fake_x.replies_to(CITIZEN)) == 1
    assert len(fake_x.replies_to("5010")) == 1
    assert fake_x.replies_to("5011") == [NOT_A_PHOTO]
    logs = log.read_text()
    assert '"event": "twitter_rate_limited"' in logs and '"event": "part_failing"' in logs
    assert '"event": "outbox_send_retry"' in logs
    assert_clean(logs)


@pytest.mark.timeout(180)
async def test_a_sigkilled_worker_started_again_answers_nothing_twice_and_skips_nothing(
    fake_x: FakeX, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """The worker is SIGKILLed the moment it sends the reply to B (the turn committed, the
    reply queued, not delivered). While it is down, A writes again and a new mention comes;
    the cursor is also rolled back, as if the kill had come before it was written. Started
    again, it sends B's reply once, answers A's new DM and the new mention once, and nothing
    it had answered before."""
    a, b = "5101", "5102"
    log = tmp_path / "worker.log"
    env = env_for(fake_x, redis_url, tmp_path)
    worker = Worker(env, log)
    try:
        await say(fake_x, a, "halo")
        fake_x.mention(CITIZEN, REPORT)
        await until(lambda: fake_x.posted, what="the public reply")
        rolled_back = await redis.get(DM_CURSOR)
        fake_x.victim = worker.proc.pid
        fake_x.kill_when = lambda method, path, body: path.endswith(f"/with/{b}/messages")
        fake_x.dm(b, "halo")
        await until(lambda: fake_x.killed, what="the kill")
        assert await asyncio.to_thread(worker.proc.wait, 10) == -signal.SIGKILL
        assert fake_x.replies_to(b) == []
        fake_x.dm(a, "lampu jalan mati di depan masjid Al-Ikhlas")
        fake_x.mention("5103", "@DKIJakarta lampu jalan mati di Jl. Kemang Raya")
        await redis.set(DM_CURSOR, rolled_back)
        env["KANAL_HTTP_PORT"] = str(free_port())
        worker = Worker(env, log)
        await until(lambda: fake_x.replies_to(b), what="B's lost reply")
        await until(lambda: len(fake_x.replies_to(a)) >= 2, what="A's new DM answered")
        await until(lambda: len(fake_x.posted) >= 2, what="the new mention answered")
        await asyncio.sleep(2.0)  # would anything else come?
    finally:
        assert await worker.stop() == 0
    assert len(fake_x.replies_to(b)) == 1
    greeting, lamp = fake_x.replies_to(a)
    assert "Halo! Saya Kanal" in greeting and "Lampu" in lamp
    assert len(fake_x.posted) == 2
    assert len({p["reply"]["in_reply_to_tweet_id"] for p in fake_x.posted}) == 2
    logs = log.read_text()
    assert '"event": "inbound_duplicate"' in logs  # the rolled-back events, not answered again
    assert_clean(logs)


@pytest.mark.timeout(120)
async def test_a_recipient_who_closed_dms_is_dead_lettered_and_marked_unreachable(
    fake_x: FakeX, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    fake_x.closed.add(CITIZEN)
    log = tmp_path / "worker.log"
    worker = Worker(env_for(fake_x, redis_url, tmp_path), log)
    try:
        fake_x.dm(CITIZEN, "halo")
        deadline = time.monotonic() + 60
        while not await redis.xlen(streams.dead_letters("twitter")):
            assert time.monotonic() < deadline, "no dead letter"
            await asyncio.sleep(0.1)
    finally:
        assert await worker.stop() == 0
    [(_, entry)] = await redis.xrange(streams.dead_letters("twitter"))
    assert entry["reason"] == "forbidden"
    conv = Keyring([SECRET]).pseudonym("twitter", CITIZEN)
    assert await redis.get(streams.unreachable_key(conv))
    assert_clean(log.read_text())
