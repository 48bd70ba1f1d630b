"""The e-mail channel end to end: real Dovecot (IMAP IDLE) in, an aiosmtpd sink out, ``kanal
run`` with the sandbox CRM in between. Mail is put in the inbox with IMAP APPEND, as an MTA
delivering it would leave it; replies are read where the SMTP server received them.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from PIL import Image

from bridge.sandbox import SandboxStore
from kanal import streams
from kanal.keys import Keyring
from kanal.redis import Redis
from tests.harness import PLANTED, assert_clean
from tests.mail_peers import (
    CITIZEN,
    PASSWORD,
    USER,
    Dovecot,
    ImapProxy,
    SmtpSink,
    dovecot_server,
    opensmtpd,
    smtp_sink,
    text_of,
)
from tests.peers import GAZETTEER, REPO, free_port
from tests.test_run import KanalRun, clean_env

SECRET = "email-test-key"
CITY = "dki@jakarta.go.id"


@pytest.fixture(autouse=True)
def _fresh_redis(redis: Redis) -> None:
    """Every test here starts on an empty Redis: no outbox left over from the one before."""


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as server:
        yield server


def email_env(imap_port: int, smtp_port: int, redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(
        REDIS_URL=redis_url,
        EMAIL_IMAP_HOST="127.0.0.1",
        EMAIL_IMAP_PORT=str(imap_port),
        EMAIL_IMAP_USER=USER,
        EMAIL_IMAP_PASSWORD=PASSWORD,
        EMAIL_IMAP_SSL="false",
        EMAIL_SMTP_HOST="127.0.0.1",
        EMAIL_SMTP_PORT=str(smtp_port),
        EMAIL_SMTP_STARTTLS="false",
        EMAIL_ADDRESS=CITY,
        EMAIL_IDLE_S="5",
        KANAL_SECRET_KEY=SECRET,
        # No managed Rasa server: the keyword matcher answers (these tests are about mail).
        RASA_URL=f"http://127.0.0.1:{free_port()}",
        KANAL_GAZETTEER_FILE=str(GAZETTEER),
        CRM_POLL_INTERVAL_S="0.3",
        KANAL_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def photo_jpeg() -> bytes:
    """A photo as a phone takes it: noisy, far over the size of a signature's logo."""
    img = Image.frombytes("RGB", (320, 240), os.urandom(320 * 240 * 3))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def letter(
    sender: str,
    subject: str,
    body: str,
    *,
    name: str = "",
    photos: int = 0,
    reply_to: EmailMessage | None = None,
    **headers: str,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = CITY
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="warga.example")
    msg["Date"] = "Mon, 03 Mar 2025 08:15:00 +0700"
    if reply_to is not None:
        msg["In-Reply-To"] = str(reply_to["Message-ID"])
        msg["References"] = str(reply_to["Message-ID"])
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    for i in range(photos):
        msg.add_attachment(
            photo_jpeg(), maintype="image", subtype="jpeg", filename=f"IMG_2025030{i}.jpg"
        )
    return msg


def wait_seen(dovecot: Dovecot, timeout: float = 60.0) -> None:
    """Until every mail in the inbox is marked \\Seen (processed and recorded)."""
    deadline = time.monotonic() + timeout
    while dovecot.unseen() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dovecot.unseen() == []


def token_of(msg: EmailMessage) -> str:
    subject = str(msg["Subject"])
    assert "[Kanal #" in subject, subject
    return subject.split("[Kanal #", 1)[1].split("]", 1)[0]


COMPLETE = (
    "Selamat pagi Bapak/Ibu,\n\n"
    "Saya ingin melaporkan tumpukan sampah yang sudah seminggu tidak diangkut di Jl. Kebon "
    "Pala RT 03/RW 05, Kelurahan Kampung Melayu, Kecamatan Jatinegara. Baunya menyengat dan "
    "sudah dikerubungi lalat. Foto terlampir.\n\n"
    f"Hormat saya,\n{PLANTED.name}\nHP {PLANTED.phone}\n"
)


@pytest.mark.timeout(240)
def test_a_complete_letter_is_filed_without_a_question_and_answered_in_its_thread(
    dovecot: Dovecot, sink: SmtpSink, redis_url: str, tmp_path: Path
) -> None:
    """One e-mail with the story, the address and a photo: filed at once; the reply gives the
    summary and how to correct it, then the tracking number and an officer's update arrive in
    the same thread. The sender's address, name and signature never reach the CRM or a log."""
    run = KanalRun(tmp_path, **email_env(dovecot.port, sink.port, redis_url))
    try:
        sent = letter(
            PLANTED.email,
            "Sampah menumpuk di Jl. Kebon Pala",
            COMPLETE,
            name=PLANTED.name,
            photos=1,
        )
        dovecot.append(sent)
        first = sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(sent["Message-ID"]))
        body = text_of(first)
        assert body.startswith("Yth. Bapak/Ibu,")
        assert "Ringkasan laporan" in body and "Kampung Melayu" in body and "1 foto" in body
        assert "balas surel ini dengan perbaikannya" in body
        assert "Balas dengan angka" not in body  # no question at all
        assert str(first["From"]).endswith(f"<{CITY}>") and str(first["To"]) == PLANTED.email
        assert str(first["Auto-Submitted"]) == "auto-replied"
        assert first.get_body(preferencelist=("html",)) is not None
        token = token_of(first)
        tracking = sink.wait_for(lambda m: "tercatat dengan nomor" in text_of(m))
        assert token_of(tracking) == token
        assert str(first["Message-ID"]) in str(tracking["References"])
        store = SandboxStore(tmp_path / "var" / "crm-sandbox.sqlite3")
        [req] = store.list_requests()
        store.add_update(req.id, "in_progress", "Truk dijadwalkan besok pagi")
        update = sink.wait_for(lambda m: "Truk dijadwalkan" in text_of(m))
        assert token_of(update) == token
        assert str(sent["Message-ID"]) in str(update["References"])
        assert dovecot.unseen() == []  # confirmed only after it was recorded
        assert run.stop() == 0
    finally:
        run.close()
    description = req.description
    for value in (PLANTED.name, PLANTED.phone, PLANTED.email, "Siti", "Rahmawati"):
        assert value not in description
    assert "Jl. Kebon Pala" in description or "Kebon Pala" in (req.address or "")
    assert store.personal_fields_received == 0
    assert_clean(run.log.read_text())


@pytest.mark.timeout(240)
def test_a_letter_without_an_address_is_completed_by_one_reply_in_the_thread(
    dovecot: Dovecot, sink: SmtpSink, redis_url: str, tmp_path: Path
) -> None:
    run = KanalRun(tmp_path, **email_env(dovecot.port, sink.port, redis_url))
    try:
        sent = letter(
            "warga.senen@contoh.co.id",
            "Lampu jalan mati",
            "Yth. Bapak/Ibu,\n\nLampu penerangan jalan di depan halte sudah mati sepekan, "
            "jalan jadi gelap dan rawan jambret.\n\nTerima kasih.",
            photos=1,
        )
        dovecot.append(sent)
        ask = sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(sent["Message-ID"]))
        assert "alamat" in text_of(ask).lower()
        answer = letter(
            "warga.senen@contoh.co.id",
            str(ask["Subject"]),
            "Lokasinya di Jl. Salemba Raya depan halte Salemba UI, Kelurahan Kenari, "
            "Kecamatan Senen.\n\n"
            f"Pada Sen, 3 Mar 2025 pukul 08.20 Layanan <{CITY}> menulis:\n> {text_of(ask)[:60]}",
            reply_to=ask,
        )
        dovecot.append(answer)
        filed = sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(answer["Message-ID"]))
        assert "Ringkasan laporan" in text_of(filed) and "Kenari" in text_of(filed)
        assert token_of(filed) == token_of(ask)
        sink.wait_for(lambda m: "tercatat dengan nomor" in text_of(m))
        assert run.stop() == 0
    finally:
        run.close()
    [req] = SandboxStore(tmp_path / "var" / "crm-sandbox.sqlite3").list_requests()
    assert "Lampu penerangan" in req.description
    assert_clean(run.log.read_text())


def dsn(original: EmailMessage) -> bytes:
    """A delivery status notification (RFC 3464) about one of our replies, as a mailer daemon
    sends it: multipart/report with the status and the returned message's headers."""
    return (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.contoh.co.id>\r\n"
        f"To: {CITY}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.contoh.co.id')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system. Your message could not be delivered.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.contoh.co.id\r\n\r\nFinal-Recipient: rfc822; x@contoh.co.id\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original['Message-ID']}\r\nSubject: {original['Subject']}\r\n"
        "\r\n--b1--\r\n"
    ).encode()


@pytest.mark.timeout(240)
async def test_auto_replies_lists_and_bounces_are_never_answered_and_a_storm_is_capped(
    dovecot: Dovecot, sink: SmtpSink, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    run = KanalRun(
        tmp_path, **email_env(dovecot.port, sink.port, redis_url, EMAIL_REPLIES_PER_HOUR="3")
    )
    storm = "robot@contoh.co.id"
    try:
        first = letter("ani@contoh.co.id", "Got mampet", "Got mampet di Jl. Tebet Raya, banjir.")
        dovecot.append(first)
        reply = sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(first["Message-ID"]))
        for i in range(5):  # an out-of-office that answers our answers
            dovecot.append(
                letter(
                    "ani@contoh.co.id",
                    f"Out of office {i}",
                    "Saya sedang cuti.",
                    Auto_Submitted="auto-replied",
                )
            )
        dovecot.append(letter("noreply@bank.example", "Promo", "Promo kartu kredit"))
        dovecot.append(letter("x@list.example", "Milis", "Diskusi warga", List_Id="<warga.list>"))
        dovecot.append(letter("bulk@promo.example", "Iklan", "Iklan", Precedence="bulk"))
        dovecot.append(letter(CITY, "Dari kami sendiri", "loop"))
        dovecot.append(dsn(reply))
        for i in range(8):  # a sender that writes in a loop without the headers that say so
            dovecot.append(letter(storm, f"Keluhan {i}", f"Jalan rusak nomor {i} di Jl. Bekasi"))
        wait_seen(dovecot, 60)
        time.sleep(2.0)  # would anything else go out?
        assert run.stop() == 0
    finally:
        run.close()
    to = [str(m["To"]) for m in sink.received]
    assert to.count("ani@contoh.co.id") == 1  # the first letter only
    assert to.count(storm) == 3  # EMAIL_REPLIES_PER_HOUR
    assert not {"noreply@bank.example", "x@list.example", "bulk@promo.example", CITY} & set(to)
    conv = Keyring([SECRET]).pseudonym("email", "ani@contoh.co.id")
    dead = await redis.xrange(streams.dead_letters("email"))
    assert any(f["conv"] == conv and f["reason"] == "bounced" for _, f in dead)
    assert await redis.get(streams.unreachable_key(conv))
    logs = run.log.read_text()
    assert '"event": "email_storm"' in logs and '"event": "email_bounced"' in logs
    assert_clean(logs)


def bots_email(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "bots.email"],
            cwd=REPO,
            env=clean_env(**env),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@pytest.mark.timeout(180)
async def test_a_worker_killed_between_recording_a_mail_and_marking_it_seen_answers_it_once(
    dovecot: Dovecot, sink: SmtpSink, redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    """``python -m bots.email`` through a proxy that SIGKILLs it the moment it sends the STORE
    that marks the mail \\Seen: the turn is recorded, the mail still unseen. The next worker
    gets it again; it is a duplicate: answered once, in all."""
    log = tmp_path / "worker.log"
    env = email_env(
        0,
        sink.port,
        redis_url,
        KANAL_DATA_DIR=str(tmp_path / "var"),
        KANAL_HTTP_PORT=str(free_port()),
    )
    with ImapProxy(dovecot.port) as proxy:
        env["EMAIL_IMAP_PORT"] = str(proxy.port)
        sent = letter(
            "budi@contoh.co.id",
            "Jalan berlubang",
            "Jalan berlubang besar di Jl. "
            "Pramuka depan pasar, Kelurahan Utan Kayu Utara, Kecamatan Matraman.",
            photos=1,
        )
        dovecot.append(sent)
        proxy.kill_on = b"STORE"
        first = bots_email(env, log)
        proxy.victim = first.pid
        assert proxy.killed.wait(60), "the worker never marked the mail"
        assert first.wait(timeout=10) == -signal.SIGKILL
        assert dovecot.unseen() != []
        env["KANAL_HTTP_PORT"] = str(free_port())
        second = bots_email(env, log)
        try:
            wait_seen(dovecot, 60)
            sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(sent["Message-ID"]))
            time.sleep(2.0)
        finally:
            assert stop(second) == 0
    answers = [m for m in sink.received if str(m["In-Reply-To"]) == str(sent["Message-ID"])]
    assert len(answers) == 1
    assert await redis.xlen(streams.COMPLAINTS) == 1
    logs = log.read_text()
    assert '"event": "inbound_duplicate"' in logs
    assert_clean(logs)


@pytest.mark.timeout(180)
def test_a_cut_in_the_middle_of_idle_reconnects_and_loses_no_mail(
    dovecot: Dovecot, sink: SmtpSink, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    env = email_env(
        0,
        sink.port,
        redis_url,
        KANAL_DATA_DIR=str(tmp_path / "var"),
        KANAL_HTTP_PORT=str(free_port()),
        EMAIL_IDLE_S="30",
    )
    with ImapProxy(dovecot.port) as proxy:
        env["EMAIL_IMAP_PORT"] = str(proxy.port)
        worker = bots_email(env, log)
        try:
            before = letter("a@contoh.co.id", "Pohon tumbang", "Pohon tumbang di Jl. Cikini Raya")
            dovecot.append(before)
            sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(before["Message-ID"]))
            deadline = time.monotonic() + 10
            while not any(b"IDLE" in d for d in proxy.seen[-3:]) and time.monotonic() < deadline:
                time.sleep(0.1)
            proxy.cut()  # in the middle of IDLE
            after = letter("b@contoh.co.id", "Banjir", "Banjir 40 cm di Jl. Kemang Raya")
            dovecot.append(after)
            sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(after["Message-ID"]), 60)
        finally:
            assert stop(worker) == 0
    assert dovecot.unseen() == []
    assert '"event": "part_failing"' in log.read_text()
    assert_clean(log.read_text())


@pytest.mark.timeout(180)
def test_a_dead_smtp_server_delays_replies_and_loses_none(
    dovecot: Dovecot, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    port = free_port()  # nothing listens there yet
    env = email_env(
        dovecot.port,
        port,
        redis_url,
        KANAL_DATA_DIR=str(tmp_path / "var"),
        KANAL_HTTP_PORT=str(free_port()),
    )
    worker = bots_email(env, log)
    try:
        sent = letter("c@contoh.co.id", "Parkir liar", "Parkir liar di Jl. Sabang tiap malam")
        dovecot.append(sent)
        wait_seen(dovecot, 30)  # recorded, though nothing could be sent
        time.sleep(1.5)
        sink = SmtpSink(port=port)
        from aiosmtpd.controller import Controller

        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(sent["Message-ID"]), 60)
        finally:
            controller.stop()
    finally:
        assert stop(worker) == 0
    assert '"event": "outbox_send_retry"' in log.read_text()
    assert_clean(log.read_text())


@pytest.mark.timeout(240)
def test_replies_through_a_real_mta_land_in_the_citizens_mailbox_in_one_thread(
    dovecot: Dovecot, redis_url: str, tmp_path: Path
) -> None:
    """SMTP to OpenSMTPD, which delivers into the citizen's Dovecot mailbox: the answer and the
    tracking number are there, threaded under the citizen's own letter."""
    citizen = "warga@contoh.co.id"
    with opensmtpd(dovecot.maildir(CITIZEN)) as mta:
        run = KanalRun(tmp_path, **email_env(dovecot.port, mta, redis_url))
        try:
            sent = letter(citizen, "Sampah menumpuk di Jl. Kebon Pala", COMPLETE, photos=1)
            dovecot.append(sent)
            deadline = time.monotonic() + 90
            got: list[EmailMessage] = []
            while time.monotonic() < deadline:
                got = dovecot.messages(user=CITIZEN)
                if any("tercatat dengan nomor" in text_of(m) for m in got):
                    break
                time.sleep(0.5)
            assert run.stop() == 0
        finally:
            run.close()
    assert len(got) == 2, [m["Subject"] for m in got]
    [answer] = [m for m in got if "Ringkasan laporan" in text_of(m)]
    [tracking] = [m for m in got if "tercatat dengan nomor" in text_of(m)]
    assert str(answer["In-Reply-To"]) == str(sent["Message-ID"])
    assert str(tracking["In-Reply-To"]) == str(answer["Message-ID"])
    assert str(sent["Message-ID"]) in str(tracking["References"])
    assert token_of(answer) == token_of(tracking)
    assert str(answer["Auto-Submitted"]) == "auto-replied"


@pytest.mark.timeout(180)
async def test_without_idle_the_inbox_is_polled_and_refused_or_oversized_mail_handled(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    """A server without IDLE is polled. A letter over EMAIL_MAX_MB gets one polite answer,
    unread; a recipient the SMTP server refuses for good (5xx) goes to the dead letters once."""
    log = tmp_path / "worker.log"
    with dovecot_server(idle=False) as dovecot, smtp_sink() as sink:
        env = email_env(
            dovecot.port,
            sink.port,
            redis_url,
            KANAL_DATA_DIR=str(tmp_path / "var"),
            KANAL_HTTP_PORT=str(free_port()),
            EMAIL_POLL_S="0.5",
            EMAIL_MAX_MB="0.1",
        )
        worker = bots_email(env, log)
        try:
            big = letter("besar@contoh.co.id", "Foto banjir", "Banjir di Jl. Tebet", photos=3)
            dovecot.append(big)
            answer = sink.wait_for(lambda m: str(m["In-Reply-To"]) == str(big["Message-ID"]))
            assert "melebihi batas ukuran" in text_of(answer)
            sink.refuse_with = (550, "5.1.1 No such user")
            gone = letter("hilang@contoh.co.id", "Got mampet", "Got mampet di Jl. Tebet Raya")
            dovecot.append(gone)
            wait_seen(dovecot, 30)
            deadline = time.monotonic() + 30
            while not await redis.xlen(streams.dead_letters("email")):
                assert time.monotonic() < deadline, "no dead letter"
                time.sleep(0.2)
        finally:
            assert stop(worker) == 0
    [(_, entry)] = await redis.xrange(streams.dead_letters("email"))
    assert entry["reason"] == "smtp_5xx"
    conv = Keyring([SECRET]).pseudonym("email", "hilang@contoh.co.id")
    assert await redis.get(streams.unreachable_key(conv))
    logs = log.read_text()
    assert '"event": "email_too_large"' in logs
    assert_clean(logs)
