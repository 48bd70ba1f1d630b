"""One handler per conversation step. Each reads the turn, updates the draft and asks next."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bots.core import prompts as p
from bots.core.context import TurnContext as _Turn
from bots.core.gazetteer import story_address
from bots.core.sessions import Draft, Step
from kanal.categories import CATEGORIES, CODES, label
from kanal.messages import Expects
from nlu.normalize import normalize
from nlu.types import Understanding

_DONE_WORDS = frozenset({"selesai", "cukup", "sudah", "lanjut", "done", "next", "sudah cukup"})
_YES_WORDS = frozenset(
    {
        "ya",
        "iya",
        "y",
        "yes",
        "yup",
        "yap",
        "ok",
        "oke",
        "okay",
        "benar",
        "betul",
        "kirim",
        "sip",
        "siap",
        "sudah",
        "lanjut",
        "lanjutkan",
        "gas",
        "setuju",
        "mantap",
        "boleh",
        "sudah benar",
        "benar semua",
        "betul semua",
        "iya benar",
        "ya benar",
        "ok kirim",
        "oke kirim",
        "kirim saja",
        "kirim aja",
        "ya kirim",
    }
)
_NO_WORDS = frozenset({"tidak", "bukan", "no", "salah", "n"})
_LABEL_BY_TEXT = {normalize(v): k for k, v in CATEGORIES.items()}


def _is_yes(t: _Turn, picked: str | None) -> bool:
    return (
        picked in (p.CHOICE_YES, p.CHOICE_SEND, p.CHOICE_CONTINUE)
        or normalize(t.text) in _YES_WORDS
    )


def _is_no(t: _Turn, picked: str | None) -> bool:
    return picked in (p.CHOICE_NO, p.CHOICE_FIX) or normalize(t.text) in _NO_WORDS


async def _is_skip(t: _Turn, picked: str | None) -> bool:
    if picked in (p.CHOICE_SKIP, p.CHOICE_DONE):
        return True
    words = normalize(t.text)
    if words in _DONE_WORDS or words in {"lewati", "lewat", "skip", "tidak ada"}:
        return True
    if len(words.split()) > 6:
        return False
    u = await t.understand()
    return u.intent == "lewati" and u.confidence >= 0.4


async def _category_in_text(t: _Turn) -> str | None:
    """A category the citizen named: a code, a label, or what NLU is fairly sure of."""
    words = normalize(t.text)
    if not words:
        return None
    code = words.replace(" ", "_")
    if code in CODES:
        return code
    if words in _LABEL_BY_TEXT:
        return _LABEL_BY_TEXT[words]
    u = await t.understand()
    if u.category and u.category_confidence >= 0.3 and u.intent in ("lapor", "di_luar_topik"):
        return u.category
    return None


async def idle(t: _Turn) -> None:
    picked = t.choice()
    if picked == p.CHOICE_STATUS:
        t.say(p.say("status_ask_number"))
        return
    if picked == p.CHOICE_HELP:
        t.ask(p.say("help"))
        return
    d = t.state.draft
    if (t.inbound.photos or t.inbound.location is not None) and not (t.inbound.whole and t.text):
        t.state.step = Step.DESCRIPTION
        await _attachments_then_ask(t)
        return
    if picked == p.CHOICE_REPORT:
        t.state.step = Step.DESCRIPTION
        t.ask()
        return
    u = await t.understand()
    few = len(t.text.split()) <= 3
    if u.intent == "terima_kasih" and few:
        t.say(p.say("thanks"))
        return
    if u.intent in ("salam", "konfirmasi_ya", "konfirmasi_tidak", "lewati", "nilai") and few:
        t.state.step = Step.DESCRIPTION
        t.say(
            p.say("greeting"),
            Expects.DESCRIPTION,
            (p.CHOICE_REPORT, p.CHOICE_STATUS, p.CHOICE_HELP),
        )
        return
    if u.intent == "di_luar_topik" and u.confidence >= 0.5 and not u.category_confidence >= 0.5:
        t.say(p.say("off_topic", question=p.say("ask_description")), Expects.DESCRIPTION)
        t.state.step = Step.DESCRIPTION
        return
    del d
    t.state.step = Step.DESCRIPTION
    if not _not_a_story(t, u):
        await t.take_description(u)


async def description(t: _Turn) -> None:
    picked = t.choice()
    if picked == p.CHOICE_REPORT:
        t.ask()
        return
    if picked == p.CHOICE_STATUS:
        t.say(p.say("status_ask_number"))
        return
    if picked == p.CHOICE_HELP:
        t.ask(p.say("help"))
        return
    if not t.text:
        await _attachments_then_ask(t)
        return
    if t.inbound.photos or t.inbound.location is not None:
        await _attachments_then_ask(t, quiet=True)
    u = await t.understand()
    few = len(t.text.split()) <= 3
    if not t.state.editing and few and u.intent in ("salam", "terima_kasih"):
        t.say(
            p.say("greeting"),
            Expects.DESCRIPTION,
            (p.CHOICE_REPORT, p.CHOICE_STATUS, p.CHOICE_HELP),
        )
        return
    if (
        not t.state.editing
        and u.intent == "di_luar_topik"
        and u.confidence >= 0.7
        and (u.category_confidence < LOW)
    ):
        t.ask(p.say("off_topic", question="").strip())
        return
    if t.state.editing or not _not_a_story(t, u):
        await t.take_description(u)


LOW = 0.3


def _not_a_story(t: _Turn, u: Understanding) -> bool:
    """Answer a few words that name no problem ("help", "mau lapor", "assalamualaikum") instead
    of filing them as the report's description; True when the citizen has been answered."""
    if len(t.text.split()) > 3 or (u.category and u.category_confidence >= LOW):
        return False
    if u.intent == "bantuan":
        t.say(p.say("help"), Expects.DESCRIPTION, (p.CHOICE_REPORT, p.CHOICE_STATUS))
    elif u.intent == "cek_status":
        t.say(p.say("status_ask_number"), Expects.DESCRIPTION)
    elif u.intent == "lapor":
        t.say(p.say("ask_description_again"), Expects.DESCRIPTION)
    else:
        choices = (p.CHOICE_REPORT, p.CHOICE_STATUS, p.CHOICE_HELP)
        t.say(p.say("greeting"), Expects.DESCRIPTION, choices)
    return True


async def _attachments_then_ask(t: _Turn, *, quiet: bool = False) -> None:
    """Keep a photo or a shared point that came before the story, then ask for the story."""
    if t.inbound.location is not None and t.set_point():
        return  # outside Jakarta: already told
    if t.inbound.photos and not await t.take_photos():
        t.say(p.say("photo_bad", mb=10), Expects.DESCRIPTION)
        return
    if not quiet:
        t.ask()


async def _keep_attachments(t: _Turn) -> bool:
    """A point or photo sent while the bot asks something else: keep it, ask again."""
    if t.inbound.location is None and not t.inbound.photos:
        return False
    if t.inbound.location is not None and t.set_point():
        return True  # outside Jakarta: already told
    ok = await t.take_photos() if t.inbound.photos else True
    kept = "Lokasi disimpan." if t.inbound.location is not None else "Foto disimpan."
    t.ask(kept if ok else p.say("photo_bad", mb=10))
    return True


async def category_confirm(t: _Turn) -> None:
    if await _keep_attachments(t):
        return
    picked = t.choice()
    d = t.state.draft
    if _is_yes(t, picked):
        d.category = d.category_guess
        t.next(p.say("category_set", label=label(d.category or "lainnya")))
        return
    named = await _category_in_text(t) if not _is_no(t, picked) else None
    if named:
        d.category = named
        t.next(p.say("category_set", label=label(named)))
        return
    if _is_no(t, picked) or t.text:
        t.state.step = Step.CATEGORY
        t.ask()
        return
    t.ask()


async def category(t: _Turn) -> None:
    if await _keep_attachments(t):
        return
    picked = t.choice()
    code = _LABEL_BY_TEXT.get(normalize(picked)) if picked else await _category_in_text(t)
    if code:
        t.state.draft.category = code
        t.next(p.say("category_set", label=label(code)))
        return
    t.ask(p.say("choose_please", question="").strip())


async def location(t: _Turn) -> None:
    d = t.state.draft
    if (
        d.kecamatan
        and not d.address
        and d.lat is None
        and (t.choice() == p.CHOICE_STORY_PLACE or (not d.photo_gps and _is_yes(t, None)))
    ):
        # The story named the kelurahan/kecamatan and the citizen takes it as the location,
        # with the street-level detail it gave (gang, RT/RW, a landmark) for the officer.
        d.address = story_address(d.description, d.kelurahan, d.kecamatan)
        t.next(p.say("location_set", where=t.where()))
        return
    if d.photo_gps and (t.choice() == p.CHOICE_PHOTO_GPS or _is_yes(t, None)):
        d.lat, d.lon = d.photo_gps
        d.photo_gps = None
        area = t.e.gazetteer.locate(d.lat, d.lon)
        if area:
            d.kelurahan, d.kecamatan, d.kota = area.kelurahan, area.kecamatan, area.kota
        t.next(p.say("location_set", where=t.where()))
        return
    if t.inbound.location is not None:
        if t.set_point():
            return
        t.next(p.say("location_set", where=t.where()))
        return
    if t.inbound.photos and not t.text:
        ok = await t.take_photos()
        t.ask("Foto disimpan." if ok else p.say("photo_bad", mb=10))
        return
    if t.text and normalize(t.text).split()[0] in {"bukan", "salah"}:
        # "bukan, ini soal got mampet": the category the bot trusted was wrong.
        named = await _category_in_text(t)
        if named and named != d.category:
            d.category = named
            t.next(p.say("category_set", label=label(named)))
        else:
            t.state.step = Step.CATEGORY
            t.ask()
        return
    if not t.text or await _is_skip(t, None) or await _not_an_address(t):
        t.say(p.say("ask_location_first"), Expects.LOCATION)
        return
    area = t.e.gazetteer.find_in_text(t.text)
    d.address = t.text[:300]
    if area:
        d.kelurahan, d.kecamatan, d.kota = area.kelurahan, area.kecamatan, area.kota
    if d.kecamatan:
        t.next(p.say("location_set", where=t.where()))
    else:
        t.state.step = Step.KELURAHAN
        t.ask()


async def _not_an_address(t: _Turn) -> bool:
    """A yes, a thank-you or a greeting where an address was asked for."""
    words = normalize(t.text)
    if words in _YES_WORDS or words in _NO_WORDS:
        return True
    tokens = words.split()
    if len(tokens) == 1 and (tokens[0].isdigit() or len(tokens[0]) <= 2):
        return True  # "1", "ok", "p": a menu answer, not a place
    if len(tokens) > 3 or any(ch.isdigit() for ch in words):
        return False
    if t.e.gazetteer.find_in_text(t.text):
        return False
    u = await t.understand()
    return u.intent in {"konfirmasi_ya", "konfirmasi_tidak", "salam", "terima_kasih", "nilai"}


async def kelurahan(t: _Turn) -> None:
    d = t.state.draft
    if t.inbound.location is not None:
        if t.set_point():
            return
        t.next(p.say("location_set", where=t.where()))
        return
    area = t.e.gazetteer.find_in_text(t.text) if t.text else None
    if area is None or not area.kecamatan:
        if len(t.text.split()) >= 2 and not await _not_an_address(t):
            # More detail about the place ("di depan halte Harmoni"): keep it with the address.
            d.address = f"{d.address}, {t.text}"[:300] if d.address else t.text[:300]
        t.say(p.say("kelurahan_unknown"), Expects.LOCATION)
        return
    d.kelurahan, d.kecamatan, d.kota = area.kelurahan, area.kecamatan, area.kota
    t.next(p.say("location_set", where=t.where()))


async def photo(t: _Turn) -> None:
    d = t.state.draft
    maxp = t.e.config.max_photos
    if t.inbound.location is not None and not t.set_point():
        t.say(p.say("location_set", where=t.where()))
    if t.inbound.photos:
        if not await t.take_photos():
            t.say(
                p.say("photo_bad", mb=10),
                Expects.PHOTO,
                (p.CHOICE_SKIP,) if not d.photos else (p.CHOICE_DONE,),
            )
            return
        if t.inbound.whole:  # a letter's photos are all it has: go on
            d.photos_done = True
            t.next()
            return
        if len(d.photos) >= maxp:
            d.photos_done = True
            t.next(p.say("photo_limit", max=maxp))
            return
        t.ask()
        return
    if await _is_skip(t, t.choice()):
        d.photos_done = True
        t.next()
        return
    if t.inbound.location is None:
        t.ask(p.say("photo_expected") if not d.photos else None)


async def confirm(t: _Turn) -> None:
    picked = t.choice()
    if picked == p.CHOICE_CANCEL:
        t.cancel()
        return
    if t.inbound.photos and len(t.state.draft.photos) < t.e.config.max_photos:
        ok = await t.take_photos()
        t.ask("Foto ditambahkan." if ok else p.say("photo_bad", mb=10))
        return
    if t.inbound.location is not None:
        if not t.set_point():
            t.state.draft.address = None
            t.ask(p.say("location_set", where=t.where()))
        return
    field = _field_in_text(t.text)
    if picked is None and field:
        _edit(t, field)
        return
    if _is_yes(t, picked):
        t.submit()
        return
    if _is_no(t, picked):
        t.state.step = Step.FIELD
        t.ask()
        return
    u = await t.understand()
    if u.intent == "konfirmasi_ya" and u.confidence >= 0.5:
        t.submit()
        return
    if u.intent == "konfirmasi_tidak" and u.confidence >= 0.5:
        t.state.step = Step.FIELD
        t.ask()
        return
    t.ask(p.say("choose_please", question="").strip())


def _field_in_text(text: str) -> str | None:
    words = set(normalize(text).split())
    for field, keys in (
        ("Deskripsi", {"deskripsi", "keterangan", "cerita"}),
        ("Kategori", {"kategori"}),
        ("Lokasi", {"lokasi", "alamat", "tempat"}),
        ("Foto", {"foto", "gambar"}),
    ):
        if words & keys:
            return field
    return None


async def field(t: _Turn) -> None:
    picked = t.choice() or _field_in_text(t.text)
    if picked is None:
        if t.text and normalize(t.text) in _DONE_WORDS | _YES_WORDS:
            t.state.step = Step.CONFIRM
            t.ask()
            return
        t.ask(p.say("choose_please", question="").strip())
        return
    _edit(t, picked)


def _edit(t: _Turn, field: str) -> None:
    d: Draft = t.state.draft
    t.state.editing = True
    if field == "Deskripsi":
        t.state.step = Step.DESCRIPTION
    elif field == "Kategori":
        t.state.step = Step.CATEGORY
    elif field == "Lokasi":
        d.lat = d.lon = None
        d.address = d.kelurahan = d.kecamatan = d.kota = None
        t.state.step = Step.LOCATION
    else:
        d.photos = []
        d.photos_done = False
        t.state.step = Step.PHOTO
    t.ask()


async def resume(t: _Turn) -> None:
    picked = t.choice()
    if picked == p.CHOICE_CONTINUE or (picked is None and _is_yes(t, None)):
        t.state.step = t.state.paused_step or Step.DESCRIPTION
        t.state.paused_step = None
        t.ask()
        return
    if picked == p.CHOICE_RESTART or (picked is None and _is_no(t, None)):
        t.reset()
        t.state.step = Step.DESCRIPTION
        t.ask()
        return
    if t.text and len(t.text.split()) > 3:
        # A fresh story: start over with it rather than make the citizen answer twice.
        t.reset()
        t.state.step = Step.DESCRIPTION
        await t.take_description(await t.understand())
        return
    t.ask(p.say("choose_please", question="").strip())


async def forget(t: _Turn) -> None:
    picked = t.choice()
    if picked == p.CHOICE_FORGET or (picked is None and _is_yes(t, None)):
        t.forget()
        return
    if picked == p.CHOICE_KEEP or _is_no(t, None):
        paused = t.state.paused_step
        t.state.step = paused or Step.IDLE
        t.state.paused_step = None
        if paused:
            t.ask(p.say("forget_kept"))
        else:
            t.say(p.say("forget_kept"))
        return
    t.ask(p.say("choose_please", question="").strip())


STEP_HANDLERS: dict[Step, Callable[[_Turn], Awaitable[None]]] = {
    Step.IDLE: idle,
    Step.DESCRIPTION: description,
    Step.CATEGORY_CONFIRM: category_confirm,
    Step.CATEGORY: category,
    Step.LOCATION: location,
    Step.KELURAHAN: kelurahan,
    Step.PHOTO: photo,
    Step.CONFIRM: confirm,
    Step.FIELD: field,
    Step.RESUME: resume,
    Step.FORGET: forget,
}

__all__ = ["STEP_HANDLERS"]
