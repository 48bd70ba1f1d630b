"""The conversation engine: a small explicit state machine, channel-agnostic.

greet → description → category → location → photo → confirm → submitted. Free text goes
through NLU; every question can also be answered from a numbered menu, so the engine still
works when NLU is down or unsure. One call of :meth:`Engine.handle` is one inbound event; its
effects (state, dedup key, complaint on the stream, sealed contact) commit atomically.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from bots.core import prompts as p
from bots.core.context import EngineConfig
from bots.core.gazetteer import Gazetteer, story_address, street_detail
from bots.core.sessions import DELIVERED, SessionStore, State, Step, Turn
from bots.core.steps import STEP_HANDLERS
from kanal import metrics, streams
from kanal.categories import CATEGORIES, label
from kanal.errors import NotAnImage, PeerError
from kanal.keys import Keyring
from kanal.logging import get_logger
from kanal.mediastore import MediaStore
from kanal.messages import Complaint, Expects, Inbound, Location, Outbound
from kanal.notices import RATING_CHOICES
from nlu.normalize import normalize
from nlu.types import Nlu, Understanding

log = get_logger(__name__)

MAX_DESCRIPTION = 4000
HIGH_CONFIDENCE = 0.6
LOW_CONFIDENCE = 0.3
_HAS_WORD = re.compile(r"[0-9A-Za-z\u00C0-\u024F]")
_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\S+)?\s*(.*)$", re.S)
_TRACKING = re.compile(r"(?<!\d)(\d{5,10})(?!\d)")
# "hapus data saya", "tolong hapus nomor sy", "lupakan identitas saya", "delete my data"
_FORGET = re.compile(
    r"\b(?:hapus(?:kan)?|dihapus|lupakan|buang|delete|remove|erase)\b.{0,25}?"
    r"\b(?:data|identitas|nomor|kontak|akun|info(?:rmasi)?|riwayat)\b.{0,15}?"
    r"\b(?:saya|sy|ku|aku|gw|gue|kami|my)\b"
    r"|\b(?:data|identitas|kontak)\s+(?:saya|sy|ku|aku|gw|gue)\s+(?:tolong\s+)?(?:di)?hapus",
    re.I | re.S,
)


class Engine:
    def __init__(
        self,
        *,
        sessions: SessionStore,
        nlu: Nlu,
        gazetteer: Gazetteer,
        media: MediaStore,
        keyring: Keyring,
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.nlu = nlu
        self.gazetteer = gazetteer
        self.media = media
        self.keyring = keyring
        self.config = config or EngineConfig()
        self.clock = clock

    async def handle(self, inbound: Inbound, *, queue: bool = False) -> list[Outbound]:
        """Run one event (or replay the replies of one seen before). ``queue``: put the replies
        on the channel's outbox in the very transaction that commits the turn, and count them
        delivered: a push channel, or one whose sending may wait (e-mail), answers each event
        exactly once even if the worker dies at any point."""
        conv = self.keyring.pseudonym(inbound.channel, inbound.user_id)
        started = time.perf_counter()
        async with self.sessions.open(conv, inbound.channel, inbound.event_id) as turn:
            if turn.seen:
                # A redelivered event. If the worker died before its replies went out: the
                # same replies again. The engine does not run twice either way.
                if turn.replay == DELIVERED:
                    log.info("inbound_duplicate", channel=inbound.channel, conv=conv)
                    return []
                replayed = self._unseal(turn.replay, inbound, conv)
                log.info(
                    "inbound_replayed", channel=inbound.channel, conv=conv, replies=len(replayed)
                )
                return replayed
            ctx = _Turn(self, inbound, turn)
            with p.speaking_for(inbound.channel):
                await ctx.run()
            # A citizen who writes again is reachable again.
            turn.delete(streams.unreachable_key(conv))
            if queue:
                for out in ctx.replies:
                    turn.emit(streams.outbox(out.channel), {"outbound": out.model_dump_json()})
                turn.replay = DELIVERED
            else:
                turn.replay = self._seal(ctx.replies)
        elapsed = time.perf_counter() - started
        metrics.INBOUND.labels(inbound.channel).inc()
        metrics.ENGINE_SECONDS.observe(elapsed)
        log.info(
            "inbound_handled",
            channel=inbound.channel,
            conv=conv,
            step=str(turn.state.step),
            ms=round(elapsed * 1000, 2),
        )
        return ctx.replies

    async def delivered(self, inbound: Inbound) -> None:
        """Called by the worker once every reply to ``inbound`` reached the platform."""
        await self.sessions.delivered(inbound.channel, inbound.event_id)

    def _seal(self, replies: list[Outbound]) -> str:
        """The turn's replies, encrypted, without the address (the redelivered event has it)."""
        docs = [{f: getattr(r, f) for f in _REPLAYED} for r in replies]
        return self.keyring.seal(_json(docs).encode())

    def _unseal(self, sealed: str, inbound: Inbound, conv: str) -> list[Outbound]:
        if not sealed or sealed == "1":  # "1": recorded before replies were kept
            return []
        try:
            docs = json.loads(self.keyring.unseal(sealed))
            return [
                Outbound(channel=inbound.channel, to=inbound.user_id, conv=conv, **doc)
                for doc in docs
            ]
        except (ValueError, TypeError):
            log.warning("inbound_replay_unreadable", channel=inbound.channel, conv=conv)
            return []


# What a replay needs of each reply; the address comes from the redelivered event.
_REPLAYED = ("text", "expects", "choices", "tracking_id", "media_url", "kind", "follow_up")


class _Turn:
    """One inbound event applied to one conversation."""

    def __init__(self, engine: Engine, inbound: Inbound, turn: Turn) -> None:
        self.e = engine
        self.inbound = inbound
        self.turn = turn
        self.state: State = turn.state
        self.replies: list[Outbound] = []
        self.text = inbound.text.strip()
        self._nlu: Understanding | None = None
        self._photos_taken: bool | None = None

    # ---- output -------------------------------------------------------------------------
    def say(
        self,
        text: str,
        expects: Expects = Expects.NONE,
        choices: tuple[str, ...] = (),
        tracking_id: str | None = None,
        follow_up: int = 0,
    ) -> None:
        self.replies.append(
            Outbound(
                channel=self.inbound.channel,
                to=self.inbound.user_id,
                conv=self.turn.conv,
                text=text,
                expects=expects,
                choices=choices,
                tracking_id=tracking_id,
                follow_up=follow_up,
            )
        )
        self.state.expects = expects
        self.state.choices = list(choices)

    def ask(self, prefix: str | None = None) -> None:
        """Ask the question of the current step, optionally after a sentence."""
        text, expects, choices = self.question()
        self.say(f"{prefix} {text}".strip() if prefix else text, expects, choices)

    def question(self) -> tuple[str, Expects, tuple[str, ...]]:
        s, d = self.state.step, self.state.draft
        if s in (Step.IDLE, Step.DESCRIPTION):
            key = "ask_new_description" if self.state.editing else "ask_description"
            if s == Step.IDLE:
                return p.say("greeting"), Expects.DESCRIPTION, ()
            return p.say(key), Expects.DESCRIPTION, ()
        if s == Step.CATEGORY_CONFIRM:
            guess = label(d.category_guess or "lainnya")
            return (
                p.say("confirm_category", label=guess),
                Expects.CATEGORY,
                (p.CHOICE_YES, p.CHOICE_NO),
            )
        if s == Step.CATEGORY:
            return p.say("ask_category"), Expects.CATEGORY, tuple(CATEGORIES.values())
        if s == Step.LOCATION:
            offers: tuple[str, ...] = ()
            if d.photo_gps:
                offers += (p.CHOICE_PHOTO_GPS,)
            if d.kecamatan and not d.address and d.lat is None:
                offers += (p.CHOICE_STORY_PLACE,)
            if offers:
                return p.say("ask_location_offer"), Expects.LOCATION, offers
            return p.say("ask_location"), Expects.LOCATION, ()
        if s == Step.KELURAHAN:
            return p.say("ask_kelurahan"), Expects.LOCATION, ()
        if s == Step.PHOTO:
            if d.photos:
                text = p.say("photo_received", n=len(d.photos), max=self.e.config.max_photos)
                return text, Expects.PHOTO, (p.CHOICE_DONE,)
            key = "ask_new_photos" if self.state.editing else "ask_photo"
            return p.say(key, max=self.e.config.max_photos), Expects.PHOTO, (p.CHOICE_SKIP,)
        if s == Step.CONFIRM:
            return self.summary(), Expects.CONFIRM, (p.CHOICE_SEND, p.CHOICE_FIX, p.CHOICE_CANCEL)
        if s == Step.FIELD:
            return p.say("ask_field"), Expects.CONFIRM, p.FIELD_CHOICES
        if s == Step.FORGET:
            return p.say("forget_confirm"), Expects.CONFIRM, (p.CHOICE_FORGET, p.CHOICE_KEEP)
        # RESUME
        guess = label(d.category or d.category_guess or "lainnya") if d.description else "-"
        return (
            p.say("resume", label=guess),
            Expects.CONFIRM,
            (p.CHOICE_CONTINUE, p.CHOICE_RESTART),
        )

    def summary(self, key: str = "summary") -> str:
        d = self.state.draft
        desc = d.description or "-"
        if len(desc) > 300:
            desc = desc[:297] + "..."
        photos = f"{len(d.photos)} foto" if d.photos else "tidak ada"
        return p.say(
            key,
            label=label(d.category or "lainnya"),
            description=desc,
            where=self.where(),
            photos=photos,
        )

    def where(self) -> str:
        d = self.state.draft
        parts: list[str] = []
        if d.address:
            parts.append(d.address if len(d.address) <= 120 else d.address[:117] + "...")
        elif d.lat is not None and d.lon is not None:
            parts.append(f"titik lokasi ({d.lat:.5f}, {d.lon:.5f})")
        said = (d.address or "").lower()
        if d.kelurahan and d.kelurahan.lower() not in said:
            parts.append(f"Kel. {d.kelurahan}")
        if d.kecamatan and d.kecamatan.lower() not in said:
            parts.append(f"Kec. {d.kecamatan}")
        return ", ".join(parts) or "-"

    # ---- understanding -------------------------------------------------------------------
    async def understand(self) -> Understanding:
        if self._nlu is None:
            self._nlu = await self.e.nlu.parse(self.text)
        return self._nlu

    def choice(self) -> str | None:
        """The choice the citizen picked by number or text, if any."""
        if not self.text or not self.state.choices:
            return None
        t = self.text.strip().rstrip(".").strip()
        if t.isdigit():
            n = int(t)
            if 1 <= n <= len(self.state.choices):
                return self.state.choices[n - 1]
            return None
        nt = normalize(t)
        for c in self.state.choices:
            if normalize(c) == nt:
                return c
        return None

    # ---- main ---------------------------------------------------------------------------
    async def run(self) -> None:
        now = self.e.clock()
        st = self.state
        idle_for = now - st.updated_at if st.updated_at else 0.0
        if st.active and idle_for > self.e.config.session_ttl_s:
            log.info("conversation_expired", conv=self.turn.conv)
            self.reset()
            self.say(p.say("expired"))
        elif (
            st.active
            and st.step != Step.RESUME
            and idle_for > self.e.config.resume_after_s
            and st.draft.description
        ):
            st.paused_step, st.step = st.step, Step.RESUME
            st.updated_at = now
            self.ask()
            return
        if not st.created_at or st.step == Step.IDLE:
            st.created_at = now
        st.updated_at = now

        if len(self.text) > MAX_DESCRIPTION:
            self.say(p.say("too_long", limit=MAX_DESCRIPTION))
            self.text = self.text[:MAX_DESCRIPTION]
        if not self.text and not self.inbound.photos and self.inbound.location is None:
            log.info("inbound_empty", channel=self.inbound.channel, conv=self.turn.conv)
            self.ask(p.say("empty", question="").strip())
            return
        if self.text and not _HAS_WORD.search(self.text) and not self.inbound.photos:
            log.info("inbound_no_words", channel=self.inbound.channel, conv=self.turn.conv)
            self.ask(p.say("emoji_only", question="").strip())
            return
        if self.text.startswith("/") and await self.command():
            return
        if st.step != Step.FORGET and self.text and _FORGET.search(self.text):
            log.info("forget_asked", channel=self.inbound.channel, conv=self.turn.conv)
            st.paused_step = st.step if st.active else None
            st.step = Step.FORGET
            self.ask()
            return
        if not st.active and self.turn.rating_for and await self.take_rating(self.turn.rating_for):
            return
        if await self.global_intent():
            return
        # A letter's photos are kept whatever it answers; with one kept, no photo question.
        letter_photos = self.inbound.whole and self.inbound.photos and st.step != Step.FORGET
        if letter_photos and await self.take_photos() and st.draft.photos:
            st.draft.photos_done = True
        await STEP_HANDLERS[st.step](self)

    def reset(self) -> None:
        reports = self.state.reports[-20:]
        self.state = State(reports=reports)
        self.turn.state = self.state

    async def command(self) -> bool:
        m = _COMMAND.match(self.text)
        if not m:
            return False
        name, arg = m.group(1).lower(), m.group(2).strip()
        if name in ("start", "mulai", "halo"):
            self.text = arg
            if self.state.active:
                self.ask()
            else:
                self.state.step = Step.DESCRIPTION
                self.say(p.say("greeting"), Expects.DESCRIPTION)
            return True
        if name in ("bantuan", "help"):
            self.ask(p.say("help"))
            return True
        if name in ("batal", "cancel"):
            self.cancel()
            return True
        if name in ("cek", "status"):
            self.status(arg)
            return True
        if name in ("lapor", "report"):
            self.text = arg
            return False
        log.info("unknown_command", channel=self.inbound.channel, conv=self.turn.conv)
        self.ask(p.say("unknown_command", command="/" + name, question="").strip())
        return True

    async def global_intent(self) -> bool:
        """Intents that work at any step: emergency, cancel, status, help."""
        if not self.text or self.choice() is not None:
            return False
        u = await self.understand()
        short = len(self.text.split()) <= 4
        if u.intent == "darurat" and u.confidence >= 0.5:
            log.info("emergency", channel=self.inbound.channel, conv=self.turn.conv)
            if self.state.active:
                self.say(p.say("emergency"))
                self.ask()
            else:
                self.say(p.say("emergency"), Expects.NONE, (p.CHOICE_REPORT,))
            return True
        if u.intent == "batal" and u.confidence >= 0.5 and short:
            self.cancel()
            return True
        number = u.entity("nomor_laporan")
        if not self.state.draft.description and _TRACKING.fullmatch(self.text.strip()):
            self.status(self.text)  # a bare number, e.g. after "Ketik nomor laporan Anda"
            return True
        # Mid-report only a real tracking number makes it a status check ("Jl. Mawar no 2" is not).
        if (
            u.intent == "cek_status"
            and u.confidence >= 0.5
            and (number or (short and not self.state.draft.description))
        ):
            self.status(number or "")
            return True
        if u.intent == "bantuan" and u.confidence >= 0.5 and short:
            self.ask(p.say("help"))
            return True
        return False

    async def take_rating(self, tracking_id: str) -> bool:
        """A 1-5 answer to the bridge's "how was it?" after a report closed."""
        text = self.text.strip().rstrip(".")
        rating: int | None = int(text) if text in RATING_CHOICES else None
        if rating is None and self.text:
            u = await self.understand()
            value = u.entity("rating")
            if u.intent == "nilai" and value and value in RATING_CHOICES:
                rating = int(value)
        if rating is None:
            return False
        self.turn.emit(
            streams.RATINGS,
            {"conv": self.turn.conv, "tracking_id": tracking_id, "rating": str(rating)},
        )
        self.turn.delete(streams.rating_key(self.turn.conv))
        log.info("rating_given", channel=self.inbound.channel, conv=self.turn.conv, rating=rating)
        self.say(p.say("rating_thanks", rating=rating, tracking_id=tracking_id))
        return True

    def forget(self) -> None:
        """Confirmed: the bridge removes the contact and every map back to it; the draft and
        this conversation's state go with this turn."""
        self.turn.emit(streams.FORGET, {"conv": self.turn.conv})
        self.turn.delete(self.e.sessions.state_key(self.turn.conv))
        self.turn.delete(streams.rating_key(self.turn.conv))
        self.state = State()
        self.turn.state = self.state
        log.info("forget_confirmed", channel=self.inbound.channel, conv=self.turn.conv)
        self.say(p.say("forgotten"))

    def cancel(self) -> None:
        if not self.state.active or (
            not self.state.draft.description
            and self.state.step
            in (
                Step.IDLE,
                Step.DESCRIPTION,
            )
        ):
            self.reset()
            self.say(p.say("nothing_to_cancel", question="").strip())
            return
        log.info("report_cancelled", channel=self.inbound.channel, conv=self.turn.conv)
        self.reset()
        self.say(p.say("cancelled"))

    def status(self, arg: str) -> None:
        m = _TRACKING.search(arg or self.text)
        if not m and self.state.reports:
            # No number, but this citizen has reports: the bridge says where each one is (a
            # report the CRM has not given a number yet is "sedang diteruskan").
            self.seal_contact()
            self.turn.emit(
                streams.LOOKUPS,
                {
                    "conv": self.turn.conv,
                    "channel": self.inbound.channel,
                    "tracking_id": "",
                    "complaints": ",".join(self.state.reports[-3:]),
                },
            )
            self.say(p.say("status_checking_mine"), follow_up=1)
            if self.state.draft.description:
                self.ask()
            return
        if not m:
            self.say(p.say("status_ask_number"), self.state.expects, tuple(self.state.choices))
            return
        tracking_id = m.group(1)
        self.seal_contact()
        self.turn.emit(
            streams.LOOKUPS,
            {"conv": self.turn.conv, "channel": self.inbound.channel, "tracking_id": tracking_id},
        )
        self.say(p.say("status_checking", tracking_id=tracking_id), follow_up=1)
        if self.state.draft.description:  # mid-report: back to where we were
            self.ask()

    def seal_contact(self) -> None:
        contact = {
            "channel": self.inbound.channel,
            "address": self.inbound.user_id,
            "language": self.inbound.language,
        }
        sealed = self.e.keyring.encrypt(_json(contact).encode())
        self.turn.store_hash(
            streams.vault_key(self.turn.conv),
            {"contact": sealed, "touched_at": str(int(self.e.clock()))},
        )

    # ---- shared steps ---------------------------------------------------------------------
    async def take_description(self, u: Understanding | None) -> None:
        d = self.state.draft
        d.description = self.text
        if d.lat is None and not d.address:
            # A kelurahan/kecamatan named in the story is kept as a hint for the address.
            area = self.e.gazetteer.find_in_text(self.text)
            if area:
                d.kelurahan, d.kecamatan, d.kota = area.kelurahan, area.kecamatan, area.kota
        if self.inbound.whole and d.kecamatan and not d.address and d.lat is None:
            # A letter that names its kelurahan/kecamatan gives its address: take it with the
            # street-level detail (Jl., gang, RT/RW, number) instead of asking for it.
            d.address = story_address(d.description, d.kelurahan, d.kecamatan)
        if self.state.editing:
            self.next()
            return
        if u is not None and u.category and u.category_confidence >= HIGH_CONFIDENCE:
            d.category = u.category
            self.next(p.say("category_set", label=label(u.category)))
        elif u is not None and u.category and u.category_confidence >= LOW_CONFIDENCE:
            d.category_guess = u.category
            self.state.step = Step.CATEGORY_CONFIRM
            self.ask()
        else:
            self.state.step = Step.CATEGORY
            self.ask()

    def next(self, prefix: str | None = None) -> None:
        """Move to the first thing still missing (or back to the summary when editing)."""
        d = self.state.draft
        if not d.description:
            step = Step.DESCRIPTION
        elif not d.category:
            step = Step.CATEGORY
        elif not d.has_location:
            step = Step.KELURAHAN if d.address else Step.LOCATION
        elif not self.state.editing and not d.photos_done:
            step = Step.PHOTO
        else:
            step = Step.CONFIRM
            self.state.editing = False
            if self.inbound.whole:
                # A letter with everything in it is filed as it is; the reply says how to
                # correct it by replying.
                self.submit(whole=True)
                return
        self.state.step = step
        self.ask(prefix)

    def set_point(self) -> bool:
        loc = self.inbound.location
        if loc is None:
            return False
        if not self.e.gazetteer.contains(loc.lat, loc.lon):
            log.info("location_outside", channel=self.inbound.channel, conv=self.turn.conv)
            self.say(p.say("outside_jakarta"), Expects.LOCATION)
            return True
        d = self.state.draft
        d.lat, d.lon = loc.lat, loc.lon
        d.photo_gps = None
        if d.address and not d.kecamatan:
            d.address = None  # an address still missing its kelurahan gives way to the point
        area = self.e.gazetteer.locate(loc.lat, loc.lon)
        if area:
            d.kelurahan, d.kecamatan, d.kota = area.kelurahan, area.kecamatan, area.kota
        if not d.address:  # the point, and where exactly at it the story says (RT/RW, gang)
            d.address = street_detail(d.description or "")
        return False

    async def take_photos(self) -> bool:
        """Store attached photos (once a turn); False if one was refused (the citizen has been
        told)."""
        if self._photos_taken is None:
            self._photos_taken = await self._store_photos()
        return self._photos_taken

    async def _store_photos(self) -> bool:
        d = self.state.draft
        ok = True
        for photo in self.inbound.photos:
            if len(d.photos) >= self.e.config.max_photos:
                break
            try:
                stored = await asyncio.to_thread(self.e.media.put, photo.data)
                d.photos.append(stored.media_id)
                if stored.gps and d.lat is None and self.e.gazetteer.contains(*stored.gps):
                    d.photo_gps = stored.gps  # offered at the location question
            except PeerError as exc:  # the media store (S3) is down: nothing is lost yet
                log.warning("photo_store_unavailable", conv=self.turn.conv, status=exc.status)
                ok = False
            except NotAnImage as exc:
                log.info(
                    "photo_refused",
                    channel=self.inbound.channel,
                    conv=self.turn.conv,
                    reason=str(exc),
                )
                ok = False
        return ok

    def submit(self, *, whole: bool = False) -> None:
        d = self.state.draft
        filed_summary = self.summary("summary_filed") if whole else ""
        complaint = Complaint(
            complaint_id=uuid.uuid4().hex,
            conv=self.turn.conv,
            channel=self.inbound.channel,
            category=d.category or "lainnya",
            description=d.description or "",
            location=Location(
                lat=d.lat,
                lon=d.lon,
                address=d.address,
                kelurahan=d.kelurahan,
                kecamatan=d.kecamatan,
                kota=d.kota,
            ),
            photos=tuple(d.photos),
            created_at=datetime.fromtimestamp(self.e.clock(), UTC),
        )
        self.seal_contact()
        # Until the bridge has filed it, the report keeps its reporter's contact from purges.
        self.turn.store_hash(
            streams.vault_key(self.turn.conv), {f"pending:{complaint.complaint_id}": "1"}
        )
        self.turn.emit(streams.COMPLAINTS, {"complaint": complaint.model_dump_json()})
        metrics.REPORTS.labels(self.inbound.channel).inc()
        log.info(
            "report_submitted",
            channel=self.inbound.channel,
            conv=self.turn.conv,
            complaint_id=complaint.complaint_id,
            category=complaint.category,
            photos=len(complaint.photos),
        )
        self.reset()
        self.state.reports.append(complaint.complaint_id)
        if whole:
            self.say(p.say("submitted_whole", summary=filed_summary), follow_up=1)
        else:
            self.say(p.say("submitted"), follow_up=1)


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


__all__ = ["Engine", "EngineConfig"]
