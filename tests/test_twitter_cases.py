"""The X adapter as tables: one case per DM shape (on the channel kit's harness, through the real
engine where a reply matters), per mention shape, per rendering; the client's arithmetic of
rate limits and its reading of X's refusals; and the fake X API refusing what the spec refuses.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests

from bots.core.engine import Engine
from bots.twitter import DmIn, MentionShape, parse, public_reply, render
from bots.twitter.adapter import (
    PUBLIC_REPLIES,
    looks_like_report,
    mention_shape,
    mention_text,
)
from bots.twitter.client import BaseUrlSession, Limit, poll_delay, refused, retry_wait
from bridge.sandbox.server import AppServer
from kanal.messages import Expects, Inbound, Outbound, PhotoIn
from kanal.redis import Redis
from nlu.fallback import FallbackNlu, KeywordMatcher
from tests.harness import PLANTED, Case, assert_clean, run_cases
from tests.test_twitter import photo_jpeg
from tests.x_fake import BEARER, BOT_ID, FakeX

USER = PLANTED.chat_id
PHOTO = photo_jpeg()
WHEN = "2025-03-03T01:15:00.000Z"


def dm(
    text: str = "", *, sender: str = USER, eid: str = "1800000000000000001", **kw: Any
) -> dict[str, Any]:
    return {
        "id": eid,
        "event_type": "MessageCreate",
        "sender_id": sender,
        "created_at": WHEN,
        "text": text,
        **kw,
    }


def raw(event: dict[str, Any], *, media: tuple[str, ...] = (), photos: int = 0) -> DmIn:
    """A DM as the worker hands it to parse: its media (by type) and the photos downloaded."""
    from bots.twitter.adapter import MediaRef

    refs = tuple(
        MediaRef(
            media_key=f"3_{i}",
            type=t,
            url=f"https://ton.twitter.com/{i}.jpg" if t == "photo" else None,
        )
        for i, t in enumerate(media)
    )
    if refs:
        event = {**event, "attachments": {"media_keys": [r.media_key for r in refs]}}
    return DmIn(
        event=event,
        own_id=BOT_ID,
        media=refs,
        photos=tuple(PhotoIn(data=PHOTO) for _ in range(photos)),
    )


def inbound(text: str, *, photos: int = 0, eid: str = "1800000000000000001") -> Inbound:
    return Inbound(
        channel="twitter",
        user_id=USER,
        event_id=f"dm:{eid}",
        text=text,
        photos=tuple(PhotoIn(data=PHOTO) for _ in range(photos)),
        received_at=datetime(2025, 3, 3, 1, 15, tzinfo=UTC),
    )


STORY = f"got mampet di depan rumah, banjir tiap hujan. saya {PLANTED.name} wa {PLANTED.phone}"
ADDRESS = "Jl. Tebet Raya no 12, Kelurahan Tebet Barat, Kecamatan Tebet"

CASES = [
    Case(
        "a text DM",
        raw=raw(dm(STORY)),
        want_inbound=inbound(STORY),
        want_reply="lokasinya",
        want_expects=Expects.LOCATION,
        ignore=(),
    ),
    Case("a greeting starts a conversation", raw=raw(dm("halo")), want_reply="Halo! Saya Kanal"),
    Case(
        "a photo alone: X's t.co link for it is dropped",
        raw=raw(dm("https://t.co/AbC123xyz"), media=("photo",), photos=1),
        want_inbound=inbound("", photos=1),
    ),
    Case(
        "a photo with a caption",
        raw=raw(dm("ini fotonya https://t.co/AbC123xyz"), media=("photo",), photos=1),
        want_inbound=inbound("ini fotonya", photos=1),
    ),
    Case(
        "a photo at the photo step is taken",
        raw=raw(
            dm("https://t.co/AbC123xyz", eid="1800000000000000009"), media=("photo",), photos=1
        ),
        before=(
            raw(dm(STORY, eid="1800000000000000007")),
            raw(dm(ADDRESS, eid="1800000000000000008")),
        ),
        want_reply="Foto 1 dari",
    ),
    Case(
        "a photo that is not one gets the media checks' polite answer",
        raw=DmIn(
            event=dm("https://t.co/AbC123xyz", eid="1800000000000000019"),
            own_id=BOT_ID,
            photos=(PhotoIn(data=b"<html>not a picture</html>"),),
        ),
        before=(
            raw(dm(STORY, eid="1800000000000000017")),
            raw(dm(ADDRESS, eid="1800000000000000018")),
        ),
        want_reply="bukan foto",
    ),
    Case(
        "the location question asks for an address, not a shared location",
        raw=raw(dm("lampu jalan mati di depan masjid")),
        want_reply="ketik alamat lengkap",
        want_expects=Expects.LOCATION,
    ),
    Case(
        "our own DM, which dm_events lists too",
        raw=raw(dm("Halo!", sender=BOT_ID)),
        want_inbound=None,
    ),
    Case(
        "a participants event is not a message",
        raw=raw({"id": "1800000000000000002", "event_type": "ParticipantsJoin"}),
        want_inbound=None,
    ),
    Case("an event without a sender", raw=raw(dm("halo", sender="")), want_inbound=None),
    Case(
        "only a video: a polite answer, not a crash",
        raw=raw(dm("https://t.co/AbC123xyz"), media=("video",)),
        want_error="hanya bisa menerima foto",
    ),
    Case(
        "a GIF with text: the text counts",
        raw=raw(dm("sampah numpuk https://t.co/AbC123xyz"), media=("animated_gif",)),
        want_inbound=inbound("sampah numpuk"),
    ),
    Case("emoji only", raw=raw(dm("👍👍")), want_reply="emoji"),
    Case(
        "a link to a tweet stays in the text",
        raw=raw(dm("lihat ini https://twitter.com/x/status/123")),
        want_inbound=inbound("lihat ini https://twitter.com/x/status/123"),
    ),
]


async def test_dm_shapes(engine: Engine, redis: Redis, logs: io.StringIO) -> None:
    await run_cases(CASES, parse, engine=engine, redis=redis, logs=logs)


# ---- mentions -----------------------------------------------------------------------------
OURS = "1700000000000000100"
INCLUDES = {"tweets": [{"id": OURS, "text": "Jadwal", "author_id": BOT_ID}]}


def tweet(text: str, author: str = USER, **kw: Any) -> dict[str, Any]:
    return {"id": "1700000000000000200", "text": text, "author_id": author, **kw}


MENTIONS = [
    (
        "a report",
        tweet(f"@DKIJakarta jalan berlubang besar di Jl. Pramuka, {PLANTED.phone}"),
        MentionShape.CANDIDATE,
        True,
    ),
    (
        "an emergency",
        tweet("@DKIJakarta ada kebakaran di pasar senen!!"),
        MentionShape.CANDIDATE,
        True,
    ),
    (
        "a status question",
        tweet("@DKIJakarta cek status laporan 2400001"),
        MentionShape.CANDIDATE,
        True,
    ),
    (
        "thanks",
        tweet("@DKIJakarta terima kasih min, sampahnya sudah diangkut"),
        MentionShape.CANDIDATE,
        False,
    ),
    ("a greeting", tweet("@DKIJakarta selamat pagi min"), MentionShape.CANDIDATE, False),
    (
        "spam",
        tweet("@DKIJakarta Dapatkan followers gratis! klik link di bio https://t.co/x"),
        MentionShape.CANDIDATE,
        False,
    ),
    (
        "ads",
        tweet("@DKIJakarta Promo pinjol cair 5 menit tanpa jaminan"),
        MentionShape.CANDIDATE,
        False,
    ),
    (
        "a quote of our own tweet, even with a complaint in it",
        tweet(
            "@DKIJakarta sampah di sini juga numpuk",
            referenced_tweets=[{"type": "quoted", "id": OURS}],
        ),
        MentionShape.QUOTE_OF_OURS,
        False,
    ),
    (
        "a quote of someone else's tweet with a report",
        tweet(
            "@DKIJakarta ini jalan rusak parah", referenced_tweets=[{"type": "quoted", "id": "99"}]
        ),
        MentionShape.CANDIDATE,
        True,
    ),
    (
        "a retweet",
        tweet("RT @DKIJakarta: Jadwal", referenced_tweets=[{"type": "retweeted", "id": OURS}]),
        MentionShape.RETWEET,
        False,
    ),
    ("our own tweet", tweet("@DKIJakarta catatan", author=BOT_ID), MentionShape.OWN, False),
    (
        "only handles and a link",
        tweet("@DKIJakarta @BPBDJakarta https://t.co/abc"),
        MentionShape.EMPTY,
        False,
    ),
]


@pytest.mark.parametrize(
    ("label", "raw_tweet", "shape", "invite"), MENTIONS, ids=[m[0] for m in MENTIONS]
)
async def test_mention_shapes(
    label: str,
    raw_tweet: dict[str, Any],
    shape: MentionShape,
    invite: bool,
    matcher: KeywordMatcher,
) -> None:
    assert mention_shape(raw_tweet, INCLUDES, BOT_ID) is shape
    answered = False
    if shape is MentionShape.CANDIDATE:
        assert "@" not in mention_text(raw_tweet) and "https://" not in mention_text(raw_tweet)
        answered = looks_like_report(await FallbackNlu(matcher).parse(mention_text(raw_tweet)))
    assert answered is invite


@pytest.mark.parametrize("tweet_id", ["1", "1700000000000000200", "1899999999999999999", "42"])
def test_the_public_reply_carries_nothing_of_the_mention(tweet_id: str) -> None:
    text = public_reply(tweet_id)
    assert text in PUBLIC_REPLIES and public_reply(tweet_id) == text
    assert "DM" in text and not any(ch.isdigit() for ch in text)
    for word in ("kategori", "lokasi", "nomor", "sampah", "banjir", "jalan", "@"):
        assert word not in text.lower()
    assert len(text) <= 280


# ---- rendering -------------------------------------------------------------------------------
def out(text: str, **kw: Any) -> Outbound:
    return Outbound(channel="twitter", to=USER, conv="c1", text=text, **kw)


RENDER = [
    ("no choices: the text as it is", out("Laporan diterima."), ["Laporan diterima."]),
    (
        "two choices: numbered lines",
        out("Benar?", choices=("Ya", "Tidak")),
        ["Benar?\nBalas 1 untuk Ya\nBalas 2 untuk Tidak"],
    ),
    (
        "many choices: one compact menu",
        out("Pilih kategori:", choices=("Sampah", "Banjir", "Jalan", "Lampu", "Pohon")),
        [
            "Pilih kategori:\nBalas dengan nomornya:\n1. Sampah\n2. Banjir\n3. Jalan\n4. Lampu"
            "\n5. Pohon"
        ],
    ),
    ("markdown becomes plain text", out("Kategori *Sampah*. Benar?"), ["Kategori Sampah. Benar?"]),
    (
        "an officer's photo as a link",
        out("Status: selesai.", media_url="https://kanal.example/media/abc"),
        ["Status: selesai.\n\nFoto dari petugas: https://kanal.example/media/abc"],
    ),
]


@pytest.mark.parametrize(("label", "message", "want"), RENDER, ids=[r[0] for r in RENDER])
def test_render(label: str, message: Outbound, want: list[str]) -> None:
    assert render(message) == want


def test_a_long_reply_is_split_at_the_dm_limit() -> None:
    parts = render(out(("Kalimat yang panjang sekali. " * 400).strip()))
    assert len(parts) == 2 and all(len(p) <= 10_000 for p in parts)


# ---- the client's arithmetic ----------------------------------------------------------------
NOW = 1_790_000_000.0
DELAYS = [
    ("no headers: the base interval", Limit(), 5.0),
    ("plenty left: the base interval", Limit(remaining=900, reset_at=NOW + 900), 5.0),
    ("few left: spread over the window", Limit(remaining=15, reset_at=NOW + 900), 60.0),
    ("none left: until just after the reset", Limit(remaining=0, reset_at=NOW + 120), 120.5),
    ("a reset in the past: the base interval", Limit(remaining=0, reset_at=NOW - 10), 5.0),
    ("never longer than a window", Limit(remaining=0, reset_at=NOW + 86_400), 905.0),
]


@pytest.mark.parametrize(("label", "limit", "want"), DELAYS, ids=[d[0] for d in DELAYS])
def test_poll_delay(label: str, limit: Limit, want: float) -> None:
    assert poll_delay(5.0, limit, NOW) == pytest.approx(want)


def test_a_429_waits_for_its_reset_or_a_minute() -> None:
    assert retry_wait({"x-rate-limit-reset": str(int(NOW + 30))}, NOW) == pytest.approx(30.5)
    assert retry_wait({"x-rate-limit-reset": str(int(NOW - 5))}, NOW) == 1.0
    assert retry_wait({}, NOW) == 60.0


def response(status: int, doc: dict[str, Any] | None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(doc).encode() if doc is not None else b"<html>"
    return r


REFUSALS = [
    (
        "a user who does not accept DMs",
        403,
        {"detail": "You cannot send messages to this user."},
        "forbidden",
    ),
    ("no such user", 404, {"title": "Not Found Error"}, "not_found"),
    (
        "the same tweet twice",
        403,
        {"detail": "You are not allowed to create a Tweet with duplicate content."},
        "duplicate",
    ),
    (
        "an app without DM permission",
        403,
        {"type": "https://api.twitter.com/2/problems/oauth1-permissions"},
        "app_forbidden",
    ),
    ("a bad request", 400, {"title": "Invalid Request"}, "bad_request"),
    ("not JSON at all", 409, None, "http_409"),
]


@pytest.mark.parametrize(
    ("label", "status", "doc", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refusals_have_short_reasons(
    label: str, status: int, doc: dict[str, Any] | None, reason: str
) -> None:
    exc = refused(response(status, doc))
    assert exc.reason == reason and exc.status == status and not exc.retryable


class _Capture(requests.adapters.BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        self.seen.append((str(request.url), kw.get("timeout")))
        return response(200, {})

    def close(self) -> None:
        pass


def test_the_session_sends_tweepys_calls_to_the_base_url_with_a_timeout() -> None:
    session = BaseUrlSession("http://127.0.0.1:9/x-api/", timeout_s=7)
    capture = _Capture()
    session.mount("http://", capture)
    session.mount("https://", capture)
    session.get("https://api.twitter.com/2/dm_events?max_results=100")
    session.get("https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg")
    assert capture.seen == [
        ("http://127.0.0.1:9/x-api/2/dm_events?max_results=100", 7),
        ("https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg", 7),
    ]
    assert requests.Session().get.__func__ is requests.Session.get  # tweepy and requests untouched


# ---- the fake refuses what the spec refuses --------------------------------------------------
async def test_the_fake_x_api_records_every_violation_of_the_spec(logs: io.StringIO) -> None:
    """The checker can fail: the app's bearer token on a DM endpoint, a forged OAuth 1.0a
    signature, a value the spec does not allow and a path it does not have are all refused."""
    fake = FakeX()
    async with AppServer(fake.app()) as server, httpx.AsyncClient(base_url=server.url) as http:
        bearer = {"Authorization": f"Bearer {BEARER}"}
        mentions = await http.get("/2/users/1600000000000000001/mentions", headers=bearer)
        assert mentions.status_code == 200
        assert (await http.get("/2/dm_events", headers=bearer)).status_code == 400
        forged = (
            'OAuth oauth_consumer_key="ck-kanal-test", oauth_token="x", '
            'oauth_signature_method="HMAC-SHA1", oauth_signature="abc", oauth_nonce="1", '
            'oauth_timestamp="1", oauth_version="1.0"'
        )
        got = await http.get("/2/dm_events", headers={"Authorization": forged})
        assert got.status_code == 400
        odd = await http.get(
            "/2/users/1600000000000000001/mentions", params={"max_results": 1000}, headers=bearer
        )
        assert odd.status_code == 400
        assert (await http.get("/2/no_such_thing", headers=bearer)).status_code == 400
    assert len(fake.violations) == 4, fake.violations
    assert "Security" in fake.violations[0] and "Security" in fake.violations[1]
    assert "max_results" in fake.violations[2]
    assert_clean(logs.getvalue())
