"""The Telegram adapter as tables of cases on the shared harness (tests/harness.py): one case
per update type for ``parse``, and what ``render`` makes of each kind of Outbound."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest

from bots.core.engine import Engine
from bots.telegram import SendCall, TelegramUpdate, merge_album, parse, render, wanted_file
from bots.telegram.adapter import LOCATION_BUTTON, PRIVATE_ONLY, TelegramInputError
from bots.telegram.worker import groups
from kanal.messages import Expects, GeoPoint, Inbound, Outbound, PhotoIn
from kanal.redis import Redis
from tests.harness import PLANTED, Case, run_cases
from tests.images import jpeg

CHAT = int(PLANTED.chat_id)
FIRST, LAST = PLANTED.name.split()
USER = {
    "id": CHAT,
    "is_bot": False,
    "first_name": FIRST,
    "last_name": LAST,
    "username": "sitirahma77",
    "language_code": "id",
}
PRIVATE = {"id": CHAT, "type": "private", "first_name": FIRST, "last_name": LAST}
GROUP = {"id": -1001234567, "type": "supergroup", "title": "Warga RT 03"}
CHANNEL_CHAT = {"id": -1009876543, "type": "channel", "title": "Info Kelurahan"}
PHOTO = jpeg(exif_text=f"{PLANTED.name} {PLANTED.phone}")
_ids = itertools.count(7001)


def update(chat: dict[str, Any] = PRIVATE, kind: str = "message", **fields: Any) -> dict[str, Any]:
    uid = next(_ids)
    msg = {"message_id": uid, "date": 1_790_000_000, "chat": chat, "from": USER, **fields}
    return {"update_id": uid, kind: msg}


def inbound(raw: dict[str, Any], **kw: Any) -> Inbound:
    return Inbound(channel="telegram", user_id=str(CHAT), event_id=str(raw["update_id"]), **kw)


def sizes(file_id: str, *, big: int = 800_000) -> list[dict[str, Any]]:
    return [
        {"file_id": f"{file_id}-s", "file_unique_id": "a", "width": 90, "height": 68},
        {"file_id": file_id, "file_unique_id": "b", "width": 1280, "height": 960, "file_size": big},
        {"file_id": f"{file_id}-xl", "file_unique_id": "c", "width": 9000, "height": 9000},
    ]


def with_file(raw: dict[str, Any], file_id: str, data: bytes = PHOTO) -> TelegramUpdate:
    return TelegramUpdate(raw, {file_id: data})


CALLBACK = {
    "update_id": next(_ids),
    "callback_query": {
        "id": "cb-1",
        "from": USER,
        "chat_instance": "ci",
        "data": "Kirim",
        "message": {"message_id": 5, "date": 1_790_000_000, "chat": PRIVATE, "text": "Benar?"},
    },
}
STORY = f"jalan bolong depan sekolah, {PLANTED.name} {PLANTED.phone}"

PARSE_CASES = [
    Case("text", raw=(r := update(text=STORY)), want_inbound=inbound(r, text=STORY)),
    Case(
        "a command",
        raw=(r := update(text="/status 123456")),
        want_inbound=inbound(r, text="/status 123456"),
    ),
    Case(
        "a shared location",
        raw=(r := update(location={"latitude": -6.2446, "longitude": 106.8006})),
        want_inbound=inbound(r, location=GeoPoint(lat=-6.2446, lon=106.8006)),
    ),
    Case(
        "a venue",
        raw=(
            r := update(
                venue={
                    "location": {"latitude": -6.1754, "longitude": 106.8272},
                    "title": "Monas",
                    "address": "Gambir",
                }
            )
        ),
        want_inbound=inbound(r, location=GeoPoint(lat=-6.1754, lon=106.8272)),
    ),
    Case(
        "a live location's first point",
        raw=(r := update(location={"latitude": -6.2, "longitude": 106.8, "live_period": 900})),
        want_inbound=inbound(r, location=GeoPoint(lat=-6.2, lon=106.8)),
    ),
    Case(
        "a live location moving on is not a new answer",
        raw=update(kind="edited_message", location={"latitude": -6.21, "longitude": 106.81}),
        want_inbound=None,
    ),
    Case(
        "a photo: the largest size within the media limits, with its caption",
        raw=with_file(r := update(photo=sizes("p1"), caption="ini lubangnya"), "p1"),
        want_inbound=inbound(
            r, text="ini lubangnya", photos=(PhotoIn(data=PHOTO, filename="p1.jpg"),)
        ),
    ),
    Case(
        "an image sent as a document",
        raw=with_file(
            r := update(
                document={
                    "file_id": "d1",
                    "file_unique_id": "d",
                    "file_name": "lubang.png",
                    "mime_type": "image/png",
                    "file_size": 20_000,
                }
            ),
            "d1",
        ),
        want_inbound=inbound(r, photos=(PhotoIn(data=PHOTO, filename="lubang.png"),)),
    ),
    Case(
        "a document that is not an image",
        raw=update(
            document={"file_id": "d2", "file_unique_id": "e", "mime_type": "application/pdf"}
        ),
        want_error="hanya bisa menerima foto",
    ),
    Case(
        "a photo too large in every size",
        raw=update(
            photo=[
                {
                    "file_id": "x",
                    "file_unique_id": "x",
                    "width": 1,
                    "height": 1,
                    "file_size": 30_000_000,
                }
            ]
        ),
        want_error="terlalu besar",
    ),
    Case("a button tapped", raw=CALLBACK, want_inbound=inbound(CALLBACK, text="Kirim")),
    Case("a sticker", raw=update(sticker={"file_id": "s", "emoji": "👍"}), want_error="stiker"),
    Case("a voice note", raw=update(voice={"file_id": "v", "duration": 2}), want_error="suara"),
    Case("a video", raw=update(video={"file_id": "v", "duration": 2}), want_error="video"),
    Case("a round video", raw=update(video_note={"file_id": "v"}), want_error="video"),
    Case(
        "a contact, with a phone number",
        raw=update(contact={"phone_number": PLANTED.phone, "first_name": FIRST}),
        want_error="tidak memerlukan kontak",
    ),
    Case("a poll", raw=update(poll={"id": "p", "question": "?"}), want_error="polling"),
    Case(
        "an edited message",
        raw=update(kind="edited_message", text="ralat", edit_date=1_790_000_100),
        want_error="diubah",
    ),
    Case("a group message", raw=update(chat=GROUP, text=STORY), want_error="chat pribadi"),
    Case(
        "a group member joining", raw=update(chat=GROUP, new_chat_members=[USER]), want_inbound=None
    ),
    Case(
        "the bot added to a group",
        raw={
            "update_id": next(_ids),
            "my_chat_member": {
                "chat": GROUP,
                "from": USER,
                "date": 1,
                "old_chat_member": {"status": "left", "user": USER},
                "new_chat_member": {"status": "member", "user": USER},
            },
        },
        want_error="chat pribadi",
    ),
    Case(
        "the bot blocked in a private chat",
        raw={
            "update_id": next(_ids),
            "my_chat_member": {
                "chat": PRIVATE,
                "from": USER,
                "date": 1,
                "old_chat_member": {"status": "member", "user": USER},
                "new_chat_member": {"status": "kicked", "user": USER},
            },
        },
        want_inbound=None,
    ),
    Case(
        "a command in a channel",
        raw=update(chat=CHANNEL_CHAT, kind="channel_post", text="/start"),
        want_error="chat pribadi",
    ),
    Case(
        "an ordinary channel post",
        raw=update(chat=CHANNEL_CHAT, kind="channel_post", text="Kerja bakti Minggu"),
        want_inbound=None,
    ),
    Case(
        "a pinned-message notice", raw=update(pinned_message={"message_id": 1}), want_inbound=None
    ),
    Case(
        "an unknown update type",
        raw={"update_id": next(_ids), "message_reaction": {"chat": PRIVATE}},
        want_inbound=None,
    ),
]

REPLY_CASES = [
    Case("a greeting", raw=update(text="/start"), want_reply="Halo! Saya Kanal"),
    Case(
        "a story with a name and a phone is taken",
        raw=update(text=STORY),
        want_expects=Expects.LOCATION,
    ),
    Case(
        "a shared point outside Jakarta",
        raw=update(location={"latitude": -7.7956, "longitude": 110.3695}),
        before=(update(text=STORY),),
        want_reply="di luar wilayah DKI Jakarta",
    ),
    Case(
        "a photo with a name in its EXIF",
        raw=with_file(update(photo=sizes("p9")), "p9"),
        before=(
            update(text=STORY),
            update(location={"latitude": -6.2446, "longitude": 106.8006}),
        ),
        want_reply="Foto 1 dari 3",
    ),
    Case("help", raw=update(text="/bantuan"), want_reply="Cara melapor"),
    Case("status", raw=update(text="/status 123456"), want_reply="123456"),
    Case(
        "cancel",
        raw=update(text="/batal"),
        before=(update(text=STORY),),
        want_reply="dibatalkan",
    ),
]


async def test_telegram_parse_cases(logs: io.StringIO) -> None:
    await run_cases(PARSE_CASES, parse, logs=logs)


async def test_telegram_reply_cases(engine: Engine, redis: Redis, logs: io.StringIO) -> None:
    await run_cases(REPLY_CASES, parse, engine=engine, redis=redis, logs=logs)


def test_a_group_pointer_names_the_group_and_says_one_line() -> None:
    with pytest.raises(TelegramInputError) as caught:
        parse(update(chat=GROUP, text="halo"))
    assert caught.value.chat_id == GROUP["id"] and caught.value.reply == PRIVATE_ONLY
    assert "\n" not in PRIVATE_ONLY


def test_the_largest_photo_within_the_limits_is_wanted() -> None:
    assert wanted_file(update(photo=sizes("p7"))) == "p7"  # not the 81-megapixel one
    assert wanted_file(update(text="halo")) is None
    assert wanted_file(update(chat=GROUP, photo=sizes("p8"))) is None  # nothing from groups


def test_an_album_is_merged_into_one_event() -> None:
    parts = [update(photo=sizes(f"a{i}"), media_group_id="m1") for i in range(3)]
    parts[1]["message"]["caption"] = "tiga foto"
    lone = update(text="halo")
    assert [len(g) for g in groups([*parts, lone, parts[0]])] == [3, 1]
    merged = merge_album([parse(with_file(p, f"a{i}")) for i, p in enumerate(parts)])  # type: ignore[misc]
    assert merged.event_id == str(parts[0]["update_id"])
    assert len(merged.photos) == 3 and merged.text == "tiga foto"


def out(**kw: Any) -> Outbound:
    return Outbound(channel="telegram", to=str(CHAT), conv="p_x", **{"text": "Teks", **kw})


RENDER = [
    ("nothing asked: the keyboard goes", out(), [{"remove_keyboard": True}]),
    (
        "choices: inline buttons",
        out(expects=Expects.CONFIRM, choices=("Kirim", "Ubah", "Batal")),
        [
            {
                "inline_keyboard": [
                    [
                        {"text": "Kirim", "callback_data": "Kirim"},
                        {"text": "Ubah", "callback_data": "Ubah"},
                        {"text": "Batal", "callback_data": "Batal"},
                    ]
                ]
            }
        ],
    ),
    (
        "a location question: the request_location button",
        out(expects=Expects.LOCATION, choices=("Pakai lokasi dari foto",)),
        [
            {
                "keyboard": [
                    [{"text": LOCATION_BUTTON, "request_location": True}],
                    [{"text": "Pakai lokasi dari foto"}],
                ],
                "resize_keyboard": True,
                "one_time_keyboard": True,
            }
        ],
    ),
    ("the bridge speaking: the citizen's buttons stay", out(kind="status"), [None]),
]


@pytest.mark.parametrize(("label", "msg", "markups"), RENDER, ids=[r[0] for r in RENDER])
def test_render_keyboards(label: str, msg: Outbound, markups: list[Any]) -> None:
    calls = render(msg)
    assert [c.params.get("reply_markup") for c in calls] == markups
    assert all(c.params["chat_id"] == CHAT for c in calls)


def test_render_long_text_markup_and_photos() -> None:
    long = render(out(text="kata " * 2000, choices=("Ya",)))
    assert len(long) == 3 and all(len(c.params["text"]) <= 4096 for c in long)
    assert "reply_markup" not in long[0].params and long[-1].params["reply_markup"]
    assert render(out(text="Lihat [peta](https://peta.example/x)"))[0].params["text"] == (
        "Lihat peta (https://peta.example/x)"
    )
    proof = render(
        out(text="Selesai dikerjakan.", media_url="https://crm.example/a.jpg", kind="status")
    )
    assert proof == [
        SendCall(
            "sendPhoto",
            {
                "chat_id": CHAT,
                "photo": "https://crm.example/a.jpg",
                "caption": "Selesai dikerjakan.",
            },
        )
    ]
    captionless = render(out(text="x" * 2000, media_url="https://crm.example/a.jpg"))
    assert [c.method for c in captionless] == ["sendPhoto", "sendMessage"]
    many = render(out(choices=tuple(f"Kategori nomor {i}" for i in range(12))))
    rows = many[0].params["reply_markup"]["inline_keyboard"]
    assert len(rows) == 12 and all(len(r) == 1 for r in rows)
    long_label = "x" * 80
    [btn] = render(out(choices=(long_label,)))[0].params["reply_markup"]["inline_keyboard"][0]
    assert btn == {"text": long_label, "callback_data": "1"}


def test_webhook_mode_needs_its_secret() -> None:
    from bots.telegram import TelegramSettings

    on = TelegramSettings(bot_token="1:x", webhook_url="https://kanal.example/telegram/webhook")
    assert on.missing() == ["TELEGRAM_WEBHOOK_SECRET"]
    assert TelegramSettings(bot_token="1:x").missing() == []
    assert TelegramSettings().missing() == ["TELEGRAM_BOT_TOKEN"]


def test_the_compose_file_has_a_telegram_service_with_a_healthcheck() -> None:
    import yaml

    from bots.telegram import TelegramSettings
    from kanal.settings import CrmSettings, KanalSettings, RasaSettings, RedisSettings
    from tests.peers import REPO

    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = doc["services"]["telegram"]
    assert svc["command"] == ["python", "-m", "bots.telegram"]
    assert "/healthz" in " ".join(svc["healthcheck"]["test"])
    known = {
        f"{s.model_config.get('env_prefix', '')}{f}".upper()
        for s in (KanalSettings, RedisSettings, CrmSettings, RasaSettings, TelegramSettings)
        for f in s.model_fields
    }
    assert set(svc["environment"]) <= known


def test_bot_api_errors_say_what_to_do() -> None:
    """python-telegram-bot's own exceptions, as the outbox and the loops read them."""
    import telegram.error as tg

    from bots.telegram.bot import map_error
    from kanal.errors import PermanentPeerError, RecipientUnreachable, RetryAfter

    blocked = map_error(tg.Forbidden("Forbidden: bot was blocked by the user"))
    assert isinstance(blocked, RecipientUnreachable) and not blocked.retryable
    assert str(PLANTED.chat_id) not in str(blocked)
    flood = map_error(tg.RetryAfter(7))
    assert isinstance(flood, RetryAfter) and flood.seconds == 7.0
    gone = map_error(tg.BadRequest("Bad Request: chat not found"))
    assert isinstance(gone, RecipientUnreachable) and gone.reason == "chat_not_found"
    refused = map_error(tg.BadRequest("Bad Request: message is too long"))
    assert type(refused) is PermanentPeerError and refused.reason == "bad_request"
    for transient in (tg.TimedOut(), tg.NetworkError("Bad Gateway"), tg.Conflict("Conflict")):
        assert map_error(transient).retryable
