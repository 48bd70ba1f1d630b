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
# A name is 1-4 capitalised words (or a lower-case run in chat) after an introduction.
_NAME_WORD = r"[A-Z][a-zA-Z'.]+"
_INTRO = re.compile(
    r"(?P<lead>\b(?:nama\s+saya|namaku|nama\s+aku|perkenalkan,?\s+(?:saya|nama\s+saya)|"
    r"saya\s+bernama|dengan\s+(?:bapak|ibu|bu|pak|sdr\.?|saudara)|hormat\s+saya,?|salam,?|"
    r"terima\s+kasih,?|regards,?|best\s+regards,?|ttd,?|pelapor\s*:|nama\s*:)\s*[\r\n]*\s*)"
    r"(?P<name>(?:(?:Bapak|Ibu|Bu|Pak|Sdr\.?|Saudara|Mas|Mbak)\s+)?"
    rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}})",
    re.IGNORECASE,
)
_SAYA_NAME = re.compile(
    rf"(?P<lead>\b[Ss]aya\s+)(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}})"
    r"(?=\s*,\s*(?:warga|penghuni|tinggal|dari|RT|rt|yang))"
)
_NOT_NAMES = frozenset(
    {"warga", "mau", "ingin", "sudah", "ada", "tinggal", "yang", "dari", "di", "melaporkan"}
)


def _names(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        first = m.group("name").split()[0].lower()
        if first in _NOT_NAMES:
            return m.group(0)
        return m.group("lead") + NAME

    text = _INTRO.sub(sub, text)
    return _SAYA_NAME.sub(sub, text)


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
