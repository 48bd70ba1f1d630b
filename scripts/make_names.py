"""Write ``bridge/data/names_id.txt``: Indonesian given names and family names, one a line.

The scrubber (``bridge/scrub.py``) recognises a person's name where no phrase announces it
("tetangga sebelah, Bu Marni, juga kebanjiran"; "Hendra Gunawan melapor") by looking names
up in this list. It comes from the names-dataset package (MIT, Philippe Remy: first and
last names from a large public crawl, ranked by country), which is too large (55 MB, about
3 GB once loaded) to ship or load at run time, so this script downloads it, keeps the
single-word names ranked among the first ``--top`` in Indonesia or Malaysia, and writes them
sorted.

A name that is also an Indonesian root word (PySastrawi's dictionary, MIT: "bintang", "jaya",
"studi") is marked with ``*``, unless it is among the most common names (``--sure`` ranks:
"budi", "agus"): the scrubber takes a marked word as part of a name next to an unmarked one
("Dewi Sari Anggraini"), never as a name on its own. It also drops what is an ordinary word
of complaints (indoNLP, ``common_words.txt``) when it loads the list. Run it again to
refresh the list:

    .venv/bin/python scripts/make_names.py [--top 8000] [--sure 100]
"""

from __future__ import annotations

import argparse
import gzip
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bridge" / "data" / "names_id.txt"
VERSION = "3.3.1"
SASTRAWI = "1.2.1"
COUNTRIES = ("ID", "MY")


def _ranked(blob: bytes, top: int) -> dict[str, int]:
    table: dict[str, dict[str, dict[str, int]]] = pickle.loads(gzip.decompress(blob))  # noqa: S301
    out: dict[str, int] = {}
    for name, info in table.items():
        ranks = info.get("rank") or {}
        # Indonesia's own ranks miss many a common name ("Rudi", "Ratna", "Sari": the data
        # keeps a name's first ten countries only), and Malaysia's are the closest stand-in
        found = [r for c in COUNTRIES if (r := ranks.get(c)) is not None]
        rank = min(found, default=None)
        if rank is not None and rank <= top and name.isalpha() and len(name) >= 3:
            out[name.lower()] = min(rank, out.get(name.lower(), rank))
    return out


def _download(spec: str, into: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", into, spec],
        check=True,
    )
    return next(Path(into).glob(spec.split("==")[0].replace("-", "_").lower() + "-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=8000, help="ranks kept per list")
    parser.add_argument("--sure", type=int, default=100, help="ranks that are names anyway")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(_download(f"names-dataset=={VERSION}", tmp)) as z:
            first = _ranked(z.read("names_dataset/v3/first_names.pkl.gz"), args.top)
            last = _ranked(z.read("names_dataset/v3/last_names.pkl.gz"), args.top)
        with zipfile.ZipFile(_download(f"PySastrawi=={SASTRAWI}", tmp)) as z:
            words = set(z.read("Sastrawi/Stemmer/data/kata-dasar.txt").decode().split())
    ranks = {n: min(first.get(n, 10**9), last.get(n, 10**9)) for n in first.keys() | last.keys()}
    lines = [n + ("*" if n in words and r > args.sure else "") for n, r in sorted(ranks.items())]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# names-dataset {VERSION} (MIT): the top {args.top} first and last names of\n"
        "# Indonesia and Malaysia;\n"
        f"# * also a root word in PySastrawi {SASTRAWI} (MIT), and not among the top {args.sure}\n"
    )
    OUT.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    marked = sum(line.endswith("*") for line in lines)
    print(f"{len(lines)} names ({marked} also words) -> {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
