"""The e-mail adapter: a :class:`~bots.email.mime.Letter` in, an :class:`Inbound` out, and
an :class:`Outbound` rendered as a formal reply in the same thread. Pure: no I/O, no clock.

Replies are written in the city's own register (Yth. Bapak/Ibu, Hormat kami): the engine's
sentences that read like chat have formal versions here, registered for this channel
(:func:`bots.core.prompts.register`). Choices become "Balas dengan angka 1 untuk …" lines.
The thread token in the subject ("[Kanal #AB12CD]") is random, per thread: it never encodes
the sender.
"""

from __future__ import annotations

import hashlib
import html
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from bots.core import prompts
from bots.email.mime import Letter
from kanal.errors import BadInput
from kanal.messages import Inbound, Outbound

CHANNEL = "email"
SIGNATURE = "Hormat kami,\nLayanan Pengaduan Warga (CRM)\nPemerintah Provinsi DKI Jakarta"
_TOKEN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105 - no secret: no 0/O, 1/I

# The engine's sentences in the register of a letter from the city.
FORMAL = {
    "greeting": (
        "Terima kasih telah menghubungi Layanan Pengaduan Warga Provinsi DKI Jakarta. "
        "Mohon Bapak/Ibu menuliskan masalah yang ingin dilaporkan beserta alamat lengkapnya "
        "(nama jalan, kelurahan, dan kecamatan), dan melampirkan foto bila ada."
    ),
    "ask_description": (
        "Mohon Bapak/Ibu menuliskan masalah yang ingin dilaporkan dengan membalas surel ini."
    ),
    "ask_location": (
        "Mohon Bapak/Ibu menuliskan alamat lokasi masalah selengkap mungkin: nama jalan, "
        "nomor atau patokan, RT/RW, kelurahan, dan kecamatan."
    ),
    "ask_location_offer": (
        "Mohon Bapak/Ibu menuliskan alamat lokasi masalah selengkap mungkin, atau memilih "
        "salah satu pilihan di bawah ini."
    ),
    "ask_location_first": (
        "Lokasi diperlukan agar petugas dapat menemukan masalahnya. Mohon tuliskan alamat "
        "lengkapnya (nama jalan, kelurahan, dan kecamatan)."
    ),
    "ask_kelurahan": (
        "Alamat telah kami catat. Mohon sebutkan pula kelurahan atau kecamatannya "
        "(misalnya: Kelurahan Tebet Barat, Kecamatan Tebet)."
    ),
    "ask_photo": (
        "Bila ada, mohon lampirkan foto masalahnya (paling banyak {max} foto) dengan membalas "
        "surel ini. Bila tidak ada foto, balas dengan kata 'lewati'."
    ),
    "photo_expected": (
        "Kami menunggu foto yang dilampirkan. Bila tidak ada foto, balas dengan kata 'lewati'."
    ),
    "photo_bad": (
        "Mohon maaf, lampiran tersebut bukan foto yang dapat kami baca (JPG atau PNG, paling "
        "besar {mb} MB). Mohon lampirkan foto lain, atau balas dengan kata 'lewati'."
    ),
    "ask_category": "Mohon pilih kategori laporan Bapak/Ibu:",
    "confirm_category": "Laporan Bapak/Ibu kami golongkan dalam kategori {label}. Apakah benar?",
    "choose_please": "Mohon balas dengan salah satu pilihan di bawah ini. {question}",
    "submitted": (
        "Laporan Bapak/Ibu telah kami terima dan sedang diteruskan ke CRM. Nomor laporan akan "
        "kami kirimkan dalam surel berikutnya."
    ),
    "submitted_whole": (
        "Laporan Bapak/Ibu telah kami terima dan sedang diteruskan ke CRM. Nomor laporan akan "
        "kami kirimkan dalam surel berikutnya.\n\n{summary}\n\nBila ada yang keliru, mohon "
        "balas surel ini dengan perbaikannya."
    ),
    "unavailable": (
        "Mohon maaf, sistem kami sedang sibuk. Surel Bapak/Ibu telah kami simpan dan akan "
        "kami tanggapi secepatnya."
    ),
    "thanks": "Terima kasih. Bila ada laporan baru, silakan kirimkan surel kepada kami.",
}
prompts.register(CHANNEL, FORMAL)

NOT_ANSWERABLE = (
    "Mohon maaf, surel Bapak/Ibu tidak dapat kami baca: lampirannya bukan foto (JPG atau PNG) "
    "dan tidak ada tulisan di dalamnya. Mohon tuliskan masalahnya di badan surel dan lampirkan "
    "fotonya."
)
TOO_LARGE = (
    "Mohon maaf, surel Bapak/Ibu melebihi batas ukuran {mb} MB sehingga tidak dapat kami "
    "proses. Mohon kirim ulang dengan foto yang lebih kecil atau lebih sedikit."
)


@dataclass(frozen=True)
class Thread:
    """The e-mail thread of a conversation: what a reply needs to land in it."""

    token: str
    subject: str
    last_id: str | None = None
    references: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()  # our own Message-IDs in it (the last few)

    def follows(self, letter: Letter) -> bool:
        """Whether ``letter`` answers this thread (its token, or one of our Message-IDs)."""
        if letter.token and letter.token == self.token:
            return True
        ours = set(self.sent)
        return bool(ours & ({letter.in_reply_to} | set(letter.references)))


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(6))


def event_id(letter: Letter) -> str:
    """The dedup key of a letter: its Message-ID, hashed (a mail sent twice is one event)."""
    return hashlib.sha256(letter.message_id.encode()).hexdigest()[:32]


def parse(letter: Letter, *, max_photos: int = 3) -> Inbound | None:
    """The letter as the engine reads it; ``None`` for mail that must not be answered."""
    if letter.auto is not None:
        return None
    if not letter.story.strip() and not letter.photos:
        raise BadInput(reply=NOT_ANSWERABLE)
    return Inbound(
        channel=CHANNEL,
        user_id=letter.sender,
        event_id=event_id(letter),
        text=letter.story,
        photos=letter.photos[:max_photos],
        whole=True,
    )


def body(out: Outbound) -> str:
    """The plain-text body of a reply: greeting, text, choices as numbered lines, signature."""
    lines = [out.text.strip()]
    if out.choices:
        lines.append(
            "\n".join(f"Balas dengan angka {i} untuk {c}" for i, c in enumerate(out.choices, 1))
        )
    if out.media_url:
        lines.append(f"Foto dari petugas: {out.media_url}")
    text = "\n\n".join(lines).replace("*", "")
    return f"Yth. Bapak/Ibu,\n\n{text}\n\n{SIGNATURE}\n"


def render(
    out: Outbound,
    thread: Thread,
    *,
    sender: str,
    now: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """``out`` as a reply in ``thread``, from ``sender`` (``EMAIL_ADDRESS``)."""
    msg = EmailMessage()
    domain = sender.partition("@")[2] or "kanal.invalid"
    msg["From"] = f"Layanan Pengaduan Warga DKI Jakarta <{sender}>"
    msg["To"] = out.to
    subject = thread.subject or "Laporan Anda"
    if f"[Kanal #{thread.token}]" not in subject:
        subject = f"{subject} [Kanal #{thread.token}]"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id or make_msgid(domain=domain)
    if thread.last_id:
        msg["In-Reply-To"] = thread.last_id
        refs = dict.fromkeys([*thread.references[-9:], thread.last_id])
        msg["References"] = " ".join(refs)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    text = body(out)
    msg.set_content(text)
    paragraphs = "".join(
        f"<p>{html.escape(par).replace(chr(10), '<br>')}</p>" for par in text.split("\n\n")
    )
    msg.add_alternative(f"<html><body>{paragraphs}</body></html>", subtype="html")
    return msg


__all__ = [
    "CHANNEL",
    "FORMAL",
    "NOT_ANSWERABLE",
    "TOO_LARGE",
    "Thread",
    "body",
    "event_id",
    "new_token",
    "parse",
    "render",
]
