"""The Telegram worker against the npm emulator (tests/telegram_peer): what a citizen sees."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from bots.core.engine import Engine
from kanal import streams
from kanal.redis import Redis
from tests.conftest import Clock
from tests.harness import PLANTED, assert_clean
from tests.images import jpeg
from tests.telegram_fixtures import CITIZEN, running_bridge, running_worker
from tests.telegram_fixtures import peer as peer  # the fixture
from tests.telegram_peer import TelegramPeer

pytestmark = pytest.mark.timeout(90)
STORY = f"sampah numpuk di pinggir kali, bau banget. wa saya {PLANTED.phone}"
MENTENG = (-6.1959, 106.8322)


def buttons(msg: dict[str, object]) -> list[str]:
    markup = msg.get("reply_markup") or {}
    assert isinstance(markup, dict)
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def test_a_full_report_ends_with_the_tracking_number_and_an_update_follows(
    peer: TelegramPeer,
    engine: Engine,
    redis: Redis,
    tmp_path: Path,
    clock: Clock,
    logs: io.StringIO,
) -> None:
    clock.now = time.time()
    async with running_bridge(redis, engine, tmp_path) as crm, running_worker(peer, engine, redis):
        await peer.say(CITIZEN, "/start")
        greet = await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
        assert greet["reply_markup"] == {"remove_keyboard": True}
        await peer.say(CITIZEN, STORY)
        where = await peer.wait_for(CITIZEN, "lokasi")
        assert where["reply_markup"]["keyboard"][0][0] == {
            "text": "📍 Kirim lokasi",
            "request_location": True,
        }
        await peer.share(CITIZEN, *MENTENG)
        await peer.wait_for(CITIZEN, "foto")
        await peer.photo(CITIZEN, jpeg(640, 480, exif_text=PLANTED.name))
        got = await peer.wait_for(CITIZEN, "Foto 1")
        assert buttons(got) == ["Selesai"]
        await peer.tap(CITIZEN, "Selesai")
        summary = await peer.wait_for(CITIZEN, "Kirim")
        assert "Kirim" in buttons(summary)
        await peer.tap(CITIZEN, "Kirim")
        tracked = await peer.wait_for(CITIZEN, "tercatat dengan nomor")
        [req] = crm.store.list_requests()
        assert str(req.id) in tracked["text"]

        # The officer's update, with a proof photo, reaches the same chat.
        crm.store.add_update(
            req.id, "in_progress", "Truk dijadwalkan besok", media_url="https://crm.example/p.jpg"
        )
        update = await peer.wait_for(CITIZEN, "Truk dijadwalkan besok")
    assert update["photo"] == "https://crm.example/p.jpg"
    assert any(c.params.get("photo") == "https://crm.example/p.jpg" for c in peer.fake.calls)
    assert peer.fake.calls_of("answerCallbackQuery")
    assert [c["command"] for c in peer.fake.commands] == ["start", "bantuan", "batal", "status"]
    assert peer.fake.calls_of("getFile")
    # Nobody's identity reached the CRM, and no log line carries it.
    payload = req.model_dump_json()
    for value in (PLANTED.chat_id, "Siti", "Rahmawati", CITIZEN.username, PLANTED.phone):
        assert value not in payload
    assert crm.store.personal_fields_received == 0
    logged = logs.getvalue()
    assert_clean(logged)
    assert CITIZEN.username not in logged and peer.token not in logged


async def test_an_album_is_one_step(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    async with running_worker(peer, engine, redis):
        await peer.say(CITIZEN, STORY)
        await peer.wait_for(CITIZEN, "Sampah")
        await peer.say(CITIZEN, "ya")
        await peer.wait_for(CITIZEN, "lokasi")
        await peer.share(CITIZEN, *MENTENG)
        await peer.wait_for(CITIZEN, "foto")
        before = len(await peer.replies(CITIZEN))
        for i in range(3):
            await peer.photo(CITIZEN, jpeg(320 + i, 240), media_group_id="album-1")
        await peer.wait_for(CITIZEN, "ringkasan", after=before)
        after = await peer.quiet(CITIZEN, 1.5)
    said = [m["text"] for m in after[before:]]
    assert not any("Foto 1 dari" in t or "Foto 2 dari" in t for t in said), said
    assert len(said) <= 2, said  # "3 foto, cukup" and the summary: one step
    assert "3" in next(t for t in said if "ringkasan" in t.lower() or "foto" in t.lower())
    assert_clean(logs.getvalue())


async def test_cancel_and_status(peer: TelegramPeer, engine: Engine, redis: Redis) -> None:
    async with running_worker(peer, engine, redis):
        await peer.say(CITIZEN, STORY)
        await peer.wait_for(CITIZEN, "Sampah")
        await peer.say(CITIZEN, "/batal")
        await peer.wait_for(CITIZEN, "dibatalkan")
        await peer.say(CITIZEN, "/status 123456")
        await peer.wait_for(CITIZEN, "123456")
        await peer.say(CITIZEN, "/bantuan")
        await peer.wait_for(CITIZEN, "Cara melapor")
    assert await redis.xlen(streams.LOOKUPS) == 1


async def test_a_group_chat_gets_a_pointer_and_nothing_else(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    group = {"id": -100200300, "type": "supergroup", "title": "Warga RT 03"}
    async with running_worker(peer, engine, redis):
        await peer.send(CITIZEN, chat=group, text=STORY)
        await peer.wait_for(group["id"], "chat pribadi")
        await peer.send(CITIZEN, chat=group, text="/start")
        replies = await peer.quiet(group["id"], 1.0)
    assert len(replies) == 2 and all("chat pribadi" in m["text"] for m in replies)
    assert await redis.xlen(streams.COMPLAINTS) == 0
    assert not [k async for k in redis.scan_iter(match="kanal:conv:*")]
    assert_clean(logs.getvalue())
