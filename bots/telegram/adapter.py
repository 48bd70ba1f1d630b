"""Telegram adapter: Bot API updates in, Bot API calls out. Pure: no I/O, no clock.

``parse`` reads an update as the Bot API sends it (a dict, from ``getUpdates`` or a webhook);
a photo's bytes are fetched by the worker first (:func:`wanted_file` says which file) and handed
in with the update as a :class:`TelegramUpdate`. ``render`` turns an ``Outbound`` into the
``sendMessage`` / ``sendPhoto`` calls that show it: choices as inline buttons, a location
question with a "📍 Kirim lokasi" button, the keyboard removed when nothing is asked.

The citizen's address is the private chat's id; their name and username are never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bots.core.render import TELEGRAM_LIMIT, split_text, strip_markup
from kanal.errors import BadInput
from kanal.media import MAX_BYTES, MAX_PIXELS
from kanal.messages import Expects, GeoPoint, Inbound, Outbound, PhotoIn

CHANNEL = "telegram"
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
LOCATION_BUTTON = "📍 Kirim lokasi"
# The update types the bot asks for; anything else is not for us.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "channel_post", "my_chat_member")
COMMANDS = (
    ("start", "Mulai laporan baru"),
    ("bantuan", "Cara melapor"),
    ("batal", "Batalkan laporan yang sedang diisi"),
    ("status", "Cek status laporan: /status <nomor>"),
)
PRIVATE_ONLY = (
    "Laporan hanya kami terima lewat chat pribadi agar identitas Anda terlindungi: "
    "buka chat dengan bot ini dan kirim /start."
)
_KINDS: Mapping[str, str] = {
    "sticker": "Maaf, stiker belum bisa kami baca. Silakan ketik pesan Anda.",
    "voice": "Maaf, pesan suara belum bisa kami proses. Silakan ketik pesan Anda.",
    "audio": "Maaf, file audio belum bisa kami proses. Silakan ketik pesan Anda.",
    "video_note": "Maaf, video belum bisa kami proses. Kirim foto atau ketik pesan Anda.",
    "video": "Maaf, video belum bisa kami proses. Kirim foto atau ketik pesan Anda.",
    "animation": "Maaf, GIF belum bisa kami proses. Kirim foto atau ketik pesan Anda.",
    "contact": (
        "Terima kasih, tetapi kami tidak memerlukan kontak. Identitas Anda tidak diteruskan "
        "ke petugas. Silakan lanjutkan laporan Anda."
    ),
    "poll": "Maaf, polling tidak bisa kami proses. Silakan ketik pesan Anda.",
    "dice": "Maaf, pesan itu tidak bisa kami proses. Silakan ketik pesan Anda.",
    "game": "Maaf, pesan itu tidak bisa kami proses. Silakan ketik pesan Anda.",
    "story": "Maaf, story tidak bisa kami proses. Silakan ketik pesan Anda.",
}
EDITED = "Pesan yang diubah tidak kami proses. Kirim ulang sebagai pesan baru, ya."
NOT_A_PHOTO = "Maaf, kami hanya bisa menerima foto (JPG atau PNG). Silakan kirim foto masalahnya."
TOO_LARGE = f"Foto itu terlalu besar. Kirim foto di bawah {MAX_BYTES // (1024 * 1024)} MB."
_CONTENT = ("text", "photo", "document", "location", "venue", "caption")


@dataclass(frozen=True)
class TelegramUpdate:
    """An update with the bytes of the file :func:`wanted_file` named, fetched by the worker."""

    update: dict[str, Any]
    files: Mapping[str, bytes] = field(default_factory=dict)


class TelegramInputError(BadInput):
    """Something we answer with a short polite line (``reply``) in ``chat_id``; ``kind`` is
    what it was (safe to log)."""

    def __init__(self, reply: str, *, chat_id: int, kind: str) -> None:
        super().__init__(kind, reply=reply)
        self.chat_id = chat_id
        self.kind = kind


@dataclass(frozen=True)
class SendCall:
    """One Bot API call: ``method`` and its parameters (``chat_id`` included)."""

    method: str
    params: dict[str, Any]


# ---- in -----------------------------------------------------------------------------------
def update_kind(update: Mapping[str, Any]) -> str:
    """The update's type, e.g. ``message`` or ``callback_query`` (``unknown`` if none)."""
    return next((k for k in update if k != "update_id"), "unknown")


def album_id(update: Mapping[str, Any]) -> str | None:
    """The ``media_group_id`` of a photo that is one of an album, else ``None``."""
    msg = update.get("message")
    if isinstance(msg, Mapping) and msg.get("media_group_id"):
        return f"{_chat(msg).get('id')}:{msg['media_group_id']}"
    return None


def wanted_file(update: Mapping[str, Any]) -> str | None:
    """The ``file_id`` to download for this update (a photo's largest size within the media
    limits, or an image sent as a document), or ``None``. Raises when it is too large."""
    msg = update.get("message")
    if not isinstance(msg, Mapping) or _chat(msg).get("type") != "private":
        return None
    if msg.get("photo"):
        fitting = [
            s
            for s in msg["photo"]
            if int(s.get("file_size") or 0) <= MAX_BYTES
            and int(s.get("width") or 0) * int(s.get("height") or 0) <= MAX_PIXELS
        ]
        if not fitting:
            raise TelegramInputError(TOO_LARGE, chat_id=_chat(msg)["id"], kind="photo_too_large")
        best = max(fitting, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0))
        return str(best["file_id"])
    doc = msg.get("document")
    if isinstance(doc, Mapping) and str(doc.get("mime_type") or "").startswith("image/"):
        if int(doc.get("file_size") or 0) > MAX_BYTES:
            raise TelegramInputError(TOO_LARGE, chat_id=_chat(msg)["id"], kind="photo_too_large")
        return str(doc["file_id"])
    return None


def parse(raw: TelegramUpdate | Mapping[str, Any]) -> Inbound | None:
    """An update as the engine reads it; ``None`` for one where any answer would be noise.

    Raises :class:`TelegramInputError` for what deserves a short reply: stickers, voice,
    video, contacts, polls, edited messages, a group chat (a pointer to the private chat).
    """
    raw = raw if isinstance(raw, TelegramUpdate) else TelegramUpdate(dict(raw))
    update = raw.update
    event_id = str(update["update_id"])
    if "callback_query" in update:
        return _callback(update["callback_query"], event_id)
    if "my_chat_member" in update:
        member = update["my_chat_member"]
        chat = member.get("chat") or {}
        joined = (member.get("new_chat_member") or {}).get("status") in ("member", "administrator")
        if chat.get("type") != "private" and joined:
            raise TelegramInputError(PRIVATE_ONLY, chat_id=chat["id"], kind="group_joined")
        return None  # blocked or unblocked in private: the outbox learns it from a 403
    if "channel_post" in update:
        post = update["channel_post"]
        if str(post.get("text") or "").startswith("/"):
            raise TelegramInputError(PRIVATE_ONLY, chat_id=_chat(post)["id"], kind="channel")
        return None
    if "edited_message" in update:
        msg = update["edited_message"]
        if msg.get("location") or _chat(msg).get("type") != "private":
            return None  # a live location moving on, or an edit in a group: noise
        raise TelegramInputError(EDITED, chat_id=_chat(msg)["id"], kind="edited_message")
    msg = update.get("message")
    if not isinstance(msg, Mapping):
        return None  # an update type we did not ask for
    chat = _chat(msg)
    if chat.get("type") != "private":
        if msg.get("text") or msg.get("photo") or msg.get("location"):
            raise TelegramInputError(PRIVATE_ONLY, chat_id=chat["id"], kind="group")
        return None  # members joining, pinned messages and the like
    user_id = str(chat["id"])
    for kind, reply in _KINDS.items():
        if kind in msg:
            raise TelegramInputError(reply, chat_id=chat["id"], kind=kind)
    text = str(msg.get("text") or msg.get("caption") or "")
    point = _point(msg)
    file_id = wanted_file(update)
    if file_id is not None:
        data = raw.files.get(file_id)
        if data is None:
            raise TelegramInputError(NOT_A_PHOTO, chat_id=chat["id"], kind="photo_missing")
        name = (msg.get("document") or {}).get("file_name") or f"{file_id}.jpg"
        photo = PhotoIn(data=data, filename=str(name))
        return Inbound(
            channel=CHANNEL, user_id=user_id, event_id=event_id, text=text, photos=(photo,)
        )
    if msg.get("document"):
        raise TelegramInputError(NOT_A_PHOTO, chat_id=chat["id"], kind="document")
    if point is not None:
        return Inbound(
            channel=CHANNEL, user_id=user_id, event_id=event_id, text=text, location=point
        )
    if not any(k in msg for k in _CONTENT):
        return None  # a service message (pinned, title changed, …)
    return Inbound(channel=CHANNEL, user_id=user_id, event_id=event_id, text=text)


def merge_album(parts: list[Inbound]) -> Inbound:
    """The photos of one album as one event (the first part's id, the first caption)."""
    first = parts[0]
    photos = tuple(p for part in parts for p in part.photos)
    text = next((part.text for part in parts if part.text), "")
    return first.model_copy(update={"photos": photos, "text": text})


def _callback(query: Mapping[str, Any], event_id: str) -> Inbound | None:
    message = query.get("message") or {}
    chat = _chat(message) if message else {}
    if chat and chat.get("type") != "private":
        raise TelegramInputError(PRIVATE_ONLY, chat_id=chat["id"], kind="group_button")
    chat_id = chat.get("id") or (query.get("from") or {}).get("id")
    if chat_id is None or not query.get("data"):
        return None
    return Inbound(
        channel=CHANNEL, user_id=str(chat_id), event_id=event_id, text=str(query["data"])
    )


def _chat(msg: Mapping[str, Any]) -> dict[str, Any]:
    chat = msg.get("chat")
    return dict(chat) if isinstance(chat, Mapping) else {}


def _point(msg: Mapping[str, Any]) -> GeoPoint | None:
    venue = msg.get("venue")
    loc = venue.get("location") if isinstance(venue, Mapping) else msg.get("location")
    if not isinstance(loc, Mapping):
        return None
    try:
        return GeoPoint(lat=float(loc["latitude"]), lon=float(loc["longitude"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise TelegramInputError(
            "Lokasi itu tidak bisa kami baca. Coba kirim lokasi lagi.",
            chat_id=_chat(msg)["id"],
            kind="bad_location",
        ) from exc


# ---- out ----------------------------------------------------------------------------------
def keyboard(out: Outbound) -> dict[str, Any] | None:
    """The ``reply_markup`` that goes with the message, or ``None`` to leave it as it is."""
    if out.expects == Expects.LOCATION:
        rows: list[list[dict[str, Any]]] = [[{"text": LOCATION_BUTTON, "request_location": True}]]
        rows += [[{"text": c}] for c in out.choices]
        return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": True}
    if out.choices:
        buttons = [
            {"text": c, "callback_data": _callback_data(c, i)} for i, c in enumerate(out.choices, 1)
        ]
        short = all(len(c) <= 12 for c in out.choices) and len(buttons) <= 5
        inline = [buttons] if short else [[b] for b in buttons]
        return {"inline_keyboard": inline}
    if out.kind == "reply":
        return {"remove_keyboard": True}
    return None  # the bridge speaking mid-conversation: leave the citizen's buttons alone


def _callback_data(choice: str, index: int) -> str:
    # The label itself selects it (robust to an old keyboard); its number if it is too long.
    return choice if len(choice.encode()) <= CALLBACK_DATA_LIMIT else str(index)


def render(out: Outbound) -> list[SendCall]:
    """The Bot API calls that show ``out``: plain text (split at 4,096 characters), the
    buttons on the last part, and a photo (the officer's proof) when there is one."""
    chat_id = int(out.to)
    text = strip_markup(out.text)
    markup = keyboard(out)
    calls: list[SendCall] = []
    if out.media_url:
        photo: dict[str, Any] = {"chat_id": chat_id, "photo": out.media_url}
        if len(text) <= CAPTION_LIMIT:
            photo["caption"] = text
            if markup is not None:
                photo["reply_markup"] = markup
            return [SendCall("sendPhoto", photo)]
        calls.append(SendCall("sendPhoto", photo))
    parts = split_text(text, TELEGRAM_LIMIT) or [text or "…"]
    for i, part in enumerate(parts):
        params: dict[str, Any] = {"chat_id": chat_id, "text": part}
        if i == len(parts) - 1 and markup is not None:
            params["reply_markup"] = markup
        calls.append(SendCall("sendMessage", params))
    return calls


__all__ = [
    "ALLOWED_UPDATES",
    "CHANNEL",
    "COMMANDS",
    "LOCATION_BUTTON",
    "PRIVATE_ONLY",
    "SendCall",
    "TelegramInputError",
    "TelegramUpdate",
    "album_id",
    "keyboard",
    "merge_album",
    "parse",
    "render",
    "update_kind",
    "wanted_file",
]
