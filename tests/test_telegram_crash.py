"""``python -m bots.telegram`` SIGKILLed in the middle of a conversation, and started again.

The worker is killed while it sends the reply to a shared location: the engine has committed
that turn, the citizen has heard nothing, and the update is not confirmed. The citizen writes
on while it is down. The restarted worker must give the lost reply once, answer what came in
meanwhile, and finish the report: nothing lost, nothing answered twice, one report.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from kanal import streams
from kanal.redis import Redis
from tests.harness import PLANTED, assert_clean
from tests.peers import GAZETTEER, free_port, module_process
from tests.telegram_fixtures import CITIZEN
from tests.telegram_fixtures import peer as peer  # the fixture
from tests.telegram_peer import TelegramPeer

SECRET = "telegram-crash-test-key"


def worker(env: dict[str, str], log: Path) -> AbstractContextManager[subprocess.Popen[str]]:
    return module_process("bots.telegram", env, log)


@pytest.mark.timeout(150)
async def test_a_worker_killed_mid_conversation_loses_nothing_and_repeats_nothing(
    peer: TelegramPeer, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KANAL_", "CRM_", "RASA_", "TELEGRAM_"))
    }
    env.update(
        REDIS_URL=redis_url,
        TELEGRAM_BOT_TOKEN=peer.token,
        TELEGRAM_API_BASE_URL=peer.url,
        TELEGRAM_POLL_TIMEOUT_S="2",
        KANAL_SECRET_KEY=SECRET,
        KANAL_DATA_DIR=str(tmp_path / "var"),
        KANAL_GAZETTEER_FILE=str(GAZETTEER),
        KANAL_HTTP_PORT=str(free_port()),
        KANAL_LOG_LEVEL="INFO",
        KANAL_CONSUMER="tg-crash",
    )
    log = tmp_path / "worker.log"
    with worker(env, log) as first:
        peer.fake.kill_on = ("Lokasi dicatat", first.pid)
        await peer.say(CITIZEN, "halo")
        await peer.wait_for(CITIZEN, "Halo! Saya Kanal", timeout=40)
        await peer.say(CITIZEN, f"sampah numpuk di pinggir kali, bau. wa {PLANTED.phone}")
        await peer.wait_for(CITIZEN, "lokasi")
        await peer.share(CITIZEN, -6.1959, 106.8322)
        await asyncio.wait_for(peer.fake.killed.wait(), 30)
        assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
    heard = [m["text"] for m in await peer.replies(CITIZEN)]
    assert not any("Lokasi dicatat" in t for t in heard)
    await peer.say(CITIZEN, "lewati")  # the citizen goes on while the bot is down

    env["KANAL_HTTP_PORT"] = str(free_port())
    with worker(env, log) as second:
        await peer.wait_for(CITIZEN, "Lokasi dicatat", timeout=40)
        await peer.wait_for(CITIZEN, "Kirim")  # the summary: "lewati" was answered
        await peer.say(CITIZEN, "kirim")
        await peer.wait_for(CITIZEN, "diterima")
        said = [m["text"] for m in await peer.quiet(CITIZEN, 1.5)]
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 15) == 0

    assert len(said) == len(set(said)), f"something was said twice: {said}"
    assert sum("Lokasi dicatat" in t for t in said) == 1
    assert sum("Halo! Saya Kanal" in t for t in said) == 1
    assert await redis.xlen(streams.COMPLAINTS) == 1
    logs = log.read_text()
    assert '"event": "inbound_replayed"' in logs
    assert_clean(logs)
    assert "Rahmawati" not in logs and CITIZEN.username not in logs and peer.token not in logs
