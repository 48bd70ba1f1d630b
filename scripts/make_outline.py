"""Derive Kanal's coarse built-in outline of DKI Jakarta from a kota/kabupaten GeoJSON.

Usage: python scripts/make_outline.py KOTA_KABUPATEN.geojson > bots/core/data/dki_outline.json

The result is a heavily simplified, buffered outline (about 200 m of slack at the border, islands
of Kepulauan Seribu buffered about 1 km) used only to tell "inside DKI Jakarta or not" when no
gazetteer file is configured (KANAL_GAZETTEER_FILE).
Source polygons: cahyadsn/wilayah_boundaries (MIT).
"""

from __future__ import annotations

import json
import sys

from shapely.geometry import mapping, shape
from shapely.ops import unary_union


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    seribu = [shape(f["geometry"]) for f in features if "Seribu" in f["properties"]["nama"]]
    mainland = [shape(f["geometry"]) for f in features if "Seribu" not in f["properties"]["nama"]]
    outline = unary_union(
        [
            unary_union(mainland).buffer(0.002).simplify(0.004),
            unary_union(seribu).buffer(0.01).simplify(0.01),
        ]
    )
    geo = json.loads(json.dumps(mapping(outline)), parse_float=lambda s: round(float(s), 4))
    json.dump(
        {
            "type": "Feature",
            "properties": {
                "name": "DKI Jakarta (coarse outline, ~200 m slack)",
                "source": "cahyadsn/wilayah_boundaries (MIT), via scripts/make_outline.py",
            },
            "geometry": geo,
        },
        sys.stdout,
        separators=(",", ":"),
    )


if __name__ == "__main__":
    main(sys.argv[1])
