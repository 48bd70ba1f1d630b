"""Write ``bridge/data/common_words.txt``: words of Jakarta complaints that are not names.

The scrubber (``bridge/scrub.py``) needs to tell "sy agus" (a name) from "sy warga" or "sy mau"
(not names) when people write without capitals. Function words and chat slang come from
indoNLP at run time; this list adds the domain's own words, taken from the NLU training data
(``nlu/data/*.yml``) minus any word that follows an introduction there ("nama saya X"), so
that the bridge does not read the NLU's files at run time. Run after changing nlu/data:

    .venv/bin/python scripts/make_lexicon.py
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bridge" / "data" / "common_words.txt"
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_INTRO = re.compile(
    r"\b(?:nama\s+(?:saya|sy|aku|gw|gue)|namaku|bernama|atas\s+nama|hormat\s+saya)"
    r"\s*:?\s+([A-Za-z][A-Za-z'-]+)",
    re.I,
)


def main() -> None:
    words: set[str] = set()
    after_intro: set[str] = set()
    for path in sorted((REPO / "nlu" / "data").glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in doc.get("nlu", []) or []:
            for line in str(item.get("examples") or "").splitlines():
                line = _ANNOTATION.sub(r"\1", line.lstrip("- "))
                words.update(w.lower() for w in _WORD.findall(line))
                after_intro.update(m.group(1).lower() for m in _INTRO.finditer(line))
    common = sorted(w for w in words - after_intro if len(w) > 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(common) + "\n", encoding="utf-8")
    print(f"{len(common)} words -> {OUT.relative_to(REPO)} ({len(after_intro)} held out)")


if __name__ == "__main__":
    main()
