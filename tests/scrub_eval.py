"""Recall and kept of the scrubber on a case table (tests/data/scrub/*.jsonl).

- recall: the share of planted personal values ("go") that are gone from the scrubbed text.
  A value is gone when neither it nor any word of it (three letters or more, for names) nor
  its longest run of 4+ digits (for numbers) is left;
- kept: the share of problem details ("stay") still there, verbatim.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "scrub"
_TITLES = frozenset(
    [
        "pak",
        "bu",
        "bapak",
        "ibu",
        "mas",
        "mbak",
        "bang",
        "kak",
        "sdr",
        "sdri",
        "drs",
        "dra",
        "dr",
        "ir",
        "prof",
        "haji",
        "hajjah",
        "kh",
        "ust",
    ]
)


def load(name: str) -> list[dict[str, object]]:
    path = DATA / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def leaked(value: str, out: str, stay: list[str] | tuple[str, ...] = ()) -> bool:
    if value in out:
        return True
    for kept in stay:  # a word of the name that is part of a street kept on purpose is no leak
        out = out.replace(kept, " ")
    digits = re.findall(r"\d(?:[\d\s().-]*\d)?", value)
    runs = [re.sub(r"\D", "", d) for d in digits]
    longest = max(runs, key=len, default="")
    if len(longest) >= 6:
        return longest in re.sub(r"\D", "", " ".join(re.findall(r"[\d\s().-]+", out)))
    low = out.lower()
    if "@" in value and not value.startswith("@"):  # an address: its domain is no one's name
        value = value.split("@", 1)[0]
    for word in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", value):
        if word.lower() not in _TITLES and re.search(rf"\b{re.escape(word.lower())}\b", low):
            return True
    return False


@dataclass
class Score:
    go: int = 0
    gone: int = 0
    stay: int = 0
    kept: int = 0
    misses: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.gone / self.go if self.go else 1.0

    @property
    def kept_share(self) -> float:
        return self.kept / self.stay if self.stay else 1.0


def evaluate(cases: list[dict[str, object]], scrub: Callable[[str], str]) -> Score:
    score = Score()
    for case in cases:
        text = str(case["text"])
        out = scrub(text)
        for value in case.get("go", []):  # type: ignore[union-attr]
            score.go += 1
            if leaked(str(value), out, [str(v) for v in case.get("stay", [])]):  # type: ignore[union-attr]
                score.misses.append(f"{case['id']}: {value!r} in {out!r}")
            else:
                score.gone += 1
        for value in case.get("stay", []):  # type: ignore[union-attr]
            score.stay += 1
            if str(value) in out:
                score.kept += 1
            else:
                score.losses.append(f"{case['id']}: {value!r} lost in {out!r}")
    return score
