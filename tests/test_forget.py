"""The right to be forgotten, end to end: "hapus data saya" on the console, then an officer's
update on the report. Nothing reaches the citizen, and nothing in Redis leads back to them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken

from bridge.sandbox import SandboxStore
from kanal.keys import Keyring
from kanal.redis import Redis
from tests.harness import PLANTED
from tests.test_console import chat_env, kanal

SENDER = PLANTED.phone
KEY = "console-test-key"  # chat_env's KANAL_SECRET_KEY


class Chat:
    def __init__(self, redis_url: str, data: Path) -> None:
        self.proc = subprocess.Popen(
            kanal("chat", "--json", "--user", SENDER, "--wait", "3"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=chat_env(redis_url, data),
        )
        self.seen: list[dict[str, Any]] = []

    def send(self, line: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read_until(self, pred: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.stdout
            line = self.proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            self.seen.append(msg)
            if pred(msg):
                return msg
        raise AssertionError(f"never came; seen {self.seen[-3:]}")

    def close(self) -> list[dict[str, Any]]:
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.close()
            rest = [json.loads(line) for line in self.proc.stdout.read().splitlines() if line]
            assert self.proc.wait(timeout=60) == 0
            return rest
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()


async def everything_in(redis: Redis) -> list[str]:
    """Every key and every value in Redis, as text (streams and hashes field by field)."""
    out: list[str] = []
    async for key in redis.scan_iter(count=500):
        out.append(key)
        kind = await redis.type(key)
        if kind == "string":
            out.append(str(await redis.get(key)))
        elif kind == "hash":
            out += [f"{k}={v}" for k, v in (await redis.hgetall(key)).items()]
        elif kind == "set":
            out += list(await redis.smembers(key))
        elif kind == "list":
            out += list(await redis.lrange(key, 0, -1))
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                out += [f"{k}={v}" for k, v in fields.items()]
    return out


def opened(values: list[str], keyring: Keyring) -> list[str]:
    """Also the plaintext of anything sealed with Kanal's keys (the vault, sealed replies)."""
    out = list(values)
    for value in values:
        token = value.split("=", 1)[-1]
        if token.startswith("gAAAA"):
            try:
                out.append(keyring.decrypt(token).decode())
            except (InvalidToken, ValueError):
                continue
        elif len(token) > 40:
            try:  # a turn's sealed replies, kept for a redelivery
                out.append(keyring.unseal(token).decode())
            except (ValueError, UnicodeDecodeError):
                continue
    return out


async def test_hapus_data_saya_then_an_update_reaches_nobody_and_nothing_leads_back(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "var"
    chat = Chat(redis_url, data)
    keyring = Keyring([KEY])
    conv = keyring.pseudonym("console", SENDER)
    try:
        for line in (
            f"sampah numpuk di pinggir kali, bau. wa {PLANTED.phone}",
            "ya",
            "/lokasi -6.1702 106.8305",
            "lewati",
            "kirim",
        ):
            chat.send(line)
        tracking = chat.read_until(lambda m: m.get("tracking_id"))["tracking_id"]
        before = opened(await everything_in(redis), keyring)
        assert any(SENDER in v for v in before), "the scan finds the contact while it is kept"
        chat.send("tolong hapus data saya")
        asked = chat.read_until(lambda m: "Hapus data?" in m["text"])
        assert asked["choices"] == ["Ya, hapus data saya", "Tidak jadi"]
        chat.send("1")
        chat.read_until(lambda m: "sudah kami hapus" in m["text"])
        time.sleep(1.0)  # the bridge carries it out
        SandboxStore(data / "crm-sandbox.sqlite3").add_update(
            int(tracking), "in_progress", "Petugas menuju lokasi"
        )
        time.sleep(2.0)  # several relay polls
    finally:
        rest = chat.close()
    assert not [m for m in chat.seen + rest if "dalam pengerjaan" in m["text"]], "no update"
    after = opened(await everything_in(redis), keyring)
    for value in after:
        assert SENDER not in value, f"the contact is still in Redis: {value[:200]}"
        assert conv not in value, f"something still maps to the pseudonym: {value[:200]}"
    assert "pinggir kali" not in " ".join(after), (
        "the story as typed is gone (the CRM keeps a copy)"
    )
    [req] = SandboxStore(data / "crm-sandbox.sqlite3").list_requests()
    assert str(req.id) == tracking, "the report stays at the city"


async def test_kanal_vault_forget_for_a_written_request(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    from kanal import streams
    from kanal.messages import Outbound

    keyring = Keyring([KEY])
    conv = keyring.pseudonym("sms", SENDER)
    contact = json.dumps({"channel": "sms", "address": SENDER}).encode()
    await redis.hset(streams.vault_key(conv), "contact", keyring.encrypt(contact))
    await redis.sadd(streams.vault_key(conv) + ":open", "2400009")
    await redis.hset("kanal:req:2400009", mapping={"conv": conv, "status_code": "received"})
    out = Outbound(channel="sms", to=SENDER, conv=conv, text="Laporan 2400009 tercatat")
    await redis.xadd(streams.outbox("sms"), {"outbound": out.model_dump_json()})
    env = chat_env(redis_url, tmp_path / "var")
    proc = subprocess.run(
        kanal("vault", "forget", "--channel", "sms", "--user", SENDER),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert SENDER not in proc.stdout + proc.stderr
    assert "1 reports unlinked, 1 messages removed" in proc.stdout
    for value in opened(await everything_in(redis), keyring):
        assert SENDER not in value and conv not in value, value[:200]
    assert await redis.hget("kanal:req:2400009", "status_code") == "received"
