"""Telegram figures for ``make bench``: the real worker (long polling, the fallback NLU, a real
redis-server) against the npm emulator and the in-repo fake (tests/telegram_peer).

``await run(redis_url)`` returns::

    telegram_updates_per_s   updates handled per second end to end: 60 chats writing at once,
                             three messages each, each sent once the previous one was answered;
                             from the first update reaching the emulator to the last reply
                             reaching it. Sending is paced at Telegram's 30 messages a second,
                             which bounds this figure.
    telegram_reply_p50_ms    the median time from an update reaching the emulator to the bot's
                             reply reaching it, one update at a time (no queueing).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

CHATS = 60
TURNS = ("halo", "/bantuan", "/status 123456")
SEQUENTIAL = 40


async def _turn(peer: object, who: object, text: str) -> float:
    """Send one message; the ms from its reaching the emulator to the reply's reaching it."""
    from tests.telegram_peer import Person, TelegramPeer

    assert isinstance(peer, TelegramPeer) and isinstance(who, Person)
    before = len(peer.fake.stored_at.get(who.id, []))
    await peer.say(who, text)
    sent = time.time()  # the emulator has stored it: the update reached it
    replied = await asyncio.wait_for(peer.fake.wait_stored(who.id, before + 1), 30)
    return (replied - sent) * 1000


async def run(redis_url: str) -> dict[str, float]:
    from bots.core.channel import WorkerContext
    from bots.core.engine import Engine
    from bots.core.gazetteer import Gazetteer
    from bots.core.sessions import SessionStore
    from bots.telegram import TelegramSettings, TelegramWorker
    from kanal import logging as klog
    from kanal.keys import Keyring
    from kanal.mediastore import LocalMediaStore
    from kanal.redis import connect
    from kanal.tasks import stop_tasks
    from nlu.fallback import FallbackNlu
    from tests.telegram_peer import Person, TelegramPeer

    klog.configure(level="ERROR")
    redis = connect(redis_url)
    await redis.flushdb()
    engine = Engine(
        sessions=SessionStore(redis),
        nlu=FallbackNlu(),
        gazetteer=Gazetteer(),
        media=LocalMediaStore(Path(tempfile.mkdtemp())),
        keyring=Keyring(["bench"]),
    )
    async with TelegramPeer() as peer:
        settings = TelegramSettings(bot_token=peer.token, api_base_url=peer.url, poll_timeout_s=10)
        worker = TelegramWorker(WorkerContext(redis=redis, engine=engine), settings)
        task = asyncio.create_task(worker.run())
        try:
            await _turn(peer, Person(1), "halo")  # warm up: connections, commands, first poll
            latencies = [await _turn(peer, Person(1000 + i), "halo") for i in range(SEQUENTIAL)]

            async def chat(who: Person) -> None:
                for text in TURNS:
                    await _turn(peer, who, text)

            started = time.perf_counter()
            await asyncio.gather(*(chat(Person(5000 + i)) for i in range(CHATS)))
            elapsed = time.perf_counter() - started
        finally:
            await stop_tasks([task])
    await redis.aclose()
    return {
        "telegram_updates_per_s": round(CHATS * len(TURNS) / elapsed, 1),
        "telegram_reply_p50_ms": round(statistics.median(latencies), 1),
    }


def main() -> int:
    from tests.peers import redis_server

    with redis_server() as url:
        print(asyncio.run(run(url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
