"""A real Kannel (Debian's bearerbox + smsbox) for the SMS tests, and the fake SMSC played over TCP.

Kannel's ``smsc = fake`` listens on a port; whoever connects is the SMSC. :class:`FakeSmsc`
writes mobile-originated lines (``<from> <to> text <msg>``, ``ucs2 <url-encoded UTF-16BE>``,
``udh <udh> <data>`` for one part of a concatenated SMS) and reads what Kannel sends out:
``<from> <to> text|data|ucs-2|udh …`` lines, joined again by their concatenation header.

Start order matters: bearerbox first, smsbox once bearerbox's box port listens; MO only once
``status.txt`` shows the smsbox on-line and the SMSC connected. Stop: smsbox first, then SIGTERM
bearerbox (twice, if it lingers).
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers import free_port

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
USER, PASSWORD = "kanal", "sandi-uji"
DENIED_PREFIX = "+62899"  # a prefix the fake SMSC refuses: "Not routable", DLR 16


@dataclass(frozen=True)
class Mt:
    """One mobile-terminated SMS as the handset would show it (parts joined)."""

    sender: str
    receiver: str
    text: str
    parts: int
    ucs2: bool


def _config(
    tmp: Path, ports: dict[str, int], inbound_url: str, *, throughput: float | None = None
) -> str:
    smsc_extra = f"throughput = {throughput}\n" if throughput else ""
    return f"""
group = core
admin-port = {ports["admin"]}
admin-password = adm-uji
status-password = status-uji
admin-interface = 127.0.0.1
admin-allow-ip = 127.0.0.1
smsbox-port = {ports["box"]}
box-allow-ip = 127.0.0.1
log-file = "{tmp}/bearerbox.log"
log-level = 1
access-log = "{tmp}/access.log"
dlr-storage = internal
store-type = file
store-location = "{tmp}/store"
sms-combine-concatenated-mo = true

group = smsc
smsc = fake
smsc-id = fake
port = {ports["smsc"]}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1
denied-prefix = "{DENIED_PREFIX}"
{smsc_extra}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports["box"]}
sendsms-port = {ports["sendsms"]}
sendsms-interface = 127.0.0.1
log-file = "{tmp}/smsbox.log"
log-level = 1
access-log = "{tmp}/smsbox-access.log"
mo-recode = true
http-request-retry = 5
http-queue-delay = 1

group = sendsms-user
username = {USER}
password = {PASSWORD}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
post-url = "{inbound_url}&from=%p&to=%P&id=%I&ts=%t&coding=%c"
"""


@dataclass
class KannelPeer:
    tmp: Path
    inbound_url: str
    throughput: float | None = None
    ports: dict[str, int] = field(
        default_factory=lambda: {k: free_port() for k in ("admin", "box", "smsc", "sendsms")}
    )
    bearerbox: subprocess.Popen[bytes] | None = None
    smsbox: subprocess.Popen[bytes] | None = None

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms']}/cgi-bin/sendsms"

    @property
    def conf(self) -> Path:
        return self.tmp / "kannel.conf"

    def start(self) -> None:
        self.conf.write_text(
            _config(self.tmp, self.ports, self.inbound_url, throughput=self.throughput)
        )
        self.bearerbox = subprocess.Popen(
            [BEARERBOX, str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.ports["box"], self.bearerbox)
        self.start_smsbox()

    def start_smsbox(self) -> None:
        self.smsbox = subprocess.Popen(
            [SMSBOX, str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.ports["sendsms"], self.smsbox)
        self.wait_status("smsbox:", "on-line")

    def stop_smsbox(self) -> None:
        if self.smsbox is not None and self.smsbox.poll() is None:
            self.smsbox.terminate()
            try:
                self.smsbox.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.smsbox.kill()
                self.smsbox.wait()
        self.smsbox = None

    def stop(self) -> None:
        self.stop_smsbox()
        box = self.bearerbox
        if box is not None and box.poll() is None:
            box.send_signal(signal.SIGTERM)
            try:
                box.wait(timeout=10)
            except subprocess.TimeoutExpired:
                box.send_signal(signal.SIGTERM)
                try:
                    box.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    box.kill()
                    box.wait()
        self.bearerbox = None

    def status(self) -> str:
        r = httpx.get(
            f"http://127.0.0.1:{self.ports['admin']}/status.txt",
            params={"password": "status-uji"},
            timeout=5,
        )
        return r.text

    def wait_status(self, *needles: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                text = self.status()
                lines = text.splitlines()
                if any(all(n in line for n in needles) for line in lines):
                    return
            time.sleep(0.1)
        raise AssertionError(f"kannel status never showed {needles}:\n{text}")

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("*.log")) if p.is_file()
        )


_START = re.compile(rb"^\S+ \S+ (?:text|data|ucs-2|udh|route) ")


def _unquote(raw: bytes) -> bytes:
    """Kannel's URL encoding: ``+`` for a space, ``%XX`` for other bytes."""
    return urllib.parse.unquote_to_bytes(raw.decode("ascii").replace("+", " "))


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kannel box exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"kannel port {port} never opened")


@contextlib.contextmanager
def kannel(tmp: Path, inbound_url: str, *, throughput: float | None = None) -> Iterator[KannelPeer]:
    if not (Path(BEARERBOX).exists() and Path(SMSBOX).exists() and shutil.which("true")):
        raise RuntimeError("Kannel is not installed: run `make peers`")
    tmp.mkdir(parents=True, exist_ok=True)
    peer = KannelPeer(tmp, inbound_url, throughput=throughput)
    try:
        peer.start()
        yield peer
    finally:
        peer.stop()


class FakeSmsc:
    """The SMSC end of Kannel's fake SMSC connection."""

    def __init__(self, peer: KannelPeer) -> None:
        self.peer = peer
        self.sock = socket.create_connection(("127.0.0.1", peer.ports["smsc"]), timeout=10)
        self.sock.settimeout(None)
        self.out: queue.Queue[Mt] = queue.Queue()
        self.lines: list[bytes] = []
        self._parts: dict[tuple[str, str, int], dict[int, tuple[bytes, bool]]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        peer.wait_status("fake", "online")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    # ---- MO ---------------------------------------------------------------------------------
    def mo(self, sender: str, text: str, to: str = "1708") -> None:
        if all(32 <= ord(c) < 127 for c in text):
            line = f"{sender} {to} text {text}\n".encode()
        else:
            data = urllib.parse.quote_from_bytes(text.encode("utf-16-be"))
            line = f"{sender} {to} ucs2 {data}\n".encode()
        self.sock.sendall(line)

    def mo_parts(self, sender: str, parts: list[str], ref: int = 7, to: str = "1708") -> None:
        """One concatenated SMS, part by part (8-bit reference UDH), as a handset sends it."""
        for seq, text in enumerate(parts, 1):
            udh = bytes([5, 0, 3, ref, len(parts), seq])
            line = (
                f"{sender} {to} udh {urllib.parse.quote_from_bytes(udh)} "
                f"{urllib.parse.quote_from_bytes(text.encode('ascii'))}\n"
            )
            self.sock.sendall(line.encode())

    # ---- MT ---------------------------------------------------------------------------------
    def _read(self) -> None:
        # Kannel writes a "text" message as it is, newlines and all: a line that does not start
        # a message continues the one before, which goes out once the next one starts or the
        # line stays quiet for a moment.
        self.sock.settimeout(0.3)
        pending: bytes | None = None
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                if pending is not None and not buf:
                    self._line(pending)
                    pending = None
                continue
            except OSError:
                return
            if not chunk:
                if pending is not None:
                    self._line(pending)
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line)
                if _START.match(line) or pending is None:
                    if pending is not None:
                        self._line(pending)
                    pending = line
                else:
                    pending += b"\n" + line

    def _line(self, line: bytes) -> None:
        sender, receiver, kind, rest = line.split(b" ", 3)
        s, r = sender.decode(), receiver.decode()
        if kind == b"udh":
            udh_raw, data_raw = rest.split(b" ", 1)
            udh = _unquote(udh_raw)
            data = _unquote(data_raw.split(b" ", 1)[-1])
            ref, total, seq = udh[3], udh[4], udh[5]
            parts = self._parts.setdefault((s, r, ref), {})
            parts[seq] = (data, False)
            if len(parts) == total:
                joined = b"".join(parts[i][0] for i in range(1, total + 1))
                del self._parts[(s, r, ref)]
                ucs2 = b"\x00" in joined  # GSM-7/UTF-8 text never holds a NUL; UCS-2 does
                text = joined.decode("utf-16-be") if ucs2 else joined.decode("utf-8")
                self.out.put(Mt(s, r, text, total, ucs2))
            return
        if kind == b"ucs-2":
            self.out.put(Mt(s, r, _unquote(rest).decode("utf-16-be"), 1, True))
        elif kind == b"data":
            self.out.put(Mt(s, r, _unquote(rest).decode("utf-8"), 1, False))
        else:
            self.out.put(Mt(s, r, rest.decode("utf-8"), 1, False))

    def next_mt(self, timeout: float = 15) -> Mt:
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no SMS came out of Kannel") from None

    def drain(self) -> list[Mt]:
        got = []
        while True:
            try:
                got.append(self.out.get_nowait())
            except queue.Empty:
                return got


__all__ = ["DENIED_PREFIX", "PASSWORD", "USER", "FakeSmsc", "KannelPeer", "Mt", "kannel"]
