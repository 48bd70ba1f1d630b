"""Small real images for tests, made with Pillow."""

from __future__ import annotations

import io

from PIL import Image


def jpeg(width: int = 64, height: int = 48, *, exif_text: str | None = None) -> bytes:
    img = Image.new("RGB", (width, height), (180, 40, 40))
    out = io.BytesIO()
    if exif_text is not None:
        exif = Image.Exif()
        exif[0x010E] = exif_text  # ImageDescription
        exif[0x013B] = exif_text  # Artist
        img.save(out, format="JPEG", exif=exif)
    else:
        img.save(out, format="JPEG")
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 128, 0, 255)).save(out, format="PNG")
    return out.getvalue()
