"""What an SMS says: the short form of a message, its menu, its encoding and what it costs.

The engine and the bridge say things in their full form (:mod:`bots.core.prompts`,
:mod:`kanal.notices`), sometimes several sentences in one message ("Kategori: Sampah. Di mana
lokasinya? ..."). :func:`shorten` recognises each catalogue sentence in a message and puts its
short form (:mod:`bots.sms.catalog`) in its place, with the same values; words it does not
recognise (a citizen's own, an officer's note) stay as they are. Shortening a short text changes
nothing, so a message may pass through twice.

Encoding (:func:`encode`): GSM-7 when every character is in the GSM 03.38 alphabet. A character
outside it that has a GSM-7 look-alike (curly quotes, dashes, an ellipsis, odd spaces) is
transliterated; anything else (an emoji, a name with ``ú``) makes the whole SMS UCS-2, sent to
Kannel as ``coding=2`` with ``charset=utf-8``. A text is never garbled into question marks.
A text longer than one SMS is sent as one concatenated SMS; :attr:`Sms.segments` is what it
costs (153 GSM-7 septets or 67 UCS-2 units a part).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from string import Formatter

from bots.core.prompts import MESSAGES
from bots.core.render import sms_encoding, sms_segments, sms_units, strip_markup
from bots.sms.catalog import (
    FIELD_LIMITS,
    LITERALS,
    SHORT_MESSAGES,
    SHORT_NOTICES,
    short_choice,
)
from kanal.messages import Outbound
from kanal.notices import NOTICES

# Characters outside GSM 03.38 with a look-alike inside it.
LOOKALIKES: Mapping[str, str] = {
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "`": "'",
    "\u00b4": "'",
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",  # –
    "\u2014": "-",  # —
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",  # …
    "\u2022": "-",  # •
    "\u00b7": ".",
    "\u00d7": "x",
    "\u00a0": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\t": " ",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\ufeff": "",
}
_LOOKALIKE_TABLE = str.maketrans(dict(LOOKALIKES))


@dataclass(frozen=True)
class Sms:
    """One message as Kannel is asked to send it."""

    text: str
    encoding: str  # "gsm7" or "ucs2"
    segments: int
    units: int

    def params(self) -> dict[str, str]:
        """The ``sendsms`` parameters that say how the text is coded."""
        if self.encoding == "ucs2":
            return {"text": self.text, "coding": "2", "charset": "utf-8"}
        return {"text": self.text, "charset": "utf-8"}


def transliterate(text: str) -> str:
    """Typographic characters replaced by their GSM-7 look-alikes; letters are left alone."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    return text.translate(_LOOKALIKE_TABLE)


def encode(text: str) -> Sms:
    """The text as GSM-7 if it can be said in GSM-7 (after transliteration), else as UCS-2."""
    plain = transliterate(text)
    encoding = sms_encoding(plain)
    # Transliterating only helps when it makes the text GSM-7: a UCS-2 text keeps its quotes.
    final = plain if encoding == "gsm7" else unicodedata.normalize("NFC", text)
    return Sms(
        text=final,
        encoding=encoding,
        segments=len(sms_segments(final)),
        units=sms_units(final, encoding),
    )


# ---- menus -----------------------------------------------------------------------------------
def menu(choices: Sequence[str]) -> str:
    """``Balas 1 Ya, 2 Bukan``; a long list one choice a line, under the question."""
    if not choices:
        return ""
    labels = [short_choice(c) for c in choices]
    if len(labels) > 4:
        return "\n".join(f"{i} {c}" for i, c in enumerate(labels, 1))
    return "Balas " + ", ".join(f"{i} {c}" for i, c in enumerate(labels, 1))


# ---- shortening ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Piece:
    key: str
    pattern: re.Pattern[str]
    head: str  # the literal text before the first field: a cheap test before the regex
    fixed: int | None  # the length of a piece without fields
    short: str


def _template_regex(template: str) -> tuple[re.Pattern[str], str, bool]:
    out: list[str] = []
    seen: set[str] = set()
    head: str | None = None
    for literal, name, _, _ in Formatter().parse(template):
        if literal:
            out.append(re.escape(literal))
        if name is not None:
            if head is None:
                head = "".join(p for p, *_ in Formatter().parse(template.split("{", 1)[0]))
            out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
    return re.compile("".join(out), re.S), template if head is None else head, bool(seen)


@cache
def _pieces() -> tuple[_Piece, ...]:
    pieces: list[_Piece] = []
    catalogs = ((MESSAGES, SHORT_MESSAGES), (NOTICES, SHORT_NOTICES))
    for catalog, shorts in catalogs:
        for key, template in catalog.items():
            # Said with question="" and stripped; the question follows as a piece of its own.
            long = strip_markup(template.replace("{question}", "")).strip()
            pattern, head, has_fields = _template_regex(long)
            fixed = None if has_fields else len(long)
            pieces.append(_Piece(key, pattern, head, fixed, shorts[key].strip()))
    for literal in LITERALS:
        pieces.append(
            _Piece(literal, re.compile(re.escape(literal)), literal, len(literal), literal)
        )
    # Longest heads first: "Kabar laporan {x}: {y}." before "Laporan {x}: {y}.".
    pieces.sort(key=lambda pc: -len(pc.head))
    return tuple(pieces)


def _fit(name: str, value: str) -> str:
    value = value.strip()
    if name == "label":
        return short_choice(value)
    limit = FIELD_LIMITS.get(name)
    if limit and len(value) > limit:
        return value[: limit - 3].rstrip() + "..."
    return value


def shorten(text: str) -> str:
    """The message with every catalogue sentence in its short form (see the module doc)."""
    text = strip_markup(text).strip()
    if not text:
        return text
    parts = _segment(text)
    out = ""
    for part, free in parts:
        # Free words keep their own spacing; pieces are joined by one space.
        out += part if not out else (" " if free or not out.endswith("\n") else "") + part
    return out


def _segment(text: str) -> list[tuple[str, bool]]:
    """``text`` as catalogue pieces (short forms) and free words, fewest free characters first.

    Dynamic programming from the end: ``best[i]`` is the cheapest reading of ``text[i:]``.
    """
    n = len(text)
    best: dict[int, tuple[int, list[tuple[str, bool]]]] = {n: (0, [])}
    spaces = [j for j in range(n) if text[j].isspace()] + [n]
    for i in range(n - 1, -1, -1):
        if text[i].isspace() or (i > 0 and not text[i - 1].isspace()):
            continue
        word_end = next(j for j in spaces if j > i)
        cost, rest = best[_skip(text, word_end)]
        choice = (cost + word_end - i, [(text[i:word_end], True), *rest])
        for piece in _pieces():
            if not text.startswith(piece.head, i):
                continue
            found = _match(piece, text, i, spaces, best)
            if found is not None and found[0] < choice[0]:
                choice = found
                if found[0] == 0:
                    break
        best[i] = choice
    return best[0][1]


def _skip(text: str, j: int) -> int:
    while j < len(text) and text[j].isspace():
        j += 1
    return j


def _match(
    piece: _Piece,
    text: str,
    i: int,
    spaces: list[int],
    best: dict[int, tuple[int, list[tuple[str, bool]]]],
) -> tuple[int, list[tuple[str, bool]]] | None:
    ends = [i + piece.fixed] if piece.fixed is not None else [j for j in spaces if j > i]
    for end in ends:  # the shortest match whose rest reads cheapest wins
        if end < len(text) and not text[end].isspace():
            continue
        m = piece.pattern.fullmatch(text, i, end)
        if m is None:
            continue
        cost, rest = best[_skip(text, end)]
        fields = {k: _fit(k, v) for k, v in m.groupdict().items()}
        return cost, [(piece.short.format(**fields), False), *rest]
    return None


# ---- the whole message -----------------------------------------------------------------------
def render(out: Outbound) -> Sms:
    """One outbound message as one (possibly concatenated) SMS: short text, link, menu.

    A reply's ``media_url`` is the upload page for its report (the engine's own replies carry
    none); a bridge message's is a photo from the officer.
    """
    lines = [shorten(out.text)]
    if out.media_url:
        lines.append(("Tambah foto: " if out.kind == "reply" else "Foto: ") + out.media_url)
    choices = menu(out.choices)
    if choices:
        lines.append(choices)
    return encode("\n".join(line for line in lines if line))


__all__ = ["LOOKALIKES", "Sms", "encode", "menu", "render", "shorten", "transliterate"]
