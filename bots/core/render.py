"""Rendering helpers every adapter shares: numbered menus, splitting to a limit, plain text.

The engine says each thing once, with ``choices``; a channel with buttons renders them as
buttons, a text-only channel calls :func:`with_menu`. Limits are the platforms' own: a Telegram
message is 4,096 characters, an X DM 10,000, an SMS segment 153 GSM-7 septets or 67 UCS-2 units
once a text needs more than one (160 and 70 for a single SMS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from markdown_it import MarkdownIt
from markdown_it.token import Token

from kanal.text import strip_html

TELEGRAM_LIMIT = 4096
X_DM_LIMIT = 10_000
SMS_SINGLE = {"gsm7": 160, "ucs2": 70}
SMS_SEGMENT = {"gsm7": 153, "ucs2": 67}

Measure = Callable[[str], int]


# ---- menus ------------------------------------------------------------------------------------
def menu_lines(choices: Sequence[str], *, compact: bool | None = None) -> list[str]:
    """``Balas 1 untuk Ya`` lines; with many choices (or ``compact``) ``1. Sampah`` under one
    ``Balas dengan nomornya:`` line, which costs an SMS reader far fewer characters."""
    if not choices:
        return []
    if compact is None:
        compact = len(choices) > 4
    if compact:
        return ["Balas dengan nomornya:", *(f"{i}. {c}" for i, c in enumerate(choices, 1))]
    return [f"Balas {i} untuk {c}" for i, c in enumerate(choices, 1)]


def with_menu(text: str, choices: Sequence[str], *, compact: bool | None = None) -> str:
    """The text followed by its choices as numbered lines (for channels without buttons)."""
    lines = menu_lines(choices, compact=compact)
    return "\n".join([text, *lines]) if lines else text


# ---- splitting ------------------------------------------------------------------------------
_BREAKS = ("\n\n", "\n", ". ", " ")


def split_text(text: str, limit: int, *, measure: Measure = len) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` (as ``measure`` counts), preferring a
    paragraph break, then a line break, a sentence end, a space; a word longer than the limit
    is cut. Parts are stripped; no part is empty. Joined with spaces they keep every word."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    text = text.strip()
    parts: list[str] = []
    while text:
        if measure(text) <= limit:
            parts.append(text)
            break
        head = _longest_prefix(text, limit, measure)
        cut = _best_break(head)
        if cut <= 0:
            cut = len(head)
        part, text = text[:cut].rstrip(), text[cut:].lstrip()
        if part:
            parts.append(part)
    return parts


def _longest_prefix(text: str, limit: int, measure: Measure) -> str:
    """The longest prefix that fits (binary search: ``measure`` grows with length)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def _best_break(head: str) -> int:
    for sep in _BREAKS:
        at = head.rfind(sep)
        if at > len(head) // 4:  # a break too early wastes most of the part
            return at + len(sep.rstrip(" ")) if sep != " " else at
    at = head.rfind(" ")
    return at if at > 0 else -1


# ---- SMS ------------------------------------------------------------------------------------
def sms_encoding(text: str) -> str:
    """``gsm7`` if every character is in the GSM 03.38 alphabet, else ``ucs2``."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return "ucs2"
    return "gsm7"


def sms_units(text: str, encoding: str | None = None) -> int:
    """Septets (GSM-7: an extension character such as € or [ costs two) or UTF-16 units."""
    encoding = encoding or sms_encoding(text)
    if encoding == "gsm7":
        return len(text.encode("gsm03.38"))
    return len(text.encode("utf-16-be")) // 2


def sms_segments(text: str) -> list[str]:
    """The text as the segments of one concatenated SMS (one if it fits 160/70 units).

    The network cuts at unit boundaries, not words (the phone joins the parts again), but
    never inside a GSM-7 escape pair or a UTF-16 surrogate pair. ``len()`` of the result is
    what the reply costs.
    """
    if not text:
        return []
    encoding = sms_encoding(text)
    if sms_units(text, encoding) <= SMS_SINGLE[encoding]:
        return [text]
    limit = SMS_SEGMENT[encoding]
    parts: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(text):
        cost = sms_units(ch, encoding)
        if used + cost > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


# ---- plain text -------------------------------------------------------------------------------
# Inline rules only: lines, numbered lines and "- " lists stay exactly as written.
_MD = MarkdownIt("zero").enable(["emphasis", "backticks", "link", "escape", "entity"])
_MD.enable("html_inline")
_MD.options["html"] = True


def strip_markup(text: str) -> str:
    """Markdown emphasis, code, links and HTML tags removed, for a channel that shows plain
    text (SMS, e-mail's text part). ``[peta](https://…)`` keeps both: ``peta (https://…)``."""
    lines = [_plain_line(line) for line in text.split("\n")]
    return strip_html("\n".join(lines)) if "<" in text else "\n".join(lines)


def _plain_line(line: str) -> str:
    if not line.strip():
        return line
    lead = line[: len(line) - len(line.lstrip())]
    out: list[str] = []
    href: list[str] = []
    for tok in _inline_tokens(line.lstrip()):
        if tok.type in ("text", "code_inline", "html_inline"):
            out.append(tok.content)
        elif tok.type == "softbreak" or tok.type == "hardbreak":
            out.append("\n")
        elif tok.type == "link_open":
            href.append(str(tok.attrs.get("href", "")))
            out.append("\x00")
        elif tok.type == "link_close" and href:
            url = href.pop()
            start = max(i for i, s in enumerate(out) if s == "\x00")
            label = "".join(out[start + 1 :])
            out[start:] = [label if not url or url == label else f"{label} ({url})"]
    return lead + "".join(out)


def _inline_tokens(line: str) -> list[Token]:
    tokens = _MD.parseInline(line)
    return tokens[0].children or [] if tokens else []


__all__ = [
    "SMS_SEGMENT",
    "SMS_SINGLE",
    "TELEGRAM_LIMIT",
    "X_DM_LIMIT",
    "menu_lines",
    "sms_encoding",
    "sms_segments",
    "sms_units",
    "split_text",
    "strip_html",
    "strip_markup",
    "with_menu",
]
