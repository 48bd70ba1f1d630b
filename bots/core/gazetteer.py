"""Where in DKI Jakarta: point-in-boundary checks and kelurahan/kecamatan names in free text.

Boundaries come from a configured GeoJSON of kelurahan polygons (``KANAL_GAZETTEER_FILE``;
properties ``nama``, ``nama_kecamatan``, ``nama_kota``) or, when none is configured, from a coarse
built-in outline of DKI Jakarta. Official names and postal codes come from the ``areaid`` package.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Area:
    kelurahan: str | None
    kecamatan: str | None
    kota: str | None


@dataclass(frozen=True)
class _Name:
    key: str  # normalised, for matching
    area: Area
    level: str  # "kelurahan" | "kecamatan"


_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_POSTCODE = re.compile(r"\b(1[0-4]\d{3})\b")


def _norm(text: str) -> str:
    return " " + _WS.sub(" ", _NON_WORD.sub(" ", text.lower())).strip() + " "


_KOTA_PREFIX = re.compile(r"^(kota|kabupaten)\s+(adm\.|administrasi)?\s*", re.IGNORECASE)


def _title_kota(name: str) -> str:
    return _KOTA_PREFIX.sub("", name).strip()


def _load_areaid() -> tuple[list[_Name], dict[str, Area]]:
    from areaid import buka_data

    names: list[_Name] = []
    postcodes: dict[str, Area] = {}
    seen: set[tuple[str, str]] = set()
    for prov in buka_data("daerah khusus ibukota jakarta"):
        for kab in prov["kabupaten"]:
            kota = _title_kota(str(kab["kab_kota"]))
            for kec in kab["kecamatan"]:
                kec_name = str(kec["kec"])
                kec_area = Area(None, kec_name, kota)
                if (kec_name, "kecamatan") not in seen:
                    seen.add((kec_name, "kecamatan"))
                    names.append(_Name(_norm(kec_name), kec_area, "kecamatan"))
                for kel in kec["kelurahan"]:
                    area = Area(str(kel["kelu"]), kec_name, kota)
                    names.append(_Name(_norm(area.kelurahan or ""), area, "kelurahan"))
                    code = str(kel.get("pos", ""))
                    if code in postcodes and postcodes[code].kecamatan != kec_name:
                        postcodes[code] = Area(None, None, kota)
                    elif code in postcodes:
                        postcodes[code] = kec_area
                    else:
                        postcodes[code] = area
    return names, postcodes


class Gazetteer:
    def __init__(self, boundaries_file: str | Path | None = None) -> None:
        self._names, self._postcodes = _load_areaid()
        # Longest names first so "Kebayoran Lama Utara" wins over "Kebayoran Lama".
        self._names.sort(key=lambda n: len(n.key), reverse=True)
        self._polys: list[BaseGeometry] = []
        self._areas: list[Area] = []
        if boundaries_file:
            with open(boundaries_file, encoding="utf-8") as fh:
                features: list[dict[str, Any]] = json.load(fh)["features"]
            for f in features:
                p = f["properties"]
                self._polys.append(shape(f["geometry"]))
                self._areas.append(
                    Area(
                        p.get("nama"), p.get("nama_kecamatan"), _title_kota(p.get("nama_kota", ""))
                    )
                )
            self._tree: STRtree | None = STRtree(self._polys)
        else:
            self._tree = None
        self._outline = _builtin_outline()

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies inside DKI Jakarta (with ~200 m slack at the border)."""
        pt = Point(lon, lat)
        if self._outline.contains(pt):
            return True
        return self.locate(lat, lon) is not None

    def locate(self, lat: float, lon: float) -> Area | None:
        """The kelurahan containing the point, when a boundaries file is configured."""
        if self._tree is None:
            return None
        pt = Point(lon, lat)
        for idx in self._tree.query(pt):
            if self._polys[int(idx)].contains(pt):
                return self._areas[int(idx)]
        return None

    def find_in_text(self, text: str) -> Area | None:
        """The most specific kelurahan/kecamatan named in an address, or None."""
        hay = _norm(text)
        best: _Name | None = None
        for name in self._names:
            if name.key.strip() and name.key in hay:
                prefixed = any(
                    p + name.key in hay
                    for p in (" kel", " kelurahan", " desa", " kec", " kecamatan")
                )
                if best is None or (prefixed and name.level == "kelurahan"):
                    best = name
                    if prefixed:
                        break
        if best is not None:
            return best.area
        m = _POSTCODE.search(text)
        if m and m.group(1) in self._postcodes:
            return self._postcodes[m.group(1)]
        return None


# Street-level detail an officer needs to find the place: a named street or alley, RT/RW, a house
# number, a block, a landmark ("depan masjid …"). "jalan"/"gang" alone are common words ("lampu
# jalan"), so they count only after a preposition ("di gang …"); "Jl."/"Gg." always count.
_STOP = (
    r"(?=\s*(?:[,.;:!?()\n]|$|\b(?:kel|kelurahan|kec|kecamatan|kota|rt|rw|no|nomor|blok|"
    r"depan|dekat|samping|belakang|seberang|sebelah|udah|sudah|sejak|dari|bau|tolong|mohon|"
    r"yang|dan|tapi|sampai|sampe|karena|krn)\b))"
)
_NAMED = r"[^,.;:!?()\n]{2,50}?"
_DETAIL = re.compile(
    # a street, alley or estate: "Jl. Haji Nawi", "di gang kelinci", "Komplek Griya Asri"
    r"(?:\b(?:jl|jln|gg)\.?\s+|(?:(?<=\bdi\s)|(?<=\bke\s)|(?<=\bsepanjang\s))(?:jalan|gang)\s+"
    r"|\b(?:komplek|kompleks|perumahan|perum|blok)\.?\s+)"
    + _NAMED
    + _STOP
    # RT/RW and a house number: "RT 4 RW 2", "rt 05/rw 02", "No. 12"
    + r"|\brt\.?\s*0*\d{1,3}(?:\s*/\s*|\s+)(?:rw\.?\s*)?0*\d{1,3}\b|\br[tw]\.?\s*0*\d{1,3}\b"
    r"|\bno\.?\s*\d+[a-z]?\b"
    # a landmark: "depan masjid Al-Ikhlas"
    r"|\b(?:depan|dekat|samping|belakang|seberang|sebelah)\s+[^,.;:!?()\n]{3,40}?" + _STOP,
    re.I,
)


def street_detail(text: str, *, limit: int = 160) -> str | None:
    """The street-level detail a story gives (gang, jalan, RT/RW, number, landmark), or None:
    "sampah di gang kelinci RT 4 RW 2 kelurahan Pasar Baru" -> "gang kelinci RT 4 RW 2"."""
    found: list[str] = []
    for m in _DETAIL.finditer(text):
        part = " ".join(m.group(0).split())
        if part and all(part.lower() not in f.lower() for f in found):
            found.append(part)
    joined = " ".join(found)
    return joined[:limit] or None


def story_address(story: str | None, kelurahan: str | None, kecamatan: str | None) -> str:
    """The address a story gives: its street-level detail, then its kelurahan and kecamatan
    ("Jl. Kebon Pala RT 3, Kel. Kampung Melayu, Kec. Jatinegara")."""
    detail = street_detail(story or "")
    parts = [detail] if detail else []
    parts += [f"Kel. {kelurahan}"] if kelurahan else []
    parts += [f"Kec. {kecamatan}"] if kecamatan else []
    return ", ".join(parts)


@lru_cache(maxsize=1)
def _builtin_outline() -> BaseGeometry:
    raw = resources.files("bots.core").joinpath("data/dki_outline.json").read_text("utf-8")
    return shape(json.loads(raw)["geometry"])


__all__ = ["Area", "Gazetteer", "story_address", "street_detail"]
