"""Console adapter: stdin lines in, printed replies out. Pure parse/render plus a thin run loop."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bots.core.models import GeoPoint, Inbound, Outbound, PhotoIn

CHANNEL = "console"
MAX_FILE = 20 * 1024 * 1024
_LOKASI = re.compile(
    r"^/(?:lokasi|location|loc)\s+(-?\d+(?:[.,]\d+)?)[\s,;]+(-?\d+(?:[.,]\d+)?)\s*$", re.I
)
_FOTO = re.compile(r"^/(?:foto|photo|gambar)\s+(.+?)\s*$", re.I)


class ConsoleInputError(ValueError):
    """A console command we could not use; ``reply`` is the polite answer."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def parse(line: str, *, user: str, event_id: str) -> Inbound:
    """Turn one input line into an Inbound. ``/lokasi`` and ``/foto`` become attachments."""
    text = line.rstrip("\r\n")
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
            channel=CHANNEL, user_id=user, event_id=event_id, location=GeoPoint(lat=lat, lon=lon)
        )
    m = _FOTO.match(stripped)
    if m:
        path = Path(m.group(1).strip("'\"")).expanduser()
        try:
            if path.stat().st_size > MAX_FILE:
                raise ConsoleInputError("File terlalu besar. Kirim foto di bawah 10 MB.")
            data = path.read_bytes()
        except (OSError, ValueError) as exc:
            raise ConsoleInputError(f"File foto tidak bisa dibuka ({type(exc).__name__}).") from exc
        return Inbound(
            channel=CHANNEL,
            user_id=user,
            event_id=event_id,
            photos=(PhotoIn(data=data, filename=path.name),),
        )
    return Inbound(channel=CHANNEL, user_id=user, event_id=event_id, text=text)


def render_json(out: Outbound) -> str:
    doc: dict[str, object] = {
        "text": out.text,
        "expects": str(out.expects),
        "choices": list(out.choices),
    }
    if out.tracking_id is not None:
        doc["tracking_id"] = out.tracking_id
    return json.dumps(doc, ensure_ascii=False)


def render_text(out: Outbound) -> str:
    lines = [f"Kanal: {out.text}"]
    lines += [f"  {i}. {c}" for i, c in enumerate(out.choices, 1)]
    return "\n".join(lines)


__all__ = ["CHANNEL", "ConsoleInputError", "parse", "render_json", "render_text"]
