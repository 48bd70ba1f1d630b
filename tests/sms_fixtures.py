"""The SMS stack for tests: a real Kannel, the SMS worker on Kanal's HTTP app, the fake SMSC.

Everything blocking (Kannel's processes, the fake SMSC's socket) runs in threads, because Kannel
calls back into the HTTP app that runs on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bots.core.channel import WorkerContext
from bots.core.engine import Engine
from bots.core.outbox import OutboxPolicy
from bots.core.worker import publish
from bots.sms import SmsSettings, SmsWorker
from bridge.sandbox import AppServer
from kanal import streams
from kanal.http import create_app
from kanal.messages import Outbound
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.kannel import PASSWORD, USER, FakeSmsc, KannelPeer, Mt, kannel
from tests.peers import free_port

SECRET = "rahasia-kannel-uji"
FAST = OutboxPolicy(backoff_base_s=0.2, backoff_cap_s=1.0, block_ms=100, claim_idle_ms=5_000)


@dataclass
class SmsStack:
    peer: KannelPeer
    smsc: FakeSmsc
    worker: SmsWorker
    url: str  # Kanal's HTTP app
    redis: Redis
    engine: Engine

    async def mo(self, sender: str, text: str) -> None:
        await asyncio.to_thread(self.smsc.mo, sender, text)

    async def mt(self, timeout: float = 15) -> Mt:
        return await asyncio.to_thread(self.smsc.next_mt, timeout)

    async def quiet(self, seconds: float = 0.7) -> list[Mt]:
        """What else comes out within ``seconds``."""
        await asyncio.sleep(seconds)
        return self.smsc.drain()

    async def chat(self, sender: str, text: str, timeout: float = 15) -> Mt:
        """Send one MO; the first SMS that comes back."""
        await self.mo(sender, text)
        return await self.mt(timeout)

    async def push(self, *, to: str, conv: str, text: str, kind: str = "update", **kw: str) -> None:
        """A message on the SMS outbox, as the bridge puts one there."""
        out = Outbound(channel="sms", to=to, conv=conv, text=text, kind=kind, **kw)  # type: ignore[arg-type]
        await publish(self.redis, out)

    async def outbox(self) -> list[Outbound]:
        entries = await self.redis.xrange(streams.outbox("sms"))
        return [Outbound.model_validate_json(f["outbound"]) for _, f in entries]


def settings(sendsms_url: str, **extra: object) -> SmsSettings:
    values: dict[str, object] = {
        "kannel_sendsms_url": sendsms_url,
        "kannel_username": USER,
        "kannel_password": PASSWORD,
        "inbound_secret": SECRET,
        "shortcode": "1708",
        "duplicate_window_s": 10.0,
    }
    values.update(extra)
    return SmsSettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def sms_stack(
    redis: Redis, engine: Engine, tmp: Path, *, throughput: float | None = None, **extra: object
) -> AsyncIterator[SmsStack]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    inbound = f"{url}/sms/inbound?secret={SECRET}"
    cm = kannel(tmp / "kannel", inbound, throughput=throughput)
    peer = await asyncio.to_thread(cm.__enter__)
    try:
        ctx = WorkerContext(redis=redis, engine=engine, public_url=url, outbox_policy=FAST)
        worker = SmsWorker(ctx, settings(peer.sendsms_url, **extra))
        async with AppServer(create_app(worker.routes()), port=port):
            task = asyncio.create_task(worker.run())
            smsc = await asyncio.to_thread(FakeSmsc, peer)
            try:
                yield SmsStack(peer, smsc, worker, url, redis, engine)
            finally:
                smsc.close()
                await stop_tasks([task])
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)


@pytest.fixture
async def stack(redis: Redis, engine: Engine, tmp_path: Path) -> AsyncIterator[SmsStack]:
    async with sms_stack(redis, engine, tmp_path) as s:
        yield s


async def post_mo(url: str, *, secret: str | None = SECRET, **params: str) -> httpx.Response:
    """An MO as Kannel's post-url sends it (for the cases Kannel itself cannot produce)."""
    query = {"secret": secret, **{k: v for k, v in params.items() if k != "text"}}
    query = {k: v for k, v in query.items() if v is not None}
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{url}/sms/inbound",
            params=query,
            content=params.get("text", "").encode(),
            headers={"Content-Type": 'text/plain; charset="UTF-8"'},
        )


__all__ = ["FAST", "SECRET", "SmsStack", "post_mo", "settings", "sms_stack", "stack"]
