"""The X (Twitter) adapter: a DM event or a mention in, a DM text or the one public reply out.
Pure: no I/O, no clock, no Redis.

DMs are where a report is made. ``parse`` turns one ``MessageCreate`` event of ``GET
/2/dm_events`` (with the photos the worker downloaded for it) into an :class:`Inbound`; the
bot's own DMs, which ``dm_events`` returns too, and events that are not messages are ``None``.
``render`` writes an :class:`Outbound` as DM texts: plain text, choices as numbered lines, an
officer's photo as a link, split at the DM limit.

A public mention is never a conversation. :func:`mention_shape` says whether a mention could be
a report at all (not our own tweet, not a retweet, not a quote of one of our tweets); the worker
asks NLU whether it reads like one (:func:`looks_like_report`) and then posts
:func:`public_reply`: an invitation to continue by DM that carries no detail, no category, no
location, no tracking number and never quotes the citizen.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bots.core import prompts
from bots.core.render import X_DM_LIMIT, split_text, strip_markup, with_menu
from kanal.errors import BadInput
from kanal.messages import Inbound, Outbound, PhotoIn
from nlu.types import Understanding

CHANNEL = "twitter"

# X DMs carry no shared location (v2 has no location message): ask for an address.
DM_REGISTER = {
    "ask_location": (
        "Di mana lokasinya? Ketik alamat lengkap dengan nama jalan, patokan, dan "
        "kelurahan/kecamatan."
    ),
    "ask_location_offer": (
        "Di mana lokasinya? Pilih di bawah, atau ketik alamat lengkap dengan nama jalan dan "
        "kelurahan/kecamatan."
    ),
    "ask_location_first": (
        "Lokasi wajib diisi agar petugas bisa menemukan masalahnya. Ketik alamat lengkap "
        "dengan nama jalan dan kelurahan/kecamatan."
    ),
}
prompts.register(CHANNEL, DM_REGISTER)

NOT_A_PHOTO = (
    "Maaf, kami hanya bisa menerima foto (JPG atau PNG), bukan video atau GIF. Kirim fotonya, "
    "atau ceritakan masalahnya dengan tulisan."
)

# The one public reply. Several wordings: X refuses a tweet whose text equals a recent one of
# the same account, and the invitation is the same for everyone. None of them says anything
# about the mention it answers.
PUBLIC_REPLIES = (
    "Terima kasih telah menghubungi kami. Agar data Anda aman, mohon lanjutkan laporan "
    "melalui Direct Message (DM) ke akun ini. Kami tunggu pesan Anda.",
    "Halo, terima kasih. Untuk melapor, silakan kirim DM ke akun ini; petugas kami akan "
    "memandu laporan Anda di sana, tanpa menampilkan data Anda di publik.",
    "Terima kasih atas informasinya. Mohon kirimkan laporan lengkap melalui DM ke akun ini "
    "agar dapat kami proses dan data Anda tetap terlindungi.",
    "Halo! Kami menerima laporan warga lewat DM. Silakan kirim pesan langsung (DM) ke akun "
    "ini, kami bantu dari sana.",
)

_MENTION = re.compile(r"(?<![\w@])@\w{1,15}")
_URL = re.compile(r"https?://\S+")
# Intents that mean the citizen wants something from the city: worth an invitation to DM.
REPORT_INTENTS = frozenset({"lapor", "darurat", "cek_status"})
# A public reply is visible to everyone: only when NLU is fairly sure (spam reads like a report
# to a keyword matcher, at low confidence).
REPORT_CONFIDENCE = 0.6


@dataclass(frozen=True)
class MediaRef:
    """One attachment of a DM, as ``includes.media`` describes it."""

    media_key: str
    type: str
    url: str | None = None


@dataclass(frozen=True)
class DmIn:
    """One DM event with what the worker fetched for it: the raw ``dm_events`` item, the media
    it references, the bot's own user id, and the photos downloaded (with user-context auth)."""

    event: Mapping[str, Any]
    own_id: str
    media: tuple[MediaRef, ...] = ()
    photos: tuple[PhotoIn, ...] = ()


class MentionShape(StrEnum):
    OWN = "own"  # our own tweet
    RETWEET = "retweet"  # a retweet: nobody wrote anything to us
    QUOTE_OF_OURS = "quote_of_ours"  # someone quoting one of our tweets
    EMPTY = "empty"  # only @handles and links
    CANDIDATE = "candidate"  # could be a report: ask NLU


def event_id(event: Mapping[str, Any]) -> str:
    return f"dm:{event['id']}"


def dm_media(event: Mapping[str, Any], includes: Mapping[str, Any]) -> tuple[MediaRef, ...]:
    """The attachments of ``event``, looked up in ``includes.media``, in the DM's order."""
    keys = [str(k) for k in (event.get("attachments") or {}).get("media_keys") or ()]
    known = {str(m.get("media_key")): m for m in includes.get("media") or () if m}
    out = []
    for key in keys:
        m = known.get(key)
        if m is None:
            out.append(MediaRef(media_key=key, type="unknown"))
        else:
            url = m.get("url")
            out.append(MediaRef(media_key=key, type=str(m.get("type", "")), url=url or None))
    return tuple(out)


def photo_refs(media: Sequence[MediaRef], max_photos: int) -> list[MediaRef]:
    """The attachments worth downloading: photos with a URL, at most ``max_photos``."""
    return [m for m in media if m.type == "photo" and m.url][:max_photos]


def parse(dm: DmIn) -> Inbound | None:
    """The DM as the engine reads it; ``None`` for our own DMs and for non-message events.
    A DM with nothing but a video or a GIF raises :class:`BadInput` with a polite reply."""
    ev = dm.event
    if ev.get("event_type") != "MessageCreate":
        return None
    sender = str(ev.get("sender_id") or "")
    if not sender or sender == dm.own_id:
        return None
    text = _without_media_links(str(ev.get("text") or ""), len(dm.media))
    if not text and not dm.photos and dm.media:
        raise BadInput("only unusable media", reply=NOT_A_PHOTO)
    return Inbound(
        channel=CHANNEL,
        user_id=sender,
        event_id=event_id(ev),
        text=text,
        photos=dm.photos,
        received_at=_created(ev.get("created_at")),
    )


def _without_media_links(text: str, media: int) -> str:
    """X appends a t.co link for each attachment to a DM's text: drop those trailing links."""
    text = text.strip()
    for _ in range(media):
        m = re.search(r"\s*https://t\.co/\w+$", text)
        if not m:
            break
        text = text[: m.start()].rstrip()
    return text


def _created(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def render(out: Outbound) -> list[str]:
    """The DM texts for ``out``: plain text, numbered choices, an officer's photo as a link."""
    text = with_menu(strip_markup(out.text).strip(), out.choices)
    if out.media_url:
        text = f"{text}\n\nFoto dari petugas: {out.media_url}"
    return split_text(text, X_DM_LIMIT)


# ---- mentions -------------------------------------------------------------------------------
def mention_text(tweet: Mapping[str, Any]) -> str:
    """The words of a mention without @handles and links (what NLU reads)."""
    text = _URL.sub(" ", str(tweet.get("text") or ""))
    text = _MENTION.sub(" ", text)
    return " ".join(text.split())


def mention_shape(
    tweet: Mapping[str, Any], includes: Mapping[str, Any], own_id: str
) -> MentionShape:
    if str(tweet.get("author_id") or "") == own_id:
        return MentionShape.OWN
    refs = tweet.get("referenced_tweets") or ()
    if any(r.get("type") == "retweeted" for r in refs):
        return MentionShape.RETWEET
    authors = {str(t.get("id")): str(t.get("author_id") or "") for t in _tweets(includes)}
    for r in refs:
        if r.get("type") == "quoted" and authors.get(str(r.get("id"))) == own_id:
            return MentionShape.QUOTE_OF_OURS
    if not re.search(r"\w", mention_text(tweet)):
        return MentionShape.EMPTY
    return MentionShape.CANDIDATE


def _tweets(includes: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in includes.get("tweets") or () if isinstance(t, Mapping)]


def looks_like_report(u: Understanding) -> bool:
    """Whether a public mention asks something of the city (a report, an emergency, a status
    question): it deserves the invitation to DM. Thanks, greetings, chatter and spam do not."""
    return u.intent in REPORT_INTENTS and u.confidence >= REPORT_CONFIDENCE


def public_reply(tweet_id: str) -> str:
    """The invitation to DM for the mention ``tweet_id`` (the same one for the same mention)."""
    digest = hashlib.sha256(tweet_id.encode()).digest()
    return PUBLIC_REPLIES[digest[0] % len(PUBLIC_REPLIES)]


def deep_link(own_id: str) -> str:
    """The link X shows under a tweet as "Send a private message" to the bot."""
    return f"https://twitter.com/messages/compose?recipient_id={own_id}"


@dataclass(frozen=True)
class Page:
    """One page of a timeline (``dm_events`` or mentions), newest first as X returns it."""

    items: tuple[Mapping[str, Any], ...] = ()
    includes: Mapping[str, Any] = field(default_factory=dict)
    next_token: str | None = None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Page:
        data = doc.get("data") or ()
        meta = doc.get("meta") or {}
        return cls(
            items=tuple(d for d in data if isinstance(d, Mapping) and d.get("id")),
            includes=doc.get("includes") or {},
            next_token=meta.get("next_token") or None,
        )


def newer(a: str, b: str | None) -> bool:
    """Whether snowflake id ``a`` is newer than ``b`` (``None``: nothing seen yet)."""
    if b is None:
        return True
    return (len(a), a) > (len(b), b)


__all__ = [
    "CHANNEL",
    "DM_REGISTER",
    "NOT_A_PHOTO",
    "PUBLIC_REPLIES",
    "REPORT_CONFIDENCE",
    "REPORT_INTENTS",
    "DmIn",
    "MediaRef",
    "MentionShape",
    "Page",
    "deep_link",
    "dm_media",
    "event_id",
    "looks_like_report",
    "mention_shape",
    "mention_text",
    "newer",
    "parse",
    "photo_refs",
    "public_reply",
    "render",
]
