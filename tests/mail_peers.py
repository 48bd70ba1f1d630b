"""Real mail peers for the tests: Dovecot (IMAP in), an aiosmtpd sink and OpenSMTPD (mail out),
and a TCP proxy in front of Dovecot that can cut the line or kill the worker on a command.

Dovecot runs from its own config file in a temp dir (``../shared/PEERS.md``): plaintext on a
free port of 127.0.0.1, one passwd-file user, maildirs owned by ``nobody``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

from tests.peers import free_port

USER = "dki"
PASSWORD = "rahasia-imap"
CITIZEN = "warga"  # a citizen's own mailbox on the same Dovecot, for mail a real MTA delivers
NOBODY = 65534


@dataclass
class Dovecot:
    port: int
    root: Path
    conf: Path

    def client(self, user: str = USER) -> IMAPClient:
        c = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        c.login(user, PASSWORD)
        c.select_folder("INBOX")
        return c

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user

    def append(self, raw: bytes | EmailMessage, folder: str = "INBOX") -> None:
        data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
        c = self.client()
        try:
            c.append(folder, data)
        finally:
            c.logout()

    def flags(self) -> dict[int, tuple[bytes, ...]]:
        c = self.client()
        try:
            uids = c.search(["ALL"])
            return {uid: tuple(v[b"FLAGS"]) for uid, v in c.fetch(uids, ["FLAGS"]).items()}
        finally:
            c.logout()

    def unseen(self) -> list[int]:
        c = self.client()
        try:
            return list(c.search(["UNSEEN"]))
        finally:
            c.logout()

    def messages(self, folder: str = "INBOX", user: str = USER) -> list[EmailMessage]:
        c = self.client(user)
        try:
            c.select_folder(folder)
            uids = c.search(["ALL"])
            got = c.fetch(uids, ["BODY.PEEK[]"])
            parser = BytesParser(policy=policy.default)
            return [parser.parsebytes(got[u][b"BODY[]"]) for u in sorted(got)]  # type: ignore[misc]
        finally:
            c.logout()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def dovecot_server(*, idle: bool = True) -> Iterator[Dovecot]:
    """Dovecot; ``idle=False`` hides IDLE from its capabilities (a server without it)."""
    binary = shutil.which("dovecot")
    if binary is None:
        raise RuntimeError("dovecot is not installed: run `make peers`")
    root = Path(tempfile.mkdtemp(prefix="kanal-dovecot-"))
    port = free_port()
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, NOBODY, NOBODY)
    os.chmod(root, 0o755)
    (root / "passwd").write_text(
        "".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in (USER, CITIZEN))
    )
    conf = root / "dovecot.conf"
    conf.write_text(
        f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
{"" if idle else "imap_capability = IMAP4rev1 UIDPLUS MOVE LITERAL+"}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""
    )
    subprocess.run([binary, "-c", str(conf)], check=True)
    server = Dovecot(port=port, root=root, conf=conf)
    deadline = time.monotonic() + 15
    while True:
        try:
            server.client().logout()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield server
    finally:
        subprocess.run([binary, "-c", str(conf), "stop"], check=False)
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SmtpSink:
    """An in-process SMTP server (aiosmtpd) that keeps what it is sent; it can refuse."""

    port: int = 0
    received: list[EmailMessage] = field(default_factory=list)
    refuse_with: tuple[int, str] | None = None  # e.g. (451, "try later") or (550, "no user")
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.attempts += 1
        if self.refuse_with is not None:
            code, text = self.refuse_with
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = BytesParser(policy=policy.default).parsebytes(envelope.original_content or b"")
        with self._lock:
            self.received.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted"

    def wait_for(self, pred: Callable[[EmailMessage], bool], timeout: float = 60.0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for msg in self.received:
                    if pred(msg):
                        return msg
            time.sleep(0.1)
        raise AssertionError(f"no such mail came; got {[m['Subject'] for m in self.received]}")


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@contextmanager
def opensmtpd(maildir: Path) -> Iterator[int]:
    """A real MTA (OpenSMTPD, Debian's) on a free port that delivers every recipient into
    ``maildir`` (a catch-all virtual table): the citizen's mailbox, read back over IMAP."""
    binary = "/usr/sbin/smtpd"
    if not os.path.exists(binary):
        raise RuntimeError("opensmtpd is not installed: run `make peers`")
    root = Path(tempfile.mkdtemp(prefix="kanal-smtpd-"))
    port = free_port()
    maildir.mkdir(parents=True, exist_ok=True)
    os.chown(maildir, NOBODY, NOBODY)
    (root / "vusers").write_text("@ nobody\n")
    conf = root / "smtpd.conf"
    conf.write_text(
        f"table vusers file:{root}/vusers\n"
        f"listen on 127.0.0.1 port {port}\n"
        f'action "citizen" maildir "{maildir}" virtual <vusers>\n'
        'match from any for any action "citizen"\n'
    )
    conf.chmod(0o600)
    log = (root / "smtpd.log").open("w")
    proc = subprocess.Popen([binary, "-d", "-f", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "smtpd.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[union-attr]


class ImapProxy:
    """A TCP proxy to Dovecot that sees the client's commands: it can drop every connection
    (a network cut in the middle of IDLE) or SIGKILL a process the moment the client sends a
    command (the worker killed between recording a mail and marking it \\Seen)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.kill_on: bytes | None = None
        self.victim: int | None = None
        self.killed = threading.Event()
        self.seen: list[bytes] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> ImapProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()

    def cut(self) -> None:
        """Drop every open connection, as a dead NAT or a restarted server would."""
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)

    async def _cut(self) -> None:
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                self.seen.append(data)
                if self.kill_on and self.kill_on in data and self.victim:
                    os.kill(self.victim, signal.SIGKILL)
                    self.kill_on = None
                    self.killed.set()
                    writer.close()
                    up_writer.close()
                    return
                up_writer.write(data)
                await up_writer.drain()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(OSError, ConnectionError):
            await asyncio.gather(client_to_server(), server_to_client())
        for w in (writer, up_writer):
            w.close()


__all__ = [
    "CITIZEN",
    "PASSWORD",
    "USER",
    "Dovecot",
    "ImapProxy",
    "SmtpSink",
    "dovecot_server",
    "opensmtpd",
    "smtp_sink",
]
