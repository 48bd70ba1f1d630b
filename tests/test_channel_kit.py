"""The adapter contract: every channel package has the same shape, runs alone with
``python -m``, and a failing part backs off without stopping its siblings."""

from __future__ import annotations

import asyncio
import importlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bots.core.channel import Channel, ChannelSettings
from kanal.app.channels import CHANNELS
from kanal.tasks import stop_tasks, supervise
from tests.peers import REPO, free_port

KIT_MODULES = [*CHANNELS, "tests.loopback"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KANAL_", "CRM_", "RASA_", "REDIS_", "LOOPBACK_", "TELEGRAM_"))
    }
    env.update(extra)
    return env


def python_m(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("module", KIT_MODULES)
def test_a_channel_package_has_the_contract_shape(module: str) -> None:
    pkg = importlib.import_module(module)
    assert isinstance(pkg.CHANNEL, Channel)
    assert issubclass(pkg.CHANNEL.settings, ChannelSettings)
    assert {"CHANNEL", "parse", "render"} <= set(pkg.__all__)
    assert callable(pkg.parse) and callable(pkg.render)
    assert (REPO / module.replace(".", "/") / "__main__.py").exists()


@pytest.mark.parametrize("module", [*KIT_MODULES, "bridge"])
def test_python_m_answers_help_without_starting(module: str, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = python_m(module, "--help", env=clean_env(KANAL_DATA_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m {module}")
    assert "REDIS_URL" in proc.stdout
    assert time.monotonic() - started < 30
    assert not (tmp_path / "redis").exists(), "--help started something"


@pytest.mark.parametrize(
    ("module", "missing"),
    [
        ("bots.console", "REDIS_URL"),
        ("bots.telegram", "TELEGRAM_BOT_TOKEN, REDIS_URL"),
        ("tests.loopback", "LOOPBACK_PLATFORM_URL, REDIS_URL"),
        ("bridge", "REDIS_URL"),
    ],
)
def test_python_m_without_its_settings_names_what_is_missing(module: str, missing: str) -> None:
    proc = python_m(module, env=clean_env())
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"python -m {module}: error: {missing} ")


def test_python_m_bots_console_runs_alone_against_redis_url(redis_url: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bots.console"],
        cwd=REPO,
        env=clean_env(
            REDIS_URL=redis_url,
            KANAL_DATA_DIR=str(tmp_path),
            KANAL_SECRET_KEY="kit-test",
            KANAL_HTTP_PORT=str(free_port()),
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write("halo\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line.startswith("Kanal: Halo! Saya Kanal"), line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()


async def test_a_failing_task_backs_off_and_its_sibling_goes_on(logs: io.StringIO) -> None:
    crashes: list[float] = []
    ticks = 0

    async def broken() -> None:
        crashes.append(time.monotonic())
        raise RuntimeError("the CRM sent garbage")

    async def healthy() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    tasks = [
        asyncio.create_task(supervise("broken", broken, base_s=0.05, cap_s=0.4)),
        asyncio.create_task(supervise("healthy", healthy)),
    ]
    await asyncio.sleep(1.5)
    await stop_tasks(tasks)
    gaps = [b - a for a, b in itertools.pairwise(crashes)]
    assert 3 <= len(crashes) <= 12, "it neither spins nor gives up"
    assert max(gaps) > 4 * min(gaps), gaps  # exponential, up to the cap
    assert ticks > 50, "the healthy sibling kept running"
    events = [json.loads(line) for line in logs.getvalue().splitlines()]
    crashed = [e for e in events if e["event"] == "task_crashed"]
    still = [e for e in events if e["event"] == "task_still_failing"]
    assert len(crashed) == 1 and "exception" in crashed[0], "one traceback per streak"
    assert len(still) == len(crashes) - 1 and all("exception" not in e for e in still)
