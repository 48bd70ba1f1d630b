"""``make bench``'s e-mail figure: a backlog of 1,000 letters waiting in a real Dovecot inbox,
processed by ``python -m bots.email`` (IMAP fetch, MIME, engine, replies queued, ``\\Seen``).

``email_backlog_1000_s`` is the time from the worker's start to the last letter marked
``\\Seen`` (its start-up included); ``email_letters_per_s`` the rate over that time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from tests.mail_peers import dovecot_server, smtp_sink
from tests.peers import REPO, free_port

N = 1000


def _letter(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"warga{i}@contoh.co.id"
    msg["To"] = "dki@jakarta.go.id"
    msg["Subject"] = f"Sampah menumpuk {i}"
    msg["Message-ID"] = make_msgid(domain="warga.example")
    msg.set_content(
        "Yth. Bapak/Ibu,\n\nSampah menumpuk di Jl. Kebon Pala RT 03/RW 05, Kelurahan Kampung "
        f"Melayu, Kecamatan Jatinegara sejak {i % 28 + 1} hari lalu.\n\nHormat saya,\nWarga"
    )
    return msg.as_bytes()


def run(redis_url: str) -> dict[str, float]:
    with dovecot_server() as dovecot, smtp_sink() as sink, tempfile.TemporaryDirectory() as tmp:
        client = dovecot.client()
        try:
            for i in range(N):
                client.append("INBOX", _letter(i))
        finally:
            client.logout()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KANAL_", "CRM_", "EMAIL_"))
        }
        env.update(
            REDIS_URL=redis_url,
            EMAIL_IMAP_HOST="127.0.0.1",
            EMAIL_IMAP_PORT=str(dovecot.port),
            EMAIL_IMAP_USER="dki",
            EMAIL_IMAP_PASSWORD="rahasia-imap",
            EMAIL_IMAP_SSL="false",
            EMAIL_SMTP_HOST="127.0.0.1",
            EMAIL_SMTP_PORT=str(sink.port),
            EMAIL_SMTP_STARTTLS="false",
            EMAIL_REPLIES_PER_HOUR="100000",
            KANAL_DATA_DIR=str(Path(tmp) / "var"),
            KANAL_HTTP_PORT=str(free_port()),
            KANAL_SECRET_KEY="bench-email",
            KANAL_LOG_LEVEL="WARNING",
        )
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bots.email"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = started + 900
            while time.perf_counter() < deadline:
                if not dovecot.unseen():
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            left = len(dovecot.unseen())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if left:
        return {"email_backlog_1000_s": -1.0, "email_backlog_left": float(left)}
    return {
        "email_backlog_1000_s": round(elapsed, 1),
        "email_letters_per_s": round(N / elapsed, 1),
    }
