"""SMS adapter: a Kannel MO request in, :class:`Inbound` out. Pure: no I/O, no clock.

- The sender (Kannel's ``%p``) becomes E.164 with ``phonenumbers``: ``0812…``, ``62812…`` and
  ``+62812…`` are one citizen, one conversation. A sender that is no phone number (an operator's
  alphanumeric notice) is not for us.
- Keywords work in any case, as the first word, with the usual slips of the thumb: ``LAPOR``
  (``LPR``, ``LAPORT``…), ``CEK <nomor>`` (``CEK2400001``, ``CHECK``…), ``BATAL``, ``BANTUAN``
  (``HELP``, ``INFO``…). They become the engine's commands (``/lapor``, ``/cek``…).
- A reply of a menu's short word ("sampah", "kirim") picks that choice, like its number does.
- The body's bytes are decoded with the charset Kannel declares (UTF-8 with ``mo-recode``,
  UTF-16BE for UCS-2 without it); undecodable bytes never crash the worker.

Rendering lives in :mod:`bots.sms.render`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from rapidfuzz.distance import DamerauLevenshtein

from bots.sms.catalog import short_choice
from kanal.messages import Inbound

CHANNEL = "sms"
MAX_TEXT = 4000  # a concatenated SMS is at most 255 parts; Kannel's default is far less

_SEPARATORS = re.compile(r"[\s\-().]")
_BARE_62 = re.compile(r"62\d{8,13}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FIRST = re.compile(r"^\s*([A-Za-z?]+)(\d{5,10})?[\s.,:;!]*(.*)$", re.S)
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]+)", re.I)

# Keyword -> the engine's command. Explicit slips first; LAPOR and BANTUAN also forgive one
# slip of any kind (Damerau-Levenshtein 1), other words being too short to guess safely.
KEYWORDS: dict[str, str] = {
    **dict.fromkeys(
        ("lapor", "lpr", "lapr", "lpor", "laport", "lapot", "laporr", "lapoor", "laporkan"),
        "lapor",
    ),
    **dict.fromkeys(
        ("cek", "cekk", "ceck", "chek", "check", "cheq", "cex", "status", "cekstatus"), "cek"
    ),
    **dict.fromkeys(
        ("batal", "btl", "batl", "btal", "batall", "baatal", "batalkan", "cancel"), "batal"
    ),
    **dict.fromkeys(
        ("bantuan", "bantu", "bntuan", "bantuam", "bantuab", "bamtuan", "help", "info", "?"),
        "bantuan",
    ),
}
_FUZZY = ("lapor", "bantuan")
_NOT_KEYWORDS = frozenset({"lapar", "lampor", "antuan", "bantal"})


@dataclass(frozen=True)
class MoRequest:
    """One mobile-originated SMS as Kannel's ``sms-service`` passes it (``%p %P %I %t``)."""

    sender: str
    receiver: str
    message_id: str
    text: str
    ts: str = ""


def e164(raw: str, region: str = "ID") -> str | None:
    """``+6281234567890`` for 0812-3456-7890, 6281234567890 or +62 812 3456 7890; else None."""
    digits = _SEPARATORS.sub("", raw or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif _BARE_62.fullmatch(digits):
        digits = "+" + digits
    if not digits or not re.fullmatch(r"\+?\d{4,16}", digits):
        return None
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def decode_body(body: bytes, content_type: str = "", coding: str = "") -> str:
    """The message text from a ``post-url`` body, whatever Kannel's coding was."""
    m = _CHARSET.search(content_type or "")
    charsets = [m.group(1)] if m else []
    if coding == "2" and not m:
        charsets.append("utf-16-be")
    charsets += ["utf-8", "cp1252"]
    for charset in charsets:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", "replace")  # pragma: no cover  (cp1252 decodes nearly all)


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text).strip()[:MAX_TEXT]


def keyword(word: str) -> str | None:
    """The keyword a first word means, if any."""
    w = word.lower()
    if w in KEYWORDS:
        return KEYWORDS[w]
    if len(w) < 5 or w in _NOT_KEYWORDS:
        return None
    for kw in _FUZZY:
        if DamerauLevenshtein.distance(w, kw, score_cutoff=1) <= 1:
            return kw
    return None


def as_command(text: str) -> str:
    """``LAPOR jalan rusak`` → ``/lapor jalan rusak``; ``cek2400001`` → ``/cek 2400001``."""
    m = _FIRST.match(text)
    if not m:
        return text
    kw = keyword(m.group(1))
    if kw is None:
        return text
    number, rest = m.group(2) or "", m.group(3).strip()
    if number and kw != "cek":
        return text  # "lapor123": not a keyword
    arg = " ".join(x for x in (number, rest) if x)
    if kw == "lapor":
        return f"/lapor {arg}" if arg else "/start"
    if kw == "cek":
        return f"/cek {arg}".strip()
    return f"/{kw}"


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w/]+", " ", text.casefold()).split())


def pick(text: str, choices: Sequence[str]) -> str | None:
    """The number of the choice a short word names ("sampah" → "1"), if one does."""
    said = _words(text)
    if not said or len(said.split()) > 4 or said.isdigit():
        return None
    for i, choice in enumerate(choices, 1):
        if said in (_words(short_choice(choice)), _words(choice)):
            return str(i)
    return None


def event_id(raw: MoRequest, number: str) -> str:
    """Kannel's message id; without one, a hash of what identifies the message."""
    if raw.message_id.strip():
        return raw.message_id.strip()[:100]
    digest = hashlib.sha256(f"{number}\n{raw.ts}\n{raw.text}".encode()).hexdigest()
    return "h-" + digest[:32]


def parse(raw: MoRequest, *, choices: Sequence[str] = ()) -> Inbound | None:
    """The MO as the engine reads it (``choices``: the menu the citizen is answering)."""
    number = e164(raw.sender)
    if number is None:
        return None
    text = clean_text(raw.text)
    picked = pick(text, choices)
    text = picked if picked is not None else as_command(text)
    return Inbound(channel=CHANNEL, user_id=number, event_id=event_id(raw, number), text=text)


__all__ = [
    "CHANNEL",
    "KEYWORDS",
    "MoRequest",
    "as_command",
    "clean_text",
    "decode_body",
    "e164",
    "event_id",
    "keyword",
    "parse",
    "pick",
]
