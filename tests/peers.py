"""Real peers for the tests, started on 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GAZETTEER = SHARED / "data" / "jakarta-wilayah" / "dki_jakarta_kelurahan.geojson"
OPEN311_SPEC = SHARED / "specs" / "open311-georeport-v2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """A real redis-server (Debian's) on a free port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run `make peers`")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kanal-redis-") as tmp:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise
                time.sleep(0.02)
        client.close()
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def module_process(module: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -m <module>`` from the repository root, its stderr appended to ``log``;
    SIGTERMed (then killed) on the way out if it is still running."""
    with log.open("a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
