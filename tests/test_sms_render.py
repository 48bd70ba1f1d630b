"""Rendering for SMS, as tables: the length, encoding and segment count of every prompt of the
catalogue in its short form (with the menu and the link it is sent with), and how a text outside
GSM-7 is sent. The short forms must fit one SMS with ordinary values; the summary, which carries
the citizen's own words and an upload link, is the one message that knowingly costs two."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bots.core import prompts as p
from bots.core.prompts import FIELD_CHOICES, MESSAGES
from bots.core.render import sms_segments
from bots.sms.catalog import SHORT_MESSAGES, SHORT_NOTICES
from bots.sms.render import encode, render, shorten
from kanal.categories import CATEGORIES
from kanal.messages import Outbound
from kanal.notices import NOTICES

# Ordinary values, the longest of their kind where it matters (the longest category label).
SAMPLE = {
    "question": "",
    "command": "/foto",
    "label": CATEGORIES["fasilitas_umum"],
    "limit": 4000,
    "where": "Jl. Kemang Raya no 10 RT 03, Kel. Bangka, Kec. Mampang Prapatan",
    "n": 1,
    "max": 3,
    "mb": 10,
    "description": "sampah menumpuk di pinggir kali dekat pasar, bau sekali",
    "photos": "tidak ada",
    "tracking_id": "2400001",
    "rating": 5,
    "status": "diteruskan ke kelurahan/dinas",
    "note": "Truk sampah dijadwalkan besok pagi.",
    "url": "https://kanal.jakarta.go.id/media/AbCdEf0123456789",
    "summary": "Ringkasan laporan:\n- Kategori: Sampah & kebersihan",
}
UPLOAD = "https://kanal.jakarta.go.id/u/AbCdEf0123456789"
# The menus the engine sends each prompt with.
CHOICES = {
    "greeting": (p.CHOICE_REPORT, p.CHOICE_STATUS, p.CHOICE_HELP),
    "confirm_category": (p.CHOICE_YES, p.CHOICE_NO),
    "ask_category": tuple(CATEGORIES.values()),
    "ask_location_offer": (p.CHOICE_STORY_PLACE,),
    "ask_photo": (p.CHOICE_SKIP,),
    "photo_received": (p.CHOICE_DONE,),
    "summary": (p.CHOICE_SEND, p.CHOICE_FIX, p.CHOICE_CANCEL),
    "ask_field": FIELD_CHOICES,
    "emergency": (p.CHOICE_REPORT,),
    "resume": (p.CHOICE_CONTINUE, p.CHOICE_RESTART),
    "forget_confirm": (p.CHOICE_FORGET, p.CHOICE_KEEP),
}

# key, characters, encoding, segments: what the city pays for each prompt.
TABLE = [
    ("greeting", 143, "gsm7", 1),
    ("help", 144, "gsm7", 1),
    ("ask_description", 43, "gsm7", 1),
    ("ask_description_again", 87, "gsm7", 1),
    ("empty", 18, "gsm7", 1),
    ("emoji_only", 40, "gsm7", 1),
    ("too_long", 56, "gsm7", 1),
    ("unknown_command", 44, "gsm7", 1),
    ("confirm_category", 52, "gsm7", 1),
    ("ask_category", 160, "gsm7", 1),
    ("category_set", 25, "gsm7", 1),
    ("ask_location", 68, "gsm7", 1),
    ("ask_location_offer", 86, "gsm7", 1),
    ("ask_location_first", 59, "gsm7", 1),
    ("ask_kelurahan", 67, "gsm7", 1),
    ("kelurahan_unknown", 87, "gsm7", 1),
    ("outside_jakarta", 61, "gsm7", 1),
    ("location_set", 72, "gsm7", 1),
    ("ask_photo", 66, "gsm7", 1),
    ("photo_received", 39, "gsm7", 1),
    ("photo_limit", 20, "gsm7", 1),
    ("photo_bad", 62, "gsm7", 1),
    ("photo_expected", 26, "gsm7", 1),
    ("summary", 262, "gsm7", 2),
    ("ask_field", 72, "gsm7", 1),
    ("ask_new_description", 26, "gsm7", 1),
    ("ask_new_photos", 18, "gsm7", 1),
    ("submitted", 87, "gsm7", 1),
    ("submitted_whole", 119, "gsm7", 1),  # said on e-mail only (whole letters)
    ("summary_filed", 158, "gsm7", 1),
    ("tracking", 62, "gsm7", 1),
    ("cancelled", 54, "gsm7", 1),
    ("nothing_to_cancel", 37, "gsm7", 1),
    ("emergency", 123, "gsm7", 1),
    ("resume", 103, "gsm7", 1),
    ("expired", 92, "gsm7", 1),
    ("status_checking", 42, "gsm7", 1),
    ("forget_confirm", 158, "gsm7", 1),
    ("forgotten", 97, "gsm7", 1),
    ("forget_kept", 30, "gsm7", 1),
    ("status_checking_mine", 32, "gsm7", 1),
    ("status_ask_number", 50, "gsm7", 1),
    ("thanks", 45, "gsm7", 1),
    ("off_topic", 90, "gsm7", 1),
    ("choose_please", 27, "gsm7", 1),
    ("rating_thanks", 50, "gsm7", 1),
    ("unavailable", 65, "gsm7", 1),
    ("tracking_sent", 79, "gsm7", 1),
    ("parked", 97, "gsm7", 1),
    ("update", 47, "gsm7", 1),
    ("update_note", 44, "gsm7", 1),
    ("update_reason", 43, "gsm7", 1),
    ("update_proof", 62, "gsm7", 1),
    ("update_photo", 64, "gsm7", 1),
    ("ask_rating", 33, "gsm7", 1),
    ("lookup_owner", 47, "gsm7", 1),
    ("lookup_public", 76, "gsm7", 1),
    ("lookup_unknown", 61, "gsm7", 1),
    ("lookup_pending", 60, "gsm7", 1),
    ("lookup_none", 70, "gsm7", 1),
    ("lookup_unavailable", 47, "gsm7", 1),
]


def _sms(key: str, **values: object):  # type: ignore[no-untyped-def]
    template = MESSAGES.get(key) or NOTICES[key]
    text = template.format(**{**SAMPLE, **values}).strip()
    out = Outbound(
        channel="sms",
        to="+6281200000000",
        conv="c",
        text=text,
        choices=CHOICES.get(key, ()),
        media_url=UPLOAD if key == "summary" else None,
    )
    return render(out)


def test_the_table_covers_the_whole_catalogue() -> None:
    keys = [row[0] for row in TABLE]
    assert sorted(keys) == sorted([*MESSAGES, *NOTICES])
    assert set(SHORT_MESSAGES) == set(MESSAGES) and set(SHORT_NOTICES) == set(NOTICES)


@pytest.mark.parametrize(
    ("key", "length", "encoding", "segments"), TABLE, ids=[r[0] for r in TABLE]
)
def test_every_prompt_in_its_short_form(
    key: str, length: int, encoding: str, segments: int
) -> None:
    sms = _sms(key)
    assert (len(sms.text), sms.encoding, sms.segments) == (length, encoding, segments), sms.text
    assert sms.segments == len(sms_segments(sms.text))
    if key != "summary":
        assert sms.segments == 1 and sms.units <= 160, sms.text
    # A short form is a fixed point: shortening it again changes nothing.
    first_line = sms.text.split("\n")[0]
    assert shorten(first_line) == first_line


@dataclass(frozen=True)
class Long:
    label: str
    key: str
    values: dict[str, object]
    segments: int
    encoding: str = "gsm7"


# Where a citizen's or an officer's words make a text longer than one SMS, it is split knowingly.
LONG = [
    Long("summary with a long story", "summary", {"description": "x " * 300}, 2),
    Long("note of 200 characters", "update_note", {"note": "Catatan petugas. " * 12}, 2),
    Long("note with an emoji: UCS-2", "update_note", {"note": "Sudah beres 👍 " * 6}, 2, "ucs2"),
    Long("an accented name: UCS-2", "update_note", {"note": "Pak Martín"}, 1, "ucs2"),
]


@pytest.mark.parametrize("case", LONG, ids=lambda c: c.label)
def test_long_texts_are_split_knowingly(case: Long) -> None:
    sms = _sms(case.key, **case.values)
    assert (sms.segments, sms.encoding) == (case.segments, case.encoding), sms.text


@dataclass(frozen=True)
class Enc:
    label: str
    text: str
    want: str
    encoding: str


ENCODINGS = [
    Enc("plain", "Jalan rusak di Jl. Sudirman", "Jalan rusak di Jl. Sudirman", "gsm7"),
    Enc("GSM-7 accents stay", "Bu Inés, è ù ì ò", "Bu Inés, è ù ì ò", "gsm7"),
    Enc("curly quotes", "“Sudah” dan ‘belum’", "\"Sudah\" dan 'belum'", "gsm7"),
    Enc("dashes and ellipsis", "Selesai – besok… — ya", "Selesai - besok... - ya", "gsm7"),
    Enc("no-break space", "RT\u00a003", "RT 03", "gsm7"),
    Enc("decomposed accent", "Cafe\u0301", "Café", "gsm7"),
    Enc("emoji", "Terima kasih 🙏", "Terima kasih 🙏", "ucs2"),
    Enc("accent outside GSM-7", "Pak Martín", "Pak Martín", "ucs2"),
    Enc("UCS-2 keeps its quotes", "“Pak Martín”", "“Pak Martín”", "ucs2"),
    Enc("euro costs two septets", "Rp 5.000 bukan €", "Rp 5.000 bukan €", "gsm7"),
]


@pytest.mark.parametrize("case", ENCODINGS, ids=lambda c: c.label)
def test_encoding(case: Enc) -> None:
    sms = encode(case.text)
    assert (sms.text, sms.encoding) == (case.want, case.encoding)
    params = sms.params()
    assert params["charset"] == "utf-8"
    assert (params.get("coding") == "2") is (case.encoding == "ucs2")


def test_free_words_survive_shortening() -> None:
    text = MESSAGES["category_set"].format(label=CATEGORIES["sampah"]) + " Pak RT minta cepat."
    assert shorten(text) == "Kategori: Sampah. Pak RT minta cepat."
    assert shorten("Halo ini teks bebas dari petugas.") == "Halo ini teks bebas dari petugas."
