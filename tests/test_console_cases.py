"""The console channel as a table of cases on the shared harness (tests/harness.py)."""

from __future__ import annotations

import io

import pytest

from bots.console import ConsoleLine, parse, render, render_json
from bots.core.engine import Engine
from kanal.logging import get_logger
from kanal.messages import Expects, GeoPoint, Inbound, Outbound, PhotoIn
from kanal.redis import Redis
from tests.harness import PLANTED, Case, LeakFound, run_cases
from tests.images import jpeg

USER = PLANTED.phone  # on a console the sender id is whatever was typed: make it a phone
PHOTO = jpeg(exif_text=f"{PLANTED.name} {PLANTED.phone}")


def line(text: str, n: int = 1, **kw: object) -> ConsoleLine:
    return ConsoleLine(text=text, user=USER, event_id=f"case:{n}:{text[:20]}", **kw)  # type: ignore[arg-type]


def inbound(raw: ConsoleLine, **kw: object) -> Inbound:
    return Inbound(channel="console", user_id=USER, event_id=raw.event_id, **kw)  # type: ignore[arg-type]


STORY = f"jalan bolong gede depan sekolah, {PLANTED.name} {PLANTED.phone} {PLANTED.email}"
START = (line("halo", 0), line(STORY, 1))

PARSE_CASES = [
    Case("plain text", raw=(r := line("halo min")), want_inbound=inbound(r, text="halo min")),
    Case(
        "a line ending is not part of the text",
        raw=(r := line("halo\r\n")),
        want_inbound=inbound(r, text="halo"),
    ),
    Case(
        "location",
        raw=(r := line("/lokasi -6.2446 106.8006")),
        want_inbound=inbound(r, location=GeoPoint(lat=-6.2446, lon=106.8006)),
    ),
    Case(
        "location with commas as decimal marks",
        raw=(r := line("/lokasi -6,2446; 106,8006")),
        want_inbound=inbound(r, location=GeoPoint(lat=-6.2446, lon=106.8006)),
    ),
    Case("location without numbers", raw=line("/lokasi di sini"), want_error="Format lokasi"),
    Case("coordinates off the globe", raw=line("/lokasi 95 200"), want_error="tidak valid"),
    Case(
        "photo",
        raw=(r := line("/foto lubang.jpg", file=PHOTO, file_name="lubang.jpg")),
        want_inbound=inbound(r, photos=(PhotoIn(data=PHOTO, filename="lubang.jpg"),)),
    ),
    Case(
        "photo that could not be read",
        raw=line("/foto /tidak/ada.jpg", file_error="FileNotFoundError"),
        want_error="tidak bisa dibuka",
    ),
    Case(
        "photo too large",
        raw=line("/foto besar.jpg", file_error="too_large"),
        want_error="terlalu besar",
    ),
]

REPLY_CASES = [
    Case(
        "greeting",
        raw=line("halo"),
        want_reply="Halo! Saya Kanal",
        want_expects=Expects.DESCRIPTION,
    ),
    Case(
        "a story with a name, a phone and an e-mail is taken",
        raw=line(STORY, 1),
        before=(line("halo", 0),),
        want_reply="Jalan rusak",
    ),
    Case(
        "a point in Jakarta moves on to the photo",
        raw=line("/lokasi -6.2446 106.8006", 3),
        before=(*START, line("ya", 2)),
        want_expects=Expects.PHOTO,
    ),
    Case(
        "a point outside Jakarta is refused politely",
        raw=line("/lokasi -7.7956 110.3695", 3),
        before=(*START, line("ya", 2)),
        want_reply="di luar wilayah DKI Jakarta",
    ),
    Case(
        "a photo carrying a name in its EXIF",
        raw=line("/foto x.jpg", 4, file=PHOTO, file_name="x.jpg"),
        before=(*START, line("ya", 2), line("/lokasi -6.2446 106.8006", 3)),
        want_reply="Foto 1 dari 3",
    ),
    Case(
        "bytes that are not a photo",
        raw=line("/foto a.jpg", file=b"%PDF-1.4"),
        want_reply="bukan foto",
    ),
    Case("emoji only", raw=line("🙏🙏"), want_reply="emoji"),
    Case("an unknown command", raw=line("/hapus"), want_reply="tidak dikenal"),
    Case("an emergency", raw=line("tolong ada kebakaran rumah tetangga"), want_reply="112"),
]


async def test_console_parse_cases(logs: io.StringIO) -> None:
    await run_cases(PARSE_CASES, parse, logs=logs)


async def test_console_reply_cases(engine: Engine, redis: Redis, logs: io.StringIO) -> None:
    await run_cases(REPLY_CASES, parse, engine=engine, redis=redis, logs=logs)


def test_render_numbers_the_choices() -> None:
    out = Outbound(channel="console", to=USER, conv="p_x", text="Benar?", choices=("Ya", "Bukan"))
    assert render(out) == "Kanal: Benar?\n  1. Ya\n  2. Bukan"
    assert render_json(out) == '{"text": "Benar?", "expects": "none", "choices": ["Ya", "Bukan"]}'


async def test_the_harness_fails_on_a_leak(logs: io.StringIO) -> None:
    """The redaction check can fail: a parse that logs the sender is caught."""

    def leaky(raw: ConsoleLine) -> Inbound:
        get_logger("leaky").info("parsed", sender=raw.user)
        return parse(raw)

    with pytest.raises(LeakFound, match=PLANTED.phone):
        await run_cases([Case("leaky", raw=line("halo"))], leaky, logs=logs)


async def test_the_harness_fails_on_a_wrong_reply(
    engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    with pytest.raises(AssertionError, match="replies were"):
        await run_cases(
            [Case("wrong", raw=line("halo"), want_reply="Selamat tinggal")],
            parse,
            engine=engine,
            redis=redis,
            logs=logs,
        )
