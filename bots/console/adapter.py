"""Console adapter: a line typed (or piped) in, printed replies out. ``parse`` and ``render`` are
pure; reading a ``/foto`` file is the worker's I/O, done before ``parse`` sees the line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kanal.errors import BadInput
from kanal.messages import GeoPoint, Inbound, Outbound, PhotoIn

CHANNEL = "console"
MAX_FILE = 20 * 1024 * 1024
_LOKASI = re.compile(
    r"^/(?:lokasi|location|loc)\s+(-?\d+(?:[.,]\d+)?)[\s,;]+(-?\d+(?:[.,]\d+)?)\s*$", re.I
)
_FOTO = re.compile(r"^/(?:foto|photo|gambar)\s+(.+?)\s*$", re.I)


@dataclass(frozen=True)
class ConsoleLine:
    """One input line as the worker read it; ``file`` holds a ``/foto`` file's bytes."""

    text: str
    user: str
    event_id: str
    file: bytes | None = None
    file_name: str | None = None
    file_error: str | None = None  # why the named file could not be read


class ConsoleInputError(BadInput):
    """A console command we could not use; ``reply`` is the polite answer."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply=reply)


def photo_path(text: str) -> str | None:
    """The path named by a ``/foto <path>`` line, if it is one."""
    m = _FOTO.match(text.strip())
    return m.group(1).strip("'\"") if m else None


def parse(raw: ConsoleLine) -> Inbound:
    """Turn one input line into an Inbound. ``/lokasi`` and ``/foto`` become attachments."""
    text = raw.text.rstrip("\r\n")
    stripped = text.strip()
    if stripped.lower().startswith(("/lokasi", "/location", "/loc ")):
        m = _LOKASI.match(stripped)
        if not m:
            raise ConsoleInputError(
                "Format lokasi: /lokasi <lintang> <bujur>, contoh: /lokasi -6.2 106.8"
            )
        lat, lon = (float(g.replace(",", ".")) for g in m.groups())
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ConsoleInputError("Koordinat tidak valid. Contoh: /lokasi -6.2 106.8")
        return Inbound(
            channel=CHANNEL,
            user_id=raw.user,
            event_id=raw.event_id,
            location=GeoPoint(lat=lat, lon=lon),
        )
    if photo_path(stripped) is not None:
        if raw.file_error == "too_large":
            raise ConsoleInputError("File terlalu besar. Kirim foto di bawah 10 MB.")
        if raw.file is None:
            raise ConsoleInputError(
                f"File foto tidak bisa dibuka ({raw.file_error or 'tidak ada'})."
            )
        return Inbound(
            channel=CHANNEL,
            user_id=raw.user,
            event_id=raw.event_id,
            photos=(PhotoIn(data=raw.file, filename=raw.file_name),),
        )
    return Inbound(channel=CHANNEL, user_id=raw.user, event_id=raw.event_id, text=text)


def render(out: Outbound) -> str:
    """The message as the terminal shows it: the text, then its choices, numbered."""
    lines = [f"Kanal: {out.text}"]
    lines += [f"  {i}. {c}" for i, c in enumerate(out.choices, 1)]
    return "\n".join(lines)


def render_json(out: Outbound) -> str:
    """One JSON line ``{"text","expects","choices"[,"tracking_id"]}``, for tools and tests."""
    doc: dict[str, object] = {
        "text": out.text,
        "expects": str(out.expects),
        "choices": list(out.choices),
    }
    if out.tracking_id is not None:
        doc["tracking_id"] = out.tracking_id
    return json.dumps(doc, ensure_ascii=False)


__all__ = [
    "CHANNEL",
    "ConsoleInputError",
    "ConsoleLine",
    "parse",
    "photo_path",
    "render",
    "render_json",
]
