"""Fixtures for the Telegram tests: the emulator peer, the real worker, an in-process bridge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bots.core.channel import WorkerContext
from bots.core.engine import Engine
from bots.core.outbox import OutboxPolicy
from bots.telegram import TelegramSettings, TelegramWorker
from bridge.open311 import Open311Client
from bridge.sandbox import SandboxServer
from bridge.status import StatusService
from bridge.submitter import Submitter
from bridge.vault import Vault
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.harness import PLANTED
from tests.telegram_peer import Person, TelegramPeer

CITIZEN = Person(int(PLANTED.chat_id), first_name="Siti", last_name="Rahmawati")
POLICY = OutboxPolicy(backoff_base_s=0.2, backoff_cap_s=1.0, block_ms=100, claim_idle_ms=5_000)


@pytest.fixture
async def peer() -> AsyncIterator[TelegramPeer]:
    async with TelegramPeer() as p:
        yield p


def tg_settings(peer: TelegramPeer, **kw: Any) -> TelegramSettings:
    values: dict[str, Any] = {
        "bot_token": peer.token,
        "api_base_url": peer.url,
        "poll_timeout_s": 2,
        "album_wait_s": 0.5,
        **kw,
    }
    return TelegramSettings(**values)


@asynccontextmanager
async def running_worker(
    peer: TelegramPeer, engine: Engine, redis: Redis, **kw: Any
) -> AsyncIterator[TelegramWorker]:
    ctx = WorkerContext(redis=redis, engine=engine, consumer="tg-test", outbox_policy=POLICY)
    worker = TelegramWorker(ctx, tg_settings(peer, **kw))
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await stop_tasks([task])
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


@asynccontextmanager
async def running_bridge(
    redis: Redis, engine: Engine, tmp_path: Path
) -> AsyncIterator[SandboxServer]:
    """The bridge's submitter, lookups and relay against the sandbox CRM, in this process."""
    async with (
        SandboxServer(tmp_path / "crm.sqlite3") as crm,
        Open311Client(crm.url) as client,
    ):
        vault = Vault(redis, engine.keyring)
        status = StatusService(redis, client, vault, poll_interval_s=0.3)
        submitter = Submitter(redis, client, vault, keyring=engine.keyring)
        tasks = [
            asyncio.create_task(submitter.run()),
            asyncio.create_task(status.run_lookups()),
            asyncio.create_task(status.run_relay()),
        ]
        try:
            yield crm
        finally:
            await stop_tasks(tasks)


__all__ = ["CITIZEN", "POLICY", "peer", "running_bridge", "running_worker", "tg_settings"]
