"""``make bench``'s X figure: 500 DMs from 500 citizens waiting in the fake X API (every request
and response validated against the official spec, as in the tests), handled by ``python -m
bots.twitter``: ``dm_events`` paged, each DM through the engine, its reply queued with the turn
and sent as a DM.

``twitter_dms_per_s`` is 500 over the time from the worker's start (start-up included) to the
last reply received; ``twitter_backlog_500_s`` that time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bridge.sandbox.server import AppServer
from tests.peers import REPO, free_port
from tests.x_fake import FakeX, x_env

N = 500


async def _run(redis_url: str) -> dict[str, float]:
    fake = FakeX()
    users = [str(9_000_000 + i) for i in range(N)]
    for user in users:
        fake.dm(user, "halo")
    async with AppServer(fake.app()) as server:
        fake.url = server.url
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("KANAL_", "CRM_", "TWITTER_", "RASA_"))
            }
            env.update(
                REDIS_URL=redis_url,
                KANAL_DATA_DIR=str(Path(tmp) / "var"),
                KANAL_HTTP_PORT=str(free_port()),
                KANAL_SECRET_KEY="bench-twitter",
                KANAL_LOG_LEVEL="WARNING",
                RASA_URL=f"http://127.0.0.1:{free_port()}",
                **x_env(fake.url, TWITTER_DM_POLL_S="0.05", TWITTER_MENTION_POLL_S="5"),
            )
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "bots.twitter"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = started + 600
                while len(fake.sent) < N and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
            finally:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 30)
    answered = len({d["participant_id"] for d in fake.sent})
    if answered < N or fake.violations:
        return {"twitter_dms_per_s": -1.0, "twitter_unanswered": float(N - answered)}
    return {"twitter_backlog_500_s": round(elapsed, 1), "twitter_dms_per_s": round(N / elapsed, 1)}


def run(redis_url: str) -> dict[str, float]:
    return asyncio.run(_run(redis_url))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from tests.peers import redis_server

    with redis_server() as url:
        print(run(url))
