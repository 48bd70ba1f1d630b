"""A worker process SIGKILLed between the engine's commit and the send.

The platform is a server this test controls (Telegram's getUpdates semantics: an update is
confirmed by the next call with a higher offset). The worker is ``python -m tests.loopback``,
built like every channel's ``python -m bots.<channel>``. When the worker sends the reply to the
final "kirim", the platform kills it before answering: the engine has committed the turn (the
report is on ``kanal:complaints``), the citizen has heard nothing, the update is unconfirmed.
A second worker gets the update again and must answer it with the same replies, without the
engine running twice and without a second report.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bots.core.sessions import SessionStore
from bridge.sandbox.server import AppServer
from kanal import streams
from kanal.keys import Keyring
from kanal.redis import Redis
from tests.harness import PLANTED, assert_clean
from tests.peers import free_port, module_process

SECRET = "replay-crash-test-key"
CITIZEN = PLANTED.chat_id
SCRIPT: list[dict[str, Any]] = [
    {"text": "halo"},
    {"text": f"sampah numpuk di pinggir kali, bau banget. wa {PLANTED.phone}"},
    {"text": "ya"},
    {"location": [-6.1702, 106.8305]},
    {"text": "lewati"},
    {"text": "kirim"},
]


class Platform:
    def __init__(self) -> None:
        self.updates = [{"update_id": 1000 + i, "from": CITIZEN, **u} for i, u in enumerate(SCRIPT)]
        self.confirmed = 0
        self.delivered: list[dict[str, str]] = []
        self.attempted: list[dict[str, str]] = []
        self.kill_on: str | None = None  # kill the worker when it sends a reply with this text
        self.worker_pid: int | None = None
        self.killed = asyncio.Event()

    async def get_updates(self, request: Request) -> Response:
        offset = int(request.query_params.get("offset", "0"))
        self.confirmed = max(self.confirmed, offset)
        return JSONResponse([u for u in self.updates if u["update_id"] >= self.confirmed])

    async def send(self, request: Request) -> Response:
        body = await request.json()
        self.attempted.append(body)
        if self.kill_on and self.kill_on in body["text"] and self.worker_pid:
            os.kill(self.worker_pid, signal.SIGKILL)  # the send never completes
            self.kill_on = None
            self.killed.set()
            return Response(status_code=502)
        self.delivered.append(body)
        return JSONResponse({"ok": True})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/updates", self.get_updates),
                Route("/send", self.send, methods=["POST"]),
            ]
        )


def worker(env: dict[str, str], log: Path) -> AbstractContextManager[subprocess.Popen[str]]:
    return module_process("tests.loopback", env, log)


async def wait_for(pred: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_a_worker_killed_between_commit_and_send_answers_after_restart(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    platform = Platform()
    platform.kill_on = "Laporan diterima"  # the reply to "kirim", sent after the commit
    port = free_port()
    server = AppServer(platform.app(), host="127.0.0.1", port=port)
    await server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "RASA_"))}
    env.update(
        REDIS_URL=redis_url,
        LOOPBACK_PLATFORM_URL=f"http://127.0.0.1:{port}",
        KANAL_SECRET_KEY=SECRET,
        KANAL_DATA_DIR=str(tmp_path / "var"),
        KANAL_HTTP_PORT=str(free_port()),
        KANAL_LOG_LEVEL="INFO",
    )
    conv = Keyring([SECRET]).pseudonym("loopback", CITIZEN)
    log = tmp_path / "worker.log"
    try:
        with worker(env, log) as first:
            platform.worker_pid = first.pid
            await asyncio.wait_for(platform.killed.wait(), 60)
            assert first.wait(timeout=10) == -signal.SIGKILL
        # Killed after the commit, before the citizen heard anything of the last turn.
        assert await redis.xlen(streams.COMPLAINTS) == 1
        state = await SessionStore(redis).load(conv)
        assert len(state.reports) == 1
        lost = platform.attempted[-1]
        assert lost not in platform.delivered
        before = len(platform.delivered)

        env["KANAL_HTTP_PORT"] = str(free_port())
        with worker(env, log) as second:
            await wait_for(lambda: lost in platform.delivered)
            await asyncio.sleep(1.0)  # would anything else come?
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
    finally:
        await server.stop()

    # The lost reply, once, and nothing else: the updates of the batch whose replies were out
    # are duplicates now. No second report; the conversation advanced once.
    assert platform.delivered[before:] == [lost]
    assert await redis.xlen(streams.COMPLAINTS) == 1
    assert (await SessionStore(redis).load(conv)) == state
    logs = log.read_text()
    assert '"event": "inbound_replayed"' in logs
    assert_clean(logs)
