"""The Telegram worker when things go wrong: spoofed webhooks, blocked users, flood limits,
duplicates, edits, stickers, a Bot API that fails. Against the emulator peer."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bots.core.channel import WorkerContext
from bots.core.engine import Engine
from bots.core.worker import publish
from bots.telegram import TelegramWorker
from bots.telegram.worker import UPDATES
from bridge.sandbox.server import AppServer
from kanal import streams
from kanal.http import create_app
from kanal.messages import Outbound
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.harness import assert_clean
from tests.telegram_fixtures import CITIZEN, POLICY, running_worker, tg_settings
from tests.telegram_fixtures import peer as peer  # the fixture
from tests.telegram_peer import Person, TelegramPeer

pytestmark = pytest.mark.timeout(90)
SECRET = "rahasia-webhook-uji_123"
STICKER = {
    "file_id": "s1",
    "file_unique_id": "s1u",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
    "emoji": "👍",
}


async def wait_until(pred: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def bridge_message(engine: Engine, who: Person, text: str, kind: str = "status") -> Outbound:
    conv = engine.keyring.pseudonym("telegram", str(who.id))
    return Outbound(channel="telegram", to=str(who.id), conv=conv, text=text, kind=kind)


@asynccontextmanager
async def webhook_worker(
    peer: TelegramPeer, engine: Engine, redis: Redis
) -> AsyncIterator[tuple[TelegramWorker, str]]:
    """The worker in webhook mode, its route served on the shared app as kanal run does."""
    from tests.peers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    ctx = WorkerContext(redis=redis, engine=engine, consumer="tg-hook", outbox_policy=POLICY)
    worker = TelegramWorker(
        ctx, tg_settings(peer, webhook_url=url, webhook_secret=SECRET, album_wait_s=0.3)
    )
    async with AppServer(create_app(worker.routes()), host="127.0.0.1", port=port):
        task = asyncio.create_task(worker.run())
        try:
            yield worker, url
        finally:
            await stop_tasks([task])


async def test_webhook_mode_refuses_a_wrong_or_missing_secret_then_polling_deletes_it(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    forged = {
        "update_id": 999,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": CITIZEN.chat,
            "from": CITIZEN.user,
            "text": "halo",
        },
    }
    async with webhook_worker(peer, engine, redis) as (_, url), httpx.AsyncClient() as http:
        await wait_until(lambda: _true(peer.fake.webhook is not None))
        assert peer.fake.webhook is not None
        assert peer.fake.webhook.url == url and peer.fake.webhook.secret == SECRET
        missing = await http.post(url, json=forged)
        wrong = await http.post(
            url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "tebakan"}
        )
        assert (missing.status_code, wrong.status_code) == (401, 401)
        await asyncio.sleep(0.5)
        assert await redis.xlen(UPDATES) == 0
        assert await peer.replies(CITIZEN) == []
        # The real Telegram (the fake, with the secret) is heard.
        await peer.say(CITIZEN, "halo")
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
        assert peer.fake.webhook.answers and set(peer.fake.webhook.answers) == {200}
        await peer.photo(CITIZEN, b"x", media_group_id="a1")  # parts of one album …
        await peer.photo(CITIZEN, b"y", media_group_id="a1")
        await peer.wait_for(CITIZEN, "bukan foto")
        assert len([m for m in await peer.quiet(CITIZEN, 1.0) if "bukan foto" in m["text"]]) == 1
        assert not await redis.exists("kanal:seen:telegram:999")  # the forged one: never handled
    assert peer.fake.calls_of("setWebhook")
    async with running_worker(peer, engine, redis):
        await wait_until(lambda: _true(bool(peer.fake.calls_of("deleteWebhook"))))
        await peer.say(CITIZEN, "/bantuan")
        await peer.wait_for(CITIZEN, "Cara melapor")
    assert peer.fake.webhook is None
    logged = logs.getvalue()
    assert '"event": "telegram_webhook_refused"' in logged
    assert SECRET not in logged and "tebakan" not in logged
    assert_clean(logged)


async def _true(value: bool) -> bool:
    return value


async def test_a_user_who_blocked_the_bot_is_dead_lettered_once(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    peer.fake.blocked.add(CITIZEN.id)
    out = bridge_message(engine, CITIZEN, "Laporan 123456 sedang dikerjakan.")
    async with running_worker(peer, engine, redis):
        await publish(redis, out)
        await wait_until(lambda: _len(redis, streams.dead_letters("telegram"), 1))
        await asyncio.sleep(1.5)  # would it try again?
    assert len(peer.fake.calls_of("sendMessage", CITIZEN.id)) == 1
    assert await redis.xlen(streams.dead_letters("telegram")) == 1
    assert await redis.get(streams.unreachable_key(out.conv)) == "blocked"
    assert_clean(logs.getvalue())


async def _len(redis: Redis, key: str, n: int) -> bool:
    return bool(await redis.xlen(key) >= n)


async def test_a_429_is_waited_out_for_retry_after(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    peer.fake.fail("sendMessage", 429, retry_after=1, chat_id=CITIZEN.id)
    async with running_worker(peer, engine, redis):
        await publish(redis, bridge_message(engine, CITIZEN, "Laporan 123456 selesai."))
        await peer.wait_for(CITIZEN, "123456 selesai")
        peer.fake.fail("sendMessage", 429, retry_after=1, chat_id=CITIZEN.id)
        await peer.say(CITIZEN, "halo")  # a direct reply waits it out too
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
    calls = peer.fake.calls_of("sendMessage", CITIZEN.id)
    assert [c.status for c in calls] == [429, 200, 429, 200]
    assert calls[1].at - calls[0].at >= 0.95 and calls[3].at - calls[2].at >= 0.95
    assert await redis.xlen(streams.dead_letters("telegram")) == 0


async def test_a_duplicate_update_is_handled_once(
    peer: TelegramPeer, engine: Engine, redis: Redis
) -> None:
    async with running_worker(peer, engine, redis):
        await peer.say(CITIZEN, "halo")
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
        await peer.send(CITIZEN, sticker=STICKER)
        await peer.wait_for(CITIZEN, "stiker")
        for update_id in list(peer.fake.history):
            peer.fake.redeliver(update_id)
        replies = await peer.quiet(CITIZEN, 1.5)
    assert len(replies) == 2, [m["text"] for m in replies]


async def test_edited_messages_stickers_and_other_things_get_a_short_reply(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    async with running_worker(peer, engine, redis):
        await peer.send(CITIZEN, sticker=STICKER)
        await peer.wait_for(CITIZEN, "stiker")
        peer.fake.inject(
            {
                "edited_message": {
                    "message_id": 7,
                    "date": int(time.time()),
                    "edit_date": int(time.time()),
                    "chat": CITIZEN.chat,
                    "from": CITIZEN.user,
                    "text": "ralat: jalan mawar",
                }
            }
        )
        await peer.wait_for(CITIZEN, "diubah")
        await peer.send(CITIZEN, voice={"file_id": "v1", "duration": 3})
        await peer.wait_for(CITIZEN, "suara")
        await peer.send(CITIZEN, contact={"phone_number": "081311112222", "first_name": "Siti"})
        await peer.wait_for(CITIZEN, "kontak")
        peer.fake.inject({"message_reaction": {"chat": CITIZEN.chat, "message_id": 3}})
        await peer.say(CITIZEN, "halo")  # and the bot still works
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
        replies = await peer.quiet(CITIZEN, 0.5)
    assert len(replies) == 5
    logged = logs.getvalue()
    assert '"kind": "sticker"' in logged and '"kind": "edited_message"' in logged
    assert_clean(logged)


async def test_a_failing_bot_api_is_retried_and_nothing_is_lost_or_doubled(
    peer: TelegramPeer, engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    async with running_worker(peer, engine, redis):
        await peer.say(CITIZEN, "halo")
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
        peer.fake.fail("getUpdates", 502, times=3)
        peer.fake.fail("sendMessage", 502, times=1, chat_id=CITIZEN.id)
        await peer.say(CITIZEN, "/bantuan")
        await peer.say(CITIZEN, "/batal")
        await peer.wait_for(CITIZEN, "Cara melapor")
        await peer.wait_for(CITIZEN, "Tidak ada laporan")
        # The Bot API unreachable: what the citizen says meanwhile is answered once it is back.
        outage = asyncio.create_task(peer.outage(2.0))
        await asyncio.sleep(0.3)
        await peer.say(CITIZEN, "halo")
        await outage
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal")
        replies = await peer.quiet(CITIZEN, 1.0)
    assert len(replies) == 4, [m["text"] for m in replies]
    assert [c.status for c in peer.fake.calls_of("getUpdates")].count(502) == 3
    logged = logs.getvalue()
    assert '"error": "TemporaryPeerError", "status": 502' in logged  # the 5xx, backed off
    assert '"error": "TemporaryPeerError", "status": null' in logged  # refused connections
    assert '"event": "part_recovered"' in logged


async def test_sending_stays_within_telegrams_limits(
    peer: TelegramPeer, engine: Engine, redis: Redis
) -> None:
    people = [Person(900_000 + i) for i in range(45)]
    async with running_worker(peer, engine, redis):
        for i in range(6):
            await publish(redis, bridge_message(engine, CITIZEN, f"pesan {i}"))
        for who in people:
            await publish(redis, bridge_message(engine, who, "Status laporan Anda berubah."))
        await wait_until(lambda: _true(len(peer.fake.calls_of("sendMessage")) >= 51), 30)
    one = [c.at for c in peer.fake.calls_of("sendMessage", CITIZEN.id)]
    assert one[-1] - one[0] >= 2.5, "one chat: a burst of three, then one a second"
    every = sorted(c.at for c in peer.fake.calls_of("sendMessage"))
    busiest = max(sum(1 for t in every if s <= t < s + 1.0) for s in every)
    assert busiest <= 31, busiest
