"""The conversation engine against a real Redis, branch by branch."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from bots.core.engine import Engine
from bots.core.gazetteer import street_detail
from bots.core.sessions import SessionStore, Step
from bridge.submitter import to_open311
from kanal import streams
from kanal.categories import CATEGORIES
from kanal.messages import Complaint, Expects, Outbound
from kanal.redis import Redis
from tests.conftest import Citizen, Clock
from tests.images import jpeg, png

JAKARTA = (-6.2446, 106.8006)  # Kebayoran Baru
BOGOR = (-6.5971, 106.8060)


def last(replies: list[Outbound]) -> Outbound:
    assert replies, "the bot said nothing"
    return replies[-1]


async def complaints(redis: Redis) -> list[Complaint]:
    entries = await redis.xrange(streams.COMPLAINTS)
    return [Complaint.model_validate_json(f["complaint"]) for _, f in entries]


async def file_pothole(c: Citizen) -> list[Outbound]:
    r = await c.say("Min, jalan di depan sekolah berlubang gede bgt, udah 2 motor jatuh")
    out = last(r)
    if out.expects == Expects.CATEGORY:  # confirm or menu: pick "Jalan rusak"
        if out.choices[0] == "Ya":
            r = await c.say("ya")
        else:
            r = await c.say(str(out.choices.index(CATEGORIES["jalan_rusak"]) + 1))
    assert last(r).expects == Expects.LOCATION
    r = await c.share(*JAKARTA)
    assert last(r).expects == Expects.PHOTO
    r = await c.photo(jpeg())
    assert last(r).expects == Expects.PHOTO
    r = await c.say("selesai")
    assert last(r).expects == Expects.CONFIRM
    return await c.say("kirim")


async def test_greeting_then_full_report(citizen: Citizen, redis: Redis, logs: io.StringIO) -> None:
    r = await citizen.say("halo")
    assert "Kanal" in last(r).text and last(r).expects == Expects.DESCRIPTION
    r = await file_pothole(citizen)
    assert "diterima" in last(r).text and last(r).follow_up == 1
    [c] = await complaints(redis)
    assert c.category == "jalan_rusak"
    assert (c.location.lat, c.location.lon) == JAKARTA
    assert c.location.kecamatan == "Kebayoran Baru"
    assert len(c.photos) == 1
    raw = json.dumps(await redis.xrange(streams.COMPLAINTS))
    assert citizen.user not in raw and c.conv.startswith("p_")
    assert citizen.user not in logs.getvalue()
    assert "berlubang" not in logs.getvalue()


async def test_every_message_carries_expects_and_choices(citizen: Citizen) -> None:
    for text in ("halo", "sampah numpuk di pinggir kali", "2"):
        for out in await citizen.say(text):
            assert isinstance(out.expects, Expects)
            assert isinstance(out.choices, tuple)


async def test_menu_fallback_when_nlu_is_lost(citizen: Citizen, redis: Redis) -> None:
    r = await citizen.say("ini gimana sih pak sudah berbulan-bulan")
    out = last(r)
    assert out.expects == Expects.CATEGORY
    assert list(out.choices) == list(CATEGORIES.values())
    r = await citizen.say("4")  # by number
    assert "Lampu penerangan" in r[0].text and last(r).expects == Expects.LOCATION


async def test_choice_by_text(citizen: Citizen) -> None:
    await citizen.say("ini gimana sih pak sudah berbulan-bulan")
    r = await citizen.say("pedagang kaki lima liar")
    assert "Pedagang kaki lima" in r[0].text


async def test_menu_rejects_out_of_range_number(citizen: Citizen) -> None:
    await citizen.say("ini gimana sih pak sudah berbulan-bulan")
    r = await citizen.say("99")
    assert last(r).expects == Expects.CATEGORY and "pilihan" in last(r).text.lower()


async def test_cancel_at_any_step(citizen: Citizen, redis: Redis) -> None:
    await citizen.say("lampu jalan mati di gang kami sudah seminggu")
    r = await citizen.say("batal")
    assert "dibatalkan" in last(r).text
    assert await complaints(redis) == []
    r = await citizen.say("/batal")
    assert "Tidak ada laporan" in last(r).text


async def test_correct_field_by_field(citizen: Citizen, redis: Redis) -> None:
    await file_until_confirm(citizen)
    r = await citizen.say("ubah")
    assert last(r).choices == ("Deskripsi", "Kategori", "Lokasi", "Foto")
    r = await citizen.say("3")  # Lokasi
    assert last(r).expects == Expects.LOCATION
    r = await citizen.say("Jl. Tebet Raya no 10 depan Indomaret, Tebet Barat")
    assert last(r).expects == Expects.CONFIRM, "editing returns to the summary"
    assert "Tebet Barat" in last(r).text
    r = await citizen.say("ubah kategori")
    assert last(r).expects == Expects.CATEGORY
    r = await citizen.say(str(list(CATEGORIES).index("banjir") + 1))
    assert last(r).expects == Expects.CONFIRM and "Banjir" in last(r).text
    await citizen.say("kirim")
    [c] = await complaints(redis)
    assert c.category == "banjir" and c.location.kelurahan == "Tebet Barat"
    assert c.location.lat is None


async def file_until_confirm(c: Citizen) -> None:
    await c.say("sampah menumpuk di pinggir jalan, bau banget")
    out = (await c.say("ya"))[-1]
    if out.expects == Expects.CATEGORY:
        out = (await c.say("1"))[-1]
    assert out.expects == Expects.LOCATION, out
    await c.share(*JAKARTA)
    out = (await c.say("lewati"))[-1]
    assert out.expects == Expects.CONFIRM


async def test_emergency_answers_112_at_once(citizen: Citizen) -> None:
    r = await citizen.say("tolong ada kebakaran rumah di gang sebelah!!")
    assert "112" in r[0].text
    await citizen.say("jalan berlubang di depan pasar")
    r = await citizen.say("ada kecelakaan motor di sini orangnya pingsan")
    assert "112" in r[0].text
    assert last(r).expects != Expects.NONE, "the report in progress continues"


async def test_resume_after_a_pause_and_expiry_after_24h(citizen: Citizen, clock: Clock) -> None:
    await citizen.say("pohon tumbang nutup jalan di depan rumah")
    clock.advance(2 * 3600)
    r = await citizen.say("halo")
    assert last(r).choices == ("Lanjutkan", "Mulai baru")
    r = await citizen.say("1")
    assert last(r).expects in (Expects.CATEGORY, Expects.LOCATION)
    clock.advance(25 * 3600)
    r = await citizen.say("halo")
    assert "24 jam" in r[0].text


async def test_resume_start_over(citizen: Citizen, clock: Clock) -> None:
    await citizen.say("pohon tumbang nutup jalan di depan rumah")
    clock.advance(3600)
    await citizen.say("p")
    r = await citizen.say("mulai baru")
    assert last(r).expects == Expects.DESCRIPTION


async def test_status_check_goes_to_the_bridge(citizen: Citizen, redis: Redis) -> None:
    r = await citizen.say("cek 2400001")
    assert "2400001" in last(r).text and last(r).follow_up == 1
    [(_, fields)] = await redis.xrange(streams.LOOKUPS)
    assert fields["tracking_id"] == "2400001" and fields["conv"].startswith("p_")
    assert citizen.user not in json.dumps(fields)
    r = await citizen.say("/cek")
    assert "nomor laporan" in last(r).text.lower()


async def test_address_without_kelurahan_is_asked_for(citizen: Citizen, redis: Redis) -> None:
    r = await citizen.say("got mampet bikin genangan tiap hujan")
    if last(r).expects == Expects.CATEGORY:  # a matcher that is not sure asks first
        await citizen.say("ya")
    r = await citizen.say("Jl. Mawar no 3, depan musholla")
    assert last(r).expects == Expects.LOCATION and "kelurahan" in last(r).text.lower()
    r = await citizen.say("kelurahan antah berantah")
    assert "tidak saya temukan" in last(r).text
    r = await citizen.say("Kec. Cakung")
    assert last(r).expects == Expects.PHOTO


async def test_a_redelivered_event_gets_its_first_replies_and_runs_once(
    citizen: Citizen, redis: Redis, engine: Engine
) -> None:
    await citizen.say("halo")
    msg = citizen.inbound("sampah numpuk di pinggir kali udah seminggu, bau banget")
    first = await engine.handle(msg)
    conv = engine.keyring.pseudonym("console", citizen.user)
    state = await SessionStore(redis).load(conv)
    again = await engine.handle(msg)
    assert first and again == first  # the same replies, addressed the same way
    assert (await SessionStore(redis).load(conv)) == state  # the state advanced once
    # What is kept for a replay is sealed: neither the reply text nor the address is readable.
    keys = [k async for k in redis.scan_iter("kanal:seen:*")]
    assert len(keys) == 2
    for key in keys:
        sealed = await redis.get(key)
        assert sealed and citizen.user not in sealed and "kategori" not in sealed.lower()


async def test_two_replicas_never_interleave_one_citizen(
    citizen: Citizen, redis: Redis, engine: Engine
) -> None:
    """Two engines (replicas) get photos from one citizen at the same moment: none is lost."""
    replica = Engine(
        sessions=SessionStore(redis),
        nlu=engine.nlu,
        gazetteer=engine.gazetteer,
        media=engine.media,
        keyring=engine.keyring,
        clock=engine.clock,
    )
    await file_until_photo(citizen)
    other = Citizen(replica, user=citizen.user)
    await asyncio.gather(
        citizen.photo(jpeg(10, 10)), other.photo(jpeg(20, 20)), citizen.photo(jpeg(30, 30))
    )
    state = await SessionStore(redis).load(engine.keyring.pseudonym("console", citizen.user))
    assert len(state.draft.photos) == 3
    assert state.step == Step.CONFIRM


# ---- bad input --------------------------------------------------------------------------


async def test_empty_message(citizen: Citizen) -> None:
    r = await citizen.say("   ")
    assert "kosong" in last(r).text


async def test_very_long_message_is_kept_but_bounded(citizen: Citizen, redis: Redis) -> None:
    text = "sampah menumpuk di jalan " + "x" * 5000
    r = await citizen.say(text)
    assert "panjang" in r[0].text
    await citizen.say("ya")
    await citizen.share(*JAKARTA)
    await citizen.say("lewati")
    await citizen.say("kirim")
    [c] = await complaints(redis)
    assert len(c.description) <= 4000


async def test_emoji_only(citizen: Citizen) -> None:
    r = await citizen.say("😡😡🗑️🗑️")
    assert "emoji" in last(r).text


async def test_coordinates_outside_jakarta(citizen: Citizen) -> None:
    await citizen.say("lampu jalan mati semua di komplek")
    await citizen.say("ya")
    r = await citizen.share(*BOGOR)
    assert "luar wilayah DKI Jakarta" in last(r).text and last(r).expects == Expects.LOCATION
    r = await citizen.share(*JAKARTA)
    assert last(r).expects == Expects.PHOTO


async def test_file_that_is_not_an_image(citizen: Citizen, redis: Redis) -> None:
    await file_until_photo(citizen)
    r = await citizen.photo(b"%PDF-1.4 this is not a picture")
    assert "bukan foto" in last(r).text and last(r).expects == Expects.PHOTO
    r = await citizen.photo(png())
    assert "Foto 1 dari 3" in last(r).text


async def file_until_photo(c: Citizen) -> None:
    await c.say("trotoar rusak parah banyak lubang")
    out = (await c.say("ya"))[-1]
    if out.expects == Expects.CATEGORY:
        await c.say("10")
    r = await c.share(*JAKARTA)
    assert last(r).expects == Expects.PHOTO


async def test_three_photos_at_most(citizen: Citizen, redis: Redis) -> None:
    await file_until_photo(citizen)
    for _ in range(2):
        assert last(await citizen.photo(jpeg())).expects == Expects.PHOTO
    r = await citizen.photo(jpeg())
    assert last(r).expects == Expects.CONFIRM


async def test_unknown_command(citizen: Citizen) -> None:
    r = await citizen.say("/hapusdata")
    assert "/hapusdata" in last(r).text and "tidak dikenal" in last(r).text


async def test_a_menu_number_is_not_an_address_and_details_are_kept(
    citizen: Citizen, redis: Redis
) -> None:
    await citizen.say("trotoar depan halte rusak parah")
    out = last(await citizen.say("ya"))
    if out.expects == Expects.CATEGORY:
        await citizen.say("10")
    r = await citizen.say("1")
    assert "wajib" in last(r).text and last(r).expects == Expects.LOCATION
    await citizen.say("Jl. Majapahit no 2")
    r = await citizen.say("di depan halte harmoni")
    assert last(r).expects == Expects.LOCATION
    r = await citizen.say("Gambir")
    assert last(r).expects == Expects.PHOTO
    assert "Jl. Majapahit no 2, di depan halte harmoni" in last(r).text


async def test_correcting_a_trusted_category_at_the_location_question(
    citizen: Citizen, redis: Redis
) -> None:
    r = await citizen.say("jalan rusak berlubang di depan pasar")
    assert last(r).expects == Expects.LOCATION, "trusted, no confirmation"
    r = await citizen.say("bukan, ini soal got mampet")
    assert "Banjir" in r[0].text and last(r).expects == Expects.LOCATION
    r = await citizen.say("salah")
    assert last(r).expects == Expects.CATEGORY and len(last(r).choices) == 12


async def test_a_few_words_that_name_no_problem_are_not_filed(
    citizen: Citizen, redis: Redis
) -> None:
    r = await citizen.say("help")
    assert "Cara melapor" in last(r).text
    r = await citizen.say("mau lapor")
    assert last(r).expects == Expects.DESCRIPTION and "belum menangkap" in last(r).text
    r = await citizen.say("cek status laporan saya")
    assert "nomor laporan" in last(r).text.lower()
    r = await citizen.say("2400001")
    assert "2400001" in last(r).text and last(r).follow_up == 1
    r = await citizen.say("sampah")
    assert last(r).expects in (Expects.CATEGORY, Expects.LOCATION), "one word can be a report"


async def test_the_place_named_in_the_story_is_offered(citizen: Citizen, redis: Redis) -> None:
    r = await citizen.say(
        "Saya mau melaporkan bangunan liar di atas saluran air di Jalan Kemuning Raya RT 005 "
        "RW 03 Kelurahan Pejaten Timur, Kecamatan Pasar Minggu. Mohon ditertibkan."
    )
    if last(r).expects == Expects.CATEGORY:
        r = await citizen.say("ya")
    assert last(r).choices == ("Pakai kelurahan/kecamatan di laporan",)
    r = await citizen.say("1")
    assert last(r).expects == Expects.PHOTO and "Pejaten Timur" in last(r).text


async def test_a_point_sent_at_the_category_menu_is_kept(citizen: Citizen, redis: Redis) -> None:
    r = await citizen.say("ini gimana sih pak sudah berbulan-bulan")
    assert last(r).expects == Expects.CATEGORY
    r = await citizen.share(*JAKARTA)
    assert "Lokasi disimpan" in last(r).text and last(r).expects == Expects.CATEGORY
    r = await citizen.say("1")
    assert last(r).expects == Expects.PHOTO, "the location is not asked again"
    r = await citizen.say("ga ada")
    assert last(r).expects == Expects.CONFIRM
    r = await citizen.say("lanjut")
    assert "diterima" in last(r).text


async def test_the_street_detail_of_the_story_reaches_the_crm(
    citizen: Citizen, redis: Redis
) -> None:
    """ "gang kelinci RT 4 RW 2 kelurahan Pasar Baru" must not reach the officer as only the
    kelurahan and kecamatan."""
    await citizen.say("halo")
    r = await citizen.say("sampah numpuk di gang kelinci RT 4 RW 2 kelurahan Pasar Baru, bau")
    if r[-1].expects == Expects.CATEGORY:
        r = await citizen.say("ya")
    assert r[-1].expects == Expects.LOCATION
    r = await citizen.say("Pakai kelurahan/kecamatan di laporan")
    assert "gang kelinci RT 4 RW 2" in r[-1].text
    await citizen.say("lewati")
    await citizen.say("kirim")
    [(_, fields)] = await redis.xrange(streams.COMPLAINTS)
    c = Complaint.model_validate_json(fields["complaint"])
    form = to_open311(c).form()
    assert form["address_string"].startswith("gang kelinci RT 4 RW 2, Kel. Pasar Baru")
    assert "Sawah Besar" in form["address_string"]


async def test_a_shared_point_keeps_the_landmark_of_the_story(
    citizen: Citizen, redis: Redis
) -> None:
    r = await citizen.say("lampu jalan mati di Jl. Haji Nawi No. 12 depan masjid Al-Ikhlas")
    if r[-1].expects == Expects.CATEGORY:
        await citizen.say("ya")
    await citizen.share(-6.2446, 106.8006)
    await citizen.say("lewati")
    await citizen.say("kirim")
    [(_, fields)] = await redis.xrange(streams.COMPLAINTS)
    form = to_open311(Complaint.model_validate_json(fields["complaint"])).form()
    assert form["lat"] == "-6.2446"
    assert form["address_string"].startswith("Jl. Haji Nawi No. 12 depan masjid Al-Ikhlas")


@pytest.mark.parametrize(
    ("story", "want"),
    [
        ("sampah numpuk di gang kelinci RT 4 RW 2 kelurahan Pasar Baru", "gang kelinci RT 4 RW 2"),
        (
            "got mampet di Gg. Sawo 3 rt 05/rw 02 kel. Cipete Utara udah seminggu",
            "Gg. Sawo 3 rt 05/rw 02",
        ),
        ("Komplek Griya Asri blok C2 no 14 saluran tersumbat", "Komplek Griya Asri blok C2 no 14"),
        (
            "pohon tumbang di jalan Kemang Raya dekat halte busway",
            "jalan Kemang Raya dekat halte busway",
        ),
        ("lampu jalan mati", None),  # "jalan" here is no street
        ("jalan rusak parah berlubang", None),
        ("sampah menumpuk", None),
    ],
)
def test_street_detail(story: str, want: str | None) -> None:
    assert street_detail(story) == want
