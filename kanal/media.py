"""Photos: decode with Pillow (bomb guard, size limit), strip metadata, store by content hash.

Only real images get in. The stored copy is a re-encoded JPEG with no EXIF/XMP/ICC, the
orientation applied and the longest side bounded, so nothing the camera wrote leaves Kanal.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from kanal.errors import NotAnImage

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048

# Pillow warns at MAX_IMAGE_PIXELS and raises at twice that; raise at our own limit instead.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class CleanImage:
    media_id: str
    data: bytes
    width: int
    height: int


def clean_image(raw: bytes) -> CleanImage:
    """Decode, bound, strip and re-encode; raise :class:`NotAnImage` for anything else."""
    if not raw or len(raw) > MAX_BYTES:
        raise NotAnImage("empty or too large")
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(raw)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise NotAnImage("too many pixels")
            img.load()
            upright = ImageOps.exif_transpose(img)
            rgb = upright.convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise NotAnImage(type(exc).__name__) from exc
    except ValueError as exc:
        raise NotAnImage("undecodable") from exc
    rgb.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85, optimize=True)  # no exif=, no icc_profile=
    data = out.getvalue()
    return CleanImage(hashlib.sha256(data).hexdigest()[:32], data, rgb.width, rgb.height)


class MediaStore:
    """A local directory of cleaned JPEGs named by content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, raw: bytes) -> str:
        img = clean_image(raw)
        path = self.root / f"{img.media_id}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(img.data)
            tmp.replace(path)
        return img.media_id

    def path(self, media_id: str) -> Path | None:
        if not media_id.isalnum():
            return None
        p = self.root / f"{media_id}.jpg"
        return p if p.exists() else None


__all__ = ["MAX_BYTES", "CleanImage", "MediaStore", "clean_image"]
