"""``kanal run`` with ``TELEGRAM_BOT_TOKEN`` set: the Telegram channel starts with everything else,
and a report made in the chat ends with the CRM's number and the officer's update there."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness import PLANTED, assert_clean
from tests.telegram_fixtures import CITIZEN
from tests.telegram_fixtures import peer as peer  # the fixture
from tests.telegram_peer import TelegramPeer
from tests.test_run import KanalRun, clean_env


@pytest.mark.timeout(180)
async def test_kanal_run_starts_telegram_when_its_token_is_set(
    peer: TelegramPeer, tmp_path: Path
) -> None:
    run = KanalRun(
        tmp_path,
        TELEGRAM_BOT_TOKEN=peer.token,
        TELEGRAM_API_BASE_URL=peer.url,
        TELEGRAM_POLL_TIMEOUT_S="2",
        CRM_POLL_INTERVAL_S="3600",  # the sandbox's signed push brings the update
    )
    try:
        banner = await asyncio.to_thread(run.read_until, "CRM http://")
        m = re.search(r"CRM (http://[\d.]+:\d+)", banner)
        assert m
        await peer.say(CITIZEN, f"lampu jalan mati di depan masjid. {PLANTED.name}")
        await peer.wait_for(CITIZEN, "lokasi", timeout=60)
        await peer.share(CITIZEN, -6.1959, 106.8322)
        await peer.wait_for(CITIZEN, "foto")
        await peer.say(CITIZEN, "lewati")
        await peer.wait_for(CITIZEN, "Kirim")
        await peer.say(CITIZEN, "kirim")
        tracked = await peer.wait_for(CITIZEN, "tercatat dengan nomor", timeout=30)
        srid = tracked["text"].split("tercatat dengan nomor ", 1)[1].split(" ", 1)[0]
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{m.group(1)}/officer/requests/{srid}/status",
                json={"status": "in_progress", "note": "Petugas PJU menuju lokasi"},
            )
        assert r.status_code in (200, 201), r.text
        await peer.wait_for(CITIZEN, "Petugas PJU menuju lokasi", timeout=15)
        assert await asyncio.to_thread(run.stop) == 0
    finally:
        run.close()
    logged = run.log.read_text()
    assert '"channels": "console,telegram"' in logged
    assert_clean(logged, where="kanal run's log")
    assert CITIZEN.username not in logged and peer.token not in logged


async def test_doctor_checks_the_bot_token_and_the_webhook_secret(
    peer: TelegramPeer, tmp_path: Path
) -> None:
    def doctor(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kanal", "doctor"],
            env=clean_env(KANAL_DATA_DIR=str(tmp_path), TELEGRAM_API_BASE_URL=peer.url, **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = await asyncio.to_thread(doctor, TELEGRAM_BOT_TOKEN=peer.token)
    assert "[ok  ] TELEGRAM_BOT_TOKEN: getMe: @TestNameBot" in good.stdout, good.stdout
    assert "long polling" in good.stdout and peer.token not in good.stdout
    wrong = await asyncio.to_thread(doctor, TELEGRAM_BOT_TOKEN="1:salah")
    assert wrong.returncode == 1 and "[FAIL] TELEGRAM_BOT_TOKEN" in wrong.stdout
    no_secret = await asyncio.to_thread(
        doctor,
        TELEGRAM_BOT_TOKEN=peer.token,
        TELEGRAM_WEBHOOK_URL="https://k.example/telegram/webhook",
    )
    assert "[FAIL] TELEGRAM_WEBHOOK_SECRET" in no_secret.stdout
