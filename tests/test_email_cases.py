"""The e-mail adapter as a table of real-world MIME samples (tests/data/email) on the shared
harness: each message, as its mail client writes it, with the Inbound it must become; and the
rendering of a reply (formal register, numbered choices, thread headers)."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

import bots.email
from bots.core import prompts
from bots.core.engine import Engine
from bots.email import Thread, body, event_id, parse, read, render
from kanal.messages import Expects, Inbound, Outbound, PhotoIn
from kanal.redis import Redis
from tests.harness import PLANTED, Case, run_cases
from tests.test_email import CITY, photo_jpeg

SAMPLES = Path(__file__).parent / "data" / "email"


@cache
def photo() -> bytes:
    return photo_jpeg()


def sample(name: str) -> bytes:
    raw = (SAMPLES / f"{name}.eml").read_bytes()
    return raw.replace(b"PHOTO", base64.encodebytes(photo()).rstrip())


def inbound(name: str, sender: str, text: str, photos: int = 0) -> Inbound:
    letter = read(sample(name), own_address=CITY)
    return Inbound(
        channel="email",
        user_id=sender,
        event_id=event_id(letter),
        text=text,
        photos=tuple(PhotoIn(data=photo(), filename=p.filename) for p in letter.photos[:photos]),
        whole=True,
    )


def as_inbound(raw: bytes) -> Inbound | None:
    return parse(read(raw, own_address=CITY))


PARSE_CASES = [
    Case(
        "gmail: a reply in the thread, quoted-printable, Indonesian quote header cut",
        raw=sample("gmail"),
        want_inbound=inbound(
            "gmail",
            "siti.rahma77@contoh.co.id",
            "Lokasinya di Jl. Kramat Sentiong Gg. 7 RT 004/RW 02, Kelurahan Kramat, Kecamatan "
            "Senen. Persis di depan warung nasi uduk.\n\nTerima kasih.",
        ),
    ),
    Case(
        "outlook: windows-1252 declared as us-ascii, signature and its logo cut, photo kept",
        raw=sample("outlook"),
        want_inbound=inbound(
            "outlook",
            "hendra.gunawan@contoh.co.id",
            "Pohon tumbang menimpa kabel\n\nSelamat pagi,\n\nSebuah pohon angsana tumbang dan "
            "menimpa kabel listrik di Jl. Cikini Raya depan Taman Ismail Marzuki, Kelurahan "
            "Cikini, Kecamatan Menteng. Jalan tertutup separuh – mohon segera ditangani.",
            photos=1,
        ),
    ),
    Case(
        "yahoo on android: base64 body, the app's footer cut, photo without a name",
        raw=sample("yahoo_android"),
        want_inbound=inbound(
            "yahoo_android",
            "bambang_sutejo71@yahoo.co.id",
            "banjir sepintang di jl kalibata timur dekat pasar rawajati, kel rawajati kec "
            "pancoran. mobil ga bisa lewat udh 3 jam",
            photos=1,
        ),
    ),
    Case(
        "iphone: an inline photo is a photo, the subject opens the story, emoji kept",
        raw=sample("iphone"),
        want_inbound=inbound(
            "iphone",
            "yohana.mnrg@icloud.com",
            "Lampu jalan mati\n\nLampu PJU di sepanjang Jl. Pangeran Antasari dari perempatan "
            "Cipete sampai depan SPBU mati semua sejak Senin malam 😟",
            photos=1,
        ),
    ),
    Case(
        "a forwarded mail: the forwarded story, without its header lines",
        raw=sample("forwarded"),
        want_inbound=inbound(
            "forwarded",
            "rudi.hartono@contoh.co.id",
            "Got mampet depan sekolah\n\nMohon bantuannya.\n\nPak Rudi, got di depan SDN Kebon "
            "Kosong 05, Jl. Kemayoran Gempol, Kelurahan Kebon\nKosong, Kecamatan Kemayoran "
            "mampet dan airnya meluap ke halaman sekolah tiap hujan.\n\nSalam,\nWulan",
        ),
    ),
    Case(
        "an .eml attached: its text and its photo count",
        raw=sample("eml_attached"),
        want_inbound=inbound(
            "eml_attached",
            "agus.salim@contoh.co.id",
            "Laporan warga (terlampir)\n\nTerlampir laporan dari tetangga saya.\n\nJalan "
            "berlubang besar di Jl. Pramuka depan Pasar Pramuka, Kelurahan Utan Kayu Utara, "
            "Kecamatan Matraman. Sudah dua motor jatuh.",
            photos=1,
        ),
    ),
    Case(
        "html only: readable text, no script, the table's cells on one line",
        raw=sample("html_only"),
        want_inbound=inbound(
            "html_only",
            "kartika.dewi@contoh.co.id",
            "Setiap malam ada parkir liar di trotoar Jl. Sabang, Kelurahan Kebon Sirih, "
            "Kecamatan Menteng.\n\nPejalan kaki terpaksa turun ke jalan.\n\nJam 19.00–23.00",
        ),
    ),
    Case(
        "broken: unknown charset, unclosed boundary, a photo that is no base64",
        raw=sample("broken"),
        want_inbound=inbound(
            "broken",
            "warga@contoh.co.id",
            "Sampah di kali\n\nSampah menumpuk di kali Ciliwung dekat jembatan Jl. Kampung "
            "Melayu Besar.",
        ),
    ),
    Case("an out-of-office is not for us", raw=sample("out_of_office"), want_inbound=None),
    Case(
        "only a PDF: one polite answer", raw=sample("pdf_only"), want_error="tidak dapat kami baca"
    ),
    Case(
        "a complete letter is filed at once, in the formal register",
        raw=sample("outlook"),
        want_reply="Ringkasan laporan",
        want_expects=Expects.NONE,
    ),
    Case(
        "a letter without its kelurahan is asked for the address",
        raw=sample("iphone"),
        want_reply="Mohon Bapak/Ibu menuliskan alamat",
        want_expects=Expects.LOCATION,
    ),
]


async def test_mime_samples_become_the_right_inbound(
    engine: Engine, redis: Redis, logs: io.StringIO
) -> None:
    await run_cases(PARSE_CASES, as_inbound, engine=engine, redis=redis, logs=logs)


def test_the_sender_and_signature_never_reach_the_story() -> None:
    letter = read(
        (
            f"From: {PLANTED.name} <{PLANTED.email}>\r\nTo: {CITY}\r\nSubject: Jalan rusak\r\n"
            f"Message-ID: <p1@contoh.co.id>\r\n\r\nJalan rusak di Jl. Tebet Raya.\r\n\r\n"
            f"Hormat saya,\r\n{PLANTED.name}\r\nHP {PLANTED.phone}\r\n"
        ).encode(),
        own_address=CITY,
    )
    assert letter.sender == PLANTED.email
    for value in (PLANTED.name, PLANTED.phone, PLANTED.email):
        assert value not in letter.story


THREAD = Thread(
    token="K7QM2P",
    subject="Saluran air mampet",
    last_id="<a@warga.example>",
    references=("<root@warga.example>", "<a@warga.example>"),
)


def out(text: str, choices: tuple[str, ...] = ()) -> Outbound:
    return Outbound(channel="email", to=PLANTED.email, conv="c1", text=text, choices=choices)


def test_a_reply_is_a_formal_letter_in_the_thread() -> None:
    msg = render(
        out(
            "Laporan Bapak/Ibu kami golongkan dalam kategori Sampah. Apakah benar?", ("Ya", "Bukan")
        ),
        THREAD,
        sender=CITY,
        now=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
        message_id="<r1@jakarta.go.id>",
    )
    assert str(msg["Subject"]) == "Re: Saluran air mampet [Kanal #K7QM2P]"
    assert str(msg["In-Reply-To"]) == "<a@warga.example>"
    assert str(msg["References"]) == "<root@warga.example> <a@warga.example>"
    assert str(msg["Auto-Submitted"]) == "auto-replied"
    assert str(msg["Message-ID"]) == "<r1@jakarta.go.id>"
    assert str(msg["From"]) == f"Layanan Pengaduan Warga DKI Jakarta <{CITY}>"
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Yth. Bapak/Ibu,\n\n")
    assert "Balas dengan angka 1 untuk Ya\nBalas dengan angka 2 untuk Bukan" in text
    assert text.rstrip().endswith("Pemerintah Provinsi DKI Jakarta")
    assert msg.get_body(preferencelist=("html",)) is not None


def test_the_thread_token_is_random_and_encodes_no_sender() -> None:
    from bots.email.adapter import new_token

    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    alphabet = set("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")  # no 0/O, 1/I to misread
    assert all(len(t) == 6 and set(t) <= alphabet for t in tokens)


@pytest.mark.parametrize("key", sorted(bots.email.FORMAL))
def test_every_formal_sentence_keeps_the_catalogue_fields(key: str) -> None:
    """A formal version may reword a sentence but must take the same fields."""
    import string

    fields = {f for _, f, _, _ in string.Formatter().parse(prompts.MESSAGES[key]) if f}
    formal = {f for _, f, _, _ in string.Formatter().parse(bots.email.FORMAL[key]) if f}
    assert formal <= fields, (key, formal - fields)
    assert "Anda" not in bots.email.FORMAL[key] or "Bapak/Ibu" in bots.email.FORMAL[key]


def test_the_body_numbers_choices_and_links_the_officers_photo() -> None:
    o = Outbound(
        channel="email",
        to="x@y.id",
        conv="c",
        text="Laporan selesai.",
        media_url="https://kanal.example/m/abc.jpg",
    )
    assert "Foto dari petugas: https://kanal.example/m/abc.jpg" in body(o)
