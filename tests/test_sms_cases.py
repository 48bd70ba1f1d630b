"""The SMS adapter as tables on the channel kit's harness: numbers, keywords (any case, first
word, common slips), menu words, through ``parse`` and, where it matters, the real engine."""

from __future__ import annotations

import io

import pytest

from bots.core import prompts as p
from bots.core.engine import Engine
from bots.sms.adapter import MoRequest, decode_body, e164, parse, pick
from kanal.categories import CATEGORIES
from kanal.messages import Expects, Inbound
from kanal.redis import Redis
from tests.harness import PLANTED, Case, run_cases

E164 = "+62" + PLANTED.phone[1:]


def mo(text: str, sender: str = PLANTED.phone, mid: str = "k-1") -> MoRequest:
    return MoRequest(sender=sender, receiver="1708", message_id=mid, text=text)


def want(text: str, mid: str = "k-1") -> Inbound:
    return Inbound(channel="sms", user_id=E164, event_id=mid, text=text)


CASES = [
    # numbers: one citizen whichever way the operator writes the number
    Case("08 number", raw=mo("halo"), want_inbound=want("halo")),
    Case("62 number", raw=mo("halo", sender="62" + PLANTED.phone[1:]), want_inbound=want("halo")),
    Case("+62 number", raw=mo("halo", sender=E164), want_inbound=want("halo")),
    Case("0062 number", raw=mo("halo", sender="00" + E164[1:]), want_inbound=want("halo")),
    Case("spaced and dashed", raw=mo("halo", sender="0813-1111 2222"), want_inbound=want("halo")),
    Case("operator name is no citizen", raw=mo("Promo!", sender="TELKOMSEL"), want_inbound=None),
    Case("empty sender", raw=mo("halo", sender=""), want_inbound=None),
    # keywords, any case, as the first word
    Case(
        "LAPOR with a story", raw=mo("LAPOR jalan rusak"), want_inbound=want("/lapor jalan rusak")
    ),
    Case("lapor lowercase", raw=mo("lapor jalan rusak"), want_inbound=want("/lapor jalan rusak")),
    Case("Lapor: with colon", raw=mo("Lapor: banjir"), want_inbound=want("/lapor banjir")),
    Case("LPR slip", raw=mo("LPR sampah"), want_inbound=want("/lapor sampah")),
    Case("LAPOT slip", raw=mo("lapot sampah"), want_inbound=want("/lapor sampah")),
    Case("LAPRO transposed", raw=mo("LAPRO sampah"), want_inbound=want("/lapor sampah")),
    Case("LAPOR alone starts", raw=mo("LAPOR"), want_inbound=want("/start")),
    Case("CEK number", raw=mo("CEK 2400001"), want_inbound=want("/cek 2400001")),
    Case("cek glued", raw=mo("cek2400001"), want_inbound=want("/cek 2400001")),
    Case("CHECK slip", raw=mo("Check 2400001"), want_inbound=want("/cek 2400001")),
    Case("CEK alone", raw=mo("cek"), want_inbound=want("/cek")),
    Case("BATAL", raw=mo("BATAL"), want_inbound=want("/batal")),
    Case("btl slip", raw=mo("btl"), want_inbound=want("/batal")),
    Case("batalkan", raw=mo("batalkan saja"), want_inbound=want("/batal")),
    Case("BANTUAN", raw=mo("BANTUAN"), want_inbound=want("/bantuan")),
    Case("bantuam slip", raw=mo("bantuam"), want_inbound=want("/bantuan")),
    Case("help", raw=mo("help"), want_inbound=want("/bantuan")),
    Case(
        "not a keyword mid-sentence",
        raw=mo("tolong lapor ke RT"),
        want_inbound=want("tolong lapor ke RT"),
    ),
    Case("lapar is no slip", raw=mo("lapar sekali"), want_inbound=want("lapar sekali")),
    Case("number answer untouched", raw=mo("2"), want_inbound=want("2")),
    Case("control characters dropped", raw=mo("halo\x00\x07"), want_inbound=want("halo")),
    # through the engine: the keywords do what they say
    Case(
        "LAPOR asks the story",
        raw=mo("LAPOR", mid="e1"),
        want_reply="ceritakan",
        want_expects=Expects.DESCRIPTION,
    ),
    Case("CEK asks the CRM", raw=mo("CEK 2400001", mid="e2"), want_reply="2400001"),
    Case("BANTUAN explains", raw=mo("bantuan", mid="e3"), want_reply="Cara melapor"),
    Case(
        "BATAL mid-report",
        raw=mo("batal", mid="e5"),
        want_reply="dibatalkan",
        before=(mo("LAPOR pohon tumbang menutup jalan di Jl. Kemang Raya", mid="e4"),),
    ),
]


async def test_sms_cases(engine: Engine, redis: Redis, logs: io.StringIO) -> None:
    await run_cases(CASES, parse, engine=engine, redis=redis, logs=logs)


def test_an_mo_without_id_gets_the_same_id_when_kannel_sends_it_again() -> None:
    a = parse(MoRequest(PLANTED.phone, "1708", "", "halo", ts="2026-01-01 10:00:00"))
    b = parse(MoRequest(PLANTED.phone, "1708", "", "halo", ts="2026-01-01 10:00:00"))
    c = parse(MoRequest(PLANTED.phone, "1708", "", "halo", ts="2026-01-01 10:00:09"))
    assert a and b and c and a.event_id == b.event_id != c.event_id
    assert PLANTED.phone[1:] not in a.event_id


MENU_CATEGORIES = tuple(CATEGORIES.values())


@pytest.mark.parametrize(
    ("text", "choices", "number"),
    [
        ("sampah", MENU_CATEGORIES, "1"),
        ("Jalan rusak", MENU_CATEGORIES, "3"),
        ("LAMPU JALAN.", MENU_CATEGORIES, "4"),
        ("pengemis", MENU_CATEGORIES, "9"),
        ("Lainnya", MENU_CATEGORIES, "12"),
        ("hapus", (p.CHOICE_FORGET, p.CHOICE_KEEP), "1"),
        ("tidak jadi", (p.CHOICE_FORGET, p.CHOICE_KEEP), "2"),
        ("kirim", (p.CHOICE_SEND, p.CHOICE_FIX, p.CHOICE_CANCEL), "1"),
        ("Buat laporan", (p.CHOICE_REPORT, p.CHOICE_STATUS), "1"),
        ("sampah numpuk di jalan", MENU_CATEGORIES, None),
        ("7", MENU_CATEGORIES, None),  # a number is the engine's to read
        ("sampah", (), None),
    ],
)
def test_a_menu_word_picks_its_number(
    text: str, choices: tuple[str, ...], number: str | None
) -> None:
    assert pick(text, choices) == number
    inbound = parse(mo(text), choices=choices)
    assert inbound is not None and inbound.text == (number or inbound.text)


@pytest.mark.parametrize(
    ("body", "ctype", "coding", "text"),
    [
        ("Jalan rusak 😡".encode(), 'text/plain; charset="UTF-8"', "0", "Jalan rusak 😡"),
        ("Jerúk".encode("utf-16-be"), "text/plain; charset=UTF-16BE", "2", "Jerúk"),
        ("Jerúk".encode("utf-16-be"), "application/octet-stream", "2", "Jerúk"),
        ("café".encode("latin-1"), "application/octet-stream", "1", "café"),
        (b"\xff\xfe\xfa", 'text/plain; charset="bogus"', "0", "ÿþú"),
    ],
)
def test_mo_body_decoding_never_crashes(body: bytes, ctype: str, coding: str, text: str) -> None:
    assert decode_body(body, ctype, coding) == text


def test_e164() -> None:
    assert e164("081311112222") == e164("6281311112222") == e164("+62 813-1111-2222") == E164
    assert e164("1708") is None and e164("abc") is None and e164("+") is None
