"""Photos: decode with Pillow (bomb guard, size limit), read GPS, strip metadata, re-encode.

Only real images get in: JPEG, PNG, GIF, WebP, BMP, TIFF or MPO that Pillow decodes within
:data:`MAX_BYTES` and :data:`MAX_PIXELS`. Anything else raises :class:`NotAnImage`.

The GPS position is read from the *original* EXIF (it is offered to the citizen as the
location), then everything the camera wrote is dropped: the pixels are copied into a fresh
image with the EXIF orientation applied, the longest side bounded to :data:`MAX_SIDE`, and
re-encoded as a baseline JPEG with no EXIF, XMP, ICC profile or comment.

The stores that keep these JPEGs live in :mod:`kanal.mediastore`, which imports this module
(never the other way round).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image

from kanal.errors import NotAnImage

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048
JPEG_QUALITY = 85
# Formats a phone, a mail client or a messenger sends. Not EPS (Pillow runs Ghostscript for
# it), not PSD/ICO/… : fewer decoders, less attack surface.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # MPO opens as JPEG in Pillow 13

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that. We refuse above our own
# limit: the warning becomes an error, and clean_image checks the size itself as well.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
Image.init()  # register every plugin, so open(formats=FORMATS) knows MPO, WEBP, ...
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


@dataclass(frozen=True)
class CleanImage:
    """A stripped JPEG; ``media_id`` is a content hash of ``data``."""

    media_id: str
    data: bytes
    width: int
    height: int
    gps: tuple[float, float] | None = None  # (lat, lon) from the original EXIF


def clean_image(raw: bytes) -> CleanImage:
    """Decode, read GPS, orient, bound, strip and re-encode; :class:`NotAnImage` otherwise."""
    if not raw:
        raise NotAnImage("empty")
    if len(raw) > MAX_BYTES:
        raise NotAnImage("too large")
    try:
        with _quiet_pillow():
            return _clean(raw)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NotAnImage("too many pixels") from exc
    except (OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
        # UnidentifiedImageError is an OSError; truncated data, bad chunks and unsupported
        # modes surface as the others.
        raise NotAnImage(type(exc).__name__) from exc


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow *warns* about corrupt EXIF ("Truncated File Read") while opening a JPEG.

    That is the sender's EXIF, not our bug, and it must cost neither the photo nor (where
    warnings are errors) the request: GPS and orientation are then simply unknown.
    (``catch_warnings`` is process-wide; a race between threads can at worst leave these
    Pillow warnings ignored, or let one through as a warning, never refuse a good photo.)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _clean(raw: bytes) -> CleanImage:
    with Image.open(io.BytesIO(raw), formats=FORMATS) as probe:
        probe.verify()  # structure and checksums (PNG CRCs), without decoding
    with Image.open(io.BytesIO(raw), formats=FORMATS) as img:
        if img.width * img.height > MAX_PIXELS or min(img.size) < 1:
            raise NotAnImage("too many pixels")
        exif = _exif(img)
        gps = _gps(exif)
        orientation = _orientation(exif)
        if img.format == "JPEG":
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # let libjpeg scale big photos down
        img.load()  # the first frame of an animation
        rgb = _to_rgb(img)
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # A fresh image from the bare pixels carries no ``info`` (Pillow would write a copied
    # ``comment`` back into the JPEG), so only what we pass to save() is written.
    bare = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    out = io.BytesIO()
    bare.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    data = out.getvalue()
    return CleanImage(hashlib.sha256(data).hexdigest()[:32], data, bare.width, bare.height, gps)


def _exif(img: Image.Image) -> Image.Exif | None:
    try:
        return img.getexif()
    except Exception:  # EXIF is whatever the sender wrote: unreadable means none
        return None


def _orientation(exif: Image.Exif | None) -> int:
    try:
        value = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
        return int(value)
    except Exception:
        return 1


def _gps(exif: Image.Exif | None) -> tuple[float, float] | None:
    """(lat, lon) in decimal degrees from the GPSInfo IFD; ``None`` if absent or malformed."""
    if exif is None:
        return None
    try:
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        lat = _degrees(ifd.get(ExifTags.GPS.GPSLatitude), ifd.get(ExifTags.GPS.GPSLatitudeRef))
        lon = _degrees(ifd.get(ExifTags.GPS.GPSLongitude), ifd.get(ExifTags.GPS.GPSLongitudeRef))
    except Exception:
        return None
    if lat is None or lon is None or lat[1] not in "NS" or lon[1] not in "EW":
        return None
    lat_deg = -lat[0] if lat[1] == "S" else lat[0]
    lon_deg = -lon[0] if lon[1] == "W" else lon[0]
    if abs(lat_deg) > 90 or abs(lon_deg) > 180 or (lat_deg == 0 and lon_deg == 0):
        return None  # out of range, or the 0,0 some cameras write without a fix
    return round(lat_deg, 7), round(lon_deg, 7)


def _degrees(value: Any, ref: Any) -> tuple[float, str] | None:
    """Degrees, minutes, seconds (rationals) and a hemisphere letter, or ``None``."""
    if value is None or ref is None:
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    letter = str(ref).strip("\x00 ").upper()[:1]
    if not letter:
        return None
    parts = [float(v) for v in (value if isinstance(value, tuple | list) else (value,))]
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    degrees, minutes, seconds = (*parts, 0.0, 0.0)[:3]
    if minutes >= 60 or seconds >= 60:
        return None
    return degrees + minutes / 60 + seconds / 3600, letter


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit grey scaled down, transparency flattened onto white."""
    if img.mode in _SIXTEEN_BIT:
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return img.convert("RGB")


__all__ = [
    "FORMATS",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "CleanImage",
    "clean_image",
]
