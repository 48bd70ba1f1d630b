"""Table tests of the rendering helpers every channel shares."""

from __future__ import annotations

import pytest

from bots.core.prompts import MESSAGES
from bots.core.render import (
    SMS_SEGMENT,
    TELEGRAM_LIMIT,
    X_DM_LIMIT,
    menu_lines,
    sms_encoding,
    sms_segments,
    sms_units,
    split_text,
    strip_html,
    strip_markup,
    with_menu,
)
from kanal.categories import CATEGORIES

MENUS = [
    ("two choices", ["Ya", "Bukan"], None, ["Balas 1 untuk Ya", "Balas 2 untuk Bukan"]),
    ("no choices", [], None, []),
    (
        "many choices are compact",
        ["a", "b", "c", "d", "e"],
        None,
        ["Balas dengan nomornya:", "1. a", "2. b", "3. c", "4. d", "5. e"],
    ),
    (
        "compact on request",
        ["Kirim", "Ubah"],
        True,
        ["Balas dengan nomornya:", "1. Kirim", "2. Ubah"],
    ),
]


@pytest.mark.parametrize(("label", "choices", "compact", "want"), MENUS, ids=[m[0] for m in MENUS])
def test_menu_lines(label: str, choices: list[str], compact: bool | None, want: list[str]) -> None:
    assert menu_lines(choices, compact=compact) == want


def test_with_menu_puts_the_choices_under_the_text() -> None:
    assert with_menu("Benar?", ["Ya", "Bukan"]) == "Benar?\nBalas 1 untuk Ya\nBalas 2 untuk Bukan"
    assert with_menu("Halo", []) == "Halo"
    assert len(with_menu("Pilih kategori:", list(CATEGORIES.values())).splitlines()) == 14


LOREM = (
    "Sampah menumpuk di pinggir kali dekat jembatan. Baunya sampai ke rumah warga.\n\n"
    "Sudah seminggu tidak diangkut, padahal truk biasanya lewat setiap Selasa dan Jumat. "
    "Mohon segera ditangani karena musim hujan sudah dekat dan saluran bisa tersumbat."
)

SPLITS = [
    ("fits", "halo", 10, ["halo"]),
    ("empty", "   ", 10, []),
    ("at a space", "satu dua tiga empat", 9, ["satu dua", "tiga", "empat"]),
    ("a word longer than the limit is cut", "abcdefghij", 4, ["abcd", "efgh", "ij"]),
    ("at a paragraph", LOREM, 120, None),
    ("at a sentence", LOREM, 60, None),
]


@pytest.mark.parametrize(("label", "text", "limit", "want"), SPLITS, ids=[s[0] for s in SPLITS])
def test_split_text(label: str, text: str, limit: int, want: list[str] | None) -> None:
    parts = split_text(text, limit)
    if want is not None:
        assert parts == want
    assert all(0 < len(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())  # nothing lost or doubled


def test_split_prefers_the_paragraph_then_the_sentence() -> None:
    first, *_ = split_text(LOREM, 120)
    assert first.endswith("rumah warga."), first
    first, *_ = split_text(LOREM, 60)
    assert first.endswith("."), first


@pytest.mark.parametrize("limit", [TELEGRAM_LIMIT, X_DM_LIMIT])
def test_platform_limits(limit: int) -> None:
    text = (LOREM + "\n\n") * 80
    parts = split_text(text, limit)
    assert len(parts) > 1 and all(len(p) <= limit for p in parts)


SMS = [
    ("plain Indonesian is GSM-7", "Laporan Anda tercatat dengan nomor 2400001.", "gsm7", 43),
    ("the euro sign costs two septets", "Biaya 5€", "gsm7", 9),
    ("brackets cost two", "[Kanal]", "gsm7", 9),
    ("an emoji needs UCS-2 (a surrogate pair: 2 units)", "Terima kasih 🙏", "ucs2", 15),
    ("curly quotes need UCS-2", "“lampu mati”", "ucs2", 12),
    ("é is in GSM-7", "café", "gsm7", 4),
    ("ñ is in GSM-7", "niño", "gsm7", 4),
]


@pytest.mark.parametrize(("label", "text", "encoding", "units"), SMS, ids=[s[0] for s in SMS])
def test_sms_encoding_and_units(label: str, text: str, encoding: str, units: int) -> None:
    assert sms_encoding(text) == encoding
    assert sms_units(text) == units


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("kata " * 61, 2),  # 304 septets: two segments of at most 153
        ("€" * 100, 2),  # 200 septets; an escape pair is never cut in two
        ("🙏" * 35, 1),  # 70 UTF-16 units
        ("kata 🙏 " * 20, 3),  # UCS-2: 67 units per segment
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    parts = sms_segments(text)
    assert len(parts) == segments
    enc = sms_encoding(text)
    assert "".join(parts) == text.strip() or "".join(parts) == text
    if segments > 1:
        assert all(sms_units(p, enc) <= SMS_SEGMENT[enc] for p in parts)


def test_every_prompt_is_counted_in_segments() -> None:
    for key, template in MESSAGES.items():
        text = template.replace("{", "").replace("}", "")
        assert sms_segments(text), key


MARKUP = [
    (
        "bold as the engine writes it",
        "kategori *Sampah & kebersihan*. Benar?",
        "kategori Sampah & kebersihan. Benar?",
    ),
    ("double asterisks", "**Penting**: bawa KTP", "Penting: bawa KTP"),
    ("code", "ketik `cek 2400001`", "ketik cek 2400001"),
    ("link keeps its address", "Lihat [peta](https://peta.id/x)", "Lihat peta (https://peta.id/x)"),
    ("bare link", "https://pengaduanwarga.jakarta.go.id", "https://pengaduanwarga.jakarta.go.id"),
    ("numbered lines stay", "1) ceritakan\n2) kirim lokasi", "1) ceritakan\n2) kirim lokasi"),
    ("bullets stay", "- Kategori: Sampah\n- Foto: 1 foto", "- Kategori: Sampah\n- Foto: 1 foto"),
    ("snake_case stays", "kode jalan_rusak", "kode jalan_rusak"),
    (
        "html tags go",
        "Halo <b>warga</b>,<br>terima kasih &amp; salam",
        "Halo warga,\nterima kasih & salam",
    ),
    (
        "an address with a number",
        "Jl. Kemang Raya No. 5, RT 03/RW 02",
        "Jl. Kemang Raya No. 5, RT 03/RW 02",
    ),
]


@pytest.mark.parametrize(("label", "text", "want"), MARKUP, ids=[m[0] for m in MARKUP])
def test_strip_markup(label: str, text: str, want: str) -> None:
    assert strip_markup(text) == want


def test_strip_html_drops_scripts_and_keeps_paragraphs() -> None:
    html = "<p>Sampah menumpuk.</p><script>alert(1)</script><p>Mohon diangkut.</p>"
    assert strip_html(html) == "Sampah menumpuk.\n\nMohon diangkut."
