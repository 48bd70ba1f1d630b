"""`kanal chat --json` as a citizen would use it: a real process, a real Redis, the sandbox CRM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.sandbox import SandboxStore
from tests.harness import PLANTED, assert_clean
from tests.images import jpeg
from tests.peers import GAZETTEER, REPO

SENDER = PLANTED.chat_id


def chat_env(redis_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "RASA_"))}
    env.update(
        REDIS_URL=redis_url,
        KANAL_DATA_DIR=str(data_dir),
        KANAL_GAZETTEER_FILE=str(GAZETTEER),
        KANAL_SECRET_KEY="console-test-key",
        CRM_POLL_INTERVAL_S="0.3",
        KANAL_LOG_LEVEL="INFO",
    )
    return env


def kanal(*args: str) -> list[str]:
    return [sys.executable, "-m", "kanal", *args]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "lubang.jpg"
    path.write_bytes(jpeg(exif_text=f"{PLANTED.name} {PLANTED.phone}"))
    return path


def test_piped_report_ends_with_tracking_number(
    redis_url: str, tmp_path: Path, photo: Path, redis: object
) -> None:
    script = "\n".join(
        [
            "halo min",
            "jalan depan sekolah bolong gede bgt udh 2 motor jatoh, tlg dong. "
            f"wa saya {PLANTED.phone}, {PLANTED.email}",
            "1",  # yes, that category (or the first menu entry if NLU were lost)
            "/lokasi -6.2446 106.8006",
            f"/foto {photo}",
            "selesai",
            "kirim",
        ]
    )
    data = tmp_path / "var"
    proc = subprocess.run(
        kanal("chat", "--json", "--user", SENDER, "--wait", "30"),
        input=script + "\n",
        capture_output=True,
        text=True,
        env=chat_env(redis_url, data),
        cwd=REPO,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    for msg in lines:
        assert set(msg) >= {"text", "expects", "choices"}
    assert lines[-1].get("tracking_id"), lines[-3:]
    tracking = lines[-1]["tracking_id"]
    assert tracking.isdigit()

    [req] = SandboxStore(data / "crm-sandbox.sqlite3").list_requests()
    assert str(req.id) == tracking
    assert req.service_code == "jalan_rusak"
    assert (req.lat, req.long) == (-6.2446, 106.8006)
    assert req.attributes["kecamatan"] == "Kebayoran Baru"
    payload = req.model_dump_json()
    assert SENDER not in payload and PLANTED.phone not in payload and PLANTED.email not in payload
    assert "[nomor telepon]" in (req.description or "")
    assert SandboxStore(data / "crm-sandbox.sqlite3").personal_fields_received == 0
    assert_clean(proc.stderr)  # no planted value in any log line of the real process
    assert "bolong" not in proc.stderr, "message text must not be logged"


def test_status_update_reaches_the_console_session(
    redis_url: str, tmp_path: Path, redis: object
) -> None:
    data = tmp_path / "var"
    proc = subprocess.Popen(
        kanal("chat", "--json", "--user", "warga-2", "--wait", "5"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=chat_env(redis_url, data),
        cwd=REPO,
    )
    assert proc.stdin and proc.stdout

    def send(line: str) -> None:
        assert proc.stdin
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    def read_until(pred: object, timeout: float = 30) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.stdout
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if pred(msg):  # type: ignore[operator]
                return msg  # type: ignore[no-any-return]
        raise AssertionError("expected message never came")

    try:
        for line in (
            "sampah numpuk di pinggir kali, bau",
            "ya",
            "/lokasi -6.1702 106.8305",
            "lewati",
        ):
            send(line)
        send("kirim")
        tracking = read_until(lambda m: "tracking_id" in m)["tracking_id"]
        store = SandboxStore(data / "crm-sandbox.sqlite3")
        store.add_update(int(str(tracking)), "in_progress", "Truk sampah dijadwalkan besok pagi")
        update = read_until(lambda m: "dalam pengerjaan" in str(m["text"]))
        assert "Truk sampah" in str(update["text"])
    finally:
        proc.stdin.close()
        code = proc.wait(timeout=30)
        proc.stdout.close()
    assert code == 0
