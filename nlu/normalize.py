"""Text normalisation for the fallback matcher: case, punctuation, stretched letters, slang."""

from __future__ import annotations

import re
from types import MappingProxyType

# Chat abbreviations and Betawi/Javanese words common in Jakarta complaints, to their standard form.
SLANG: MappingProxyType[str, str] = MappingProxyType(
    {
        "yg": "yang",
        "gk": "tidak",
        "ga": "tidak",
        "gak": "tidak",
        "nggak": "tidak",
        "ngga": "tidak",
        "enggak": "tidak",
        "kagak": "tidak",
        "tdk": "tidak",
        "ora": "tidak",
        "udh": "sudah",
        "udah": "sudah",
        "sdh": "sudah",
        "udeh": "sudah",
        "wis": "sudah",
        "blm": "belum",
        "bgt": "banget",
        "dgn": "dengan",
        "krn": "karena",
        "jl": "jalan",
        "jln": "jalan",
        "gg": "gang",
        "dr": "dari",
        "utk": "untuk",
        "tlg": "tolong",
        "tolongin": "tolong",
        "sy": "saya",
        "aye": "saya",
        "gue": "saya",
        "gw": "saya",
        "lobang": "lubang",
        "bolong": "lubang",
        "mampet": "tersumbat",
        "dmn": "dimana",
        "gmn": "bagaimana",
        "gimana": "bagaimana",
        "knp": "kenapa",
        "sampe": "sampai",
        "skrg": "sekarang",
        "bener": "benar",
        "iye": "iya",
        "yoi": "iya",
        "makasih": "terima kasih",
        "makasi": "terima kasih",
        "thx": "terima kasih",
        "trims": "terima kasih",
    }
)

_NON_WORD = re.compile(r"[^0-9a-z]+")
_STRETCH = re.compile(r"([a-z])\1{2,}")


def normalize(text: str) -> str:
    """Lower-case, strip punctuation, un-stretch letters ("sampahhh"), expand slang."""
    words = _NON_WORD.sub(" ", text.lower()).split()
    out: list[str] = []
    for w in words:
        w = _STRETCH.sub(r"\1", w)
        out.append(SLANG.get(w, w))
    return " ".join(out)


def tokens(text: str) -> list[str]:
    return normalize(text).split()


__all__ = ["SLANG", "normalize", "tokens"]
