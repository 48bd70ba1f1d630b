"""`kanal run` on embedded defaults, `kanal doctor`, and the deployment file."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from bridge.sandbox import AppServer
from kanal.app.channels import CHANNELS, load
from kanal.http import create_app
from kanal.settings import CrmSettings, KanalSettings, RasaSettings, RedisSettings
from tests.conftest import Citizen
from tests.harness import PLANTED, assert_clean
from tests.peers import REPO, free_port


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KANAL_", "CRM_", "RASA_", "REDIS_"))
    }
    env.update(extra)
    return env


class KanalRun:
    """``kanal run`` as a real process, its console on a pipe."""

    def __init__(self, tmp_path: Path, **extra: str) -> None:
        env = clean_env(
            KANAL_DATA_DIR=str(tmp_path / "var"), KANAL_HTTP_PORT=str(free_port()), **extra
        )
        self.log = tmp_path / "kanal-run.log"
        with self.log.open("w") as err:  # everything it runs logs here: bridge, sandbox, console
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kanal", "run"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                cwd=tmp_path,
                text=True,
            )

    def send(self, *lines: str) -> None:
        assert self.proc.stdin
        for line in lines:
            self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read_until(self, needle: str, timeout: float = 60) -> str:
        assert self.proc.stdout
        seen = ""
        deadline = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    break
                seen += line
        assert needle in seen, seen
        return seen

    def stop(self) -> int:
        """SIGTERM, then the exit code (killed if it does not stop in 30 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        """Stop it if a test failed on the way: SIGTERM first, so that the Rasa server it
        manages (its own process group) is stopped too and not left running; then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()


def test_kanal_run_answers_halo_and_stops_on_sigterm(tmp_path: Path) -> None:
    """No configuration at all: embedded Redis, sandbox CRM; the console answers."""
    run = KanalRun(tmp_path)
    try:
        run.send("halo")
        run.read_until("Halo! Saya Kanal")
        assert run.stop() == 0
    finally:
        run.close()
    assert (tmp_path / "var" / "crm-sandbox.sqlite3").exists()
    assert (tmp_path / "var" / "secret.key").exists()


def test_doctor_reports_embedded_defaults_and_an_unreachable_part(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "kanal", "doctor"],
        env=clean_env(KANAL_DATA_DIR=str(tmp_path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "embedded" in ok.stdout and "development key" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "kanal", "doctor"],
        env=clean_env(CRM_URL=f"http://127.0.0.1:{free_port()}"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "CRM_URL" in bad.stdout and "FAIL" in bad.stdout


def test_compose_file_describes_the_deployment() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"redis", "crm-sandbox", "bridge"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    known = {
        f"{s.model_config.get('env_prefix', '')}{f}".upper()
        for s in (KanalSettings, RedisSettings, CrmSettings, RasaSettings)
        for f in s.model_fields
    }
    for name in ("bridge", "crm-sandbox"):
        env = {**doc["x-kanal"]["environment"], **services[name].get("environment", {})}
        assert set(env) <= known, set(env) - known
    assert services["bridge"]["command"] == ["python", "-m", "bridge"]


def test_env_example_lists_every_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    channel_settings = [load(module).settings for module in CHANNELS]
    for s in (KanalSettings, RedisSettings, CrmSettings, RasaSettings, *channel_settings):
        prefix = str(s.model_config.get("env_prefix", ""))
        for field in s.model_fields:
            assert f"{prefix}{field}".upper() in listed, field


async def test_metrics_count_what_happened(citizen: Citizen) -> None:
    await citizen.say("halo")
    async with AppServer(create_app()) as http, httpx.AsyncClient() as client:
        body = (await client.get(f"{http.url}/metrics")).text
        health = await client.get(f"{http.url}/healthz")
    assert health.json() == {"status": "ok"}
    assert 'kanal_inbound_total{channel="console"}' in body
    assert "kanal_engine_seconds_bucket" in body
    assert citizen.user not in body


def test_kanal_run_pushes_an_officer_update_at_once(tmp_path: Path) -> None:
    """With polling off, the sandbox's signed webhook alone brings the update to the console."""
    run = KanalRun(tmp_path, CRM_POLL_INTERVAL_S="3600")
    try:
        m = re.search(r"CRM (http://[\d.]+:\d+)", run.read_until("CRM http://"))
        assert m
        run.send(
            f"sampah menumpuk di pinggir kali. {PLANTED.name}, wa {PLANTED.phone}",
            "ya",
            "/lokasi -6.2 106.83",
            "lewati",
            "kirim",
        )
        out = run.read_until("tercatat dengan nomor")
        srid = out.split("tercatat dengan nomor ", 1)[1].split(" ", 1)[0]
        r = httpx.post(
            f"{m.group(1)}/officer/requests/{srid}/status",
            json={"status": "in_progress", "note": "Truk dijadwalkan besok"},
        )
        assert r.status_code in (200, 201), r.text
        started = time.monotonic()
        run.read_until("dalam pengerjaan", timeout=10)
        assert time.monotonic() - started < 5, "pushed, not polled"
        assert run.stop() == 0
    finally:
        run.close()
    logged = run.log.read_text()
    assert "complaint_filed" in logged
    assert_clean(logged, where="kanal run's log")
    assert "pinggir kali" not in logged
