"""Scrub personal data from free text before it leaves Kanal.

Phone numbers (Indonesian formats, found with ``phonenumbers``), e-mail addresses, 16-digit NIK,
@handles and the names people introduce or sign themselves with become placeholders. What
describes the problem stays: a car's plate number, a street name, an RT/RW.
"""

from __future__ import annotations

import re

import phonenumbers

PHONE = "[nomor telepon]"
EMAIL = "[email]"
NIK = "[NIK]"
HANDLE = "[akun]"
NAME = "[nama]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NIK = re.compile(r"(?<!\d)\d{16}(?!\d)")
# Indonesian mobiles that phonenumbers misses without a "+": 62812..., 0812...
_MOBILE = re.compile(r"(?<![\d])(?:\+?62|0)[\s.-]?8\d(?:[\s.-]?\d){6,11}(?!\d)")
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{2,30}\b")
# Introductions ("nama saya budi") take the next 1-3 words, whatever their case; signatures
# ("Hormat saya,\nAgus Wijaya") and "saya Budi Santoso, warga ..." only capitalised ones.
# A name ends at a word that starts the story (dari, warga, di, ...).
_STRONG_LEAD = re.compile(
    r"\b(?:nama\s+saya|namaku|nama\s+aku|nama\s+gue|saya\s+bernama|perkenalkan,?\s+"
    r"(?:saya|nama\s+saya)|pelapor\s*:|nama\s*:|dengan\s+(?:bapak|ibu|sdr\.?|saudara))\s*",
    re.IGNORECASE,
)
_WEAK_LEAD = re.compile(
    r"\b(?:hormat\s+(?:saya|kami)|salam|terima\s+kasih|regards|best\s+regards|ttd|wassalam)"
    r"\s*[,.]?[ \t]*\n\s*",
    re.IGNORECASE,
)
_SAYA_NAME = re.compile(
    r"\b[Ss]aya\s+(?=[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,3}\s*,\s*(?:warga|penghuni|tinggal|dari|RT))"
)
_WORD = re.compile(r"(?:(?:Bapak|Ibu|Bu|Pak|Mas|Mbak|Sdr\.?)\s+)?[A-Za-z][A-Za-z'.-]*")
_STOP = frozenset(
    [
        "warga",
        "penghuni",
        "tinggal",
        "dari",
        "di",
        "yang",
        "mau",
        "ingin",
        "sudah",
        "ada",
        "melaporkan",
        "lapor",
        "dan",
        "rt",
        "rw",
        "jl",
        "jalan",
        "gang",
        "gg",
        "kel",
        "kec",
        "no",
        "nomor",
        "hendak",
        "min",
        "sampah",
        "banjir",
        "lampu",
        "mohon",
        "tolong",
        "selaku",
        "sebagai",
        "ingin",
        "mengadu",
    ]
)


def _take_name(text: str, start: int, *, capitalised: bool, max_words: int = 3) -> int:
    """End offset of the name starting at ``start`` (``start`` itself when there is none)."""
    end = pos = start
    for _ in range(max_words):
        m = _WORD.match(text, pos)
        if not m:
            break
        bare = m.group(0).split()[-1].rstrip(".")
        if bare.lower() in _STOP or (capitalised and not bare[:1].isupper()):
            break
        end = m.end()
        gap = re.match(r"[ \t]+", text[end:])
        if not gap:
            break
        pos = end + gap.end()
    return end


def _names(text: str) -> str:
    spans: list[tuple[int, int]] = []
    for lead, capitalised in ((_STRONG_LEAD, False), (_WEAK_LEAD, True), (_SAYA_NAME, True)):
        for m in lead.finditer(text):
            end = _take_name(text, m.end(), capitalised=capitalised)
            if end > m.end():
                spans.append((m.end(), end))
    for start, end in sorted(set(spans), reverse=True):
        text = text[:start] + NAME + text[end:]
    return text


def _phones(text: str) -> str:
    out, last = [], 0
    for match in phonenumbers.PhoneNumberMatcher(text, "ID", leniency=phonenumbers.Leniency.VALID):
        out.append(text[last : match.start])
        out.append(PHONE)
        last = match.end
    out.append(text[last:])
    return "".join(out)


def scrub(text: str) -> str:
    """Replace personal values with placeholders; idempotent."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _NIK.sub(NIK, text)
    text = _HANDLE.sub(HANDLE, text)
    text = _MOBILE.sub(PHONE, _phones(text))
    return _names(text)


__all__ = ["EMAIL", "HANDLE", "NAME", "NIK", "PHONE", "scrub"]
