"""One e-mail, read as a citizen meant it: pure functions over the raw RFC 5322 bytes.

:func:`read` turns a message into a :class:`Letter`: who wrote (for the vault, never for the
CRM), what they wrote this time (the reply without the quoted thread and the signature, the
subject counted as part of the story), the photos, and whether it must not be answered at all
(an auto-reply, a bounce, a mailing list, ourselves). It is built on the standard library's
``email.policy.default``; HTML-only mail becomes text through ``html-text``; quoted replies and
signatures are cut by ``mail-parser-reply``, taught Indonesian mail clients' quote headers
("Pada … menulis:", "Dari: … Dikirim: …"). A body whose charset is missing or wrong
(``windows-1252`` declared as ``us-ascii``) is decoded by the first of the declared charset,
UTF-8 and windows-1252 that fits, never garbled into an exception.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

import html_text
from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES

from kanal.messages import PhotoIn

# A signature's logo, a tracking pixel, an emoji: images this small are no photo of a problem.
MIN_PHOTO_BYTES = 12_000
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/gif"})
_TOKEN = re.compile(r"\[Kanal\s+#([A-Z0-9]{6,8})\]", re.I)
_SUBJECT_NOISE = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|balas|bls|trs|tr)\s*:\s*)+", re.I)
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|noreply|mailer-daemon|postmaster)", re.I
)
_FORWARDED = re.compile(
    r"^[ \t>]*(?:-{2,}\s*(?:Forwarded message|Pesan terusan|Original Message|Pesan Asli)\s*-{2,}"
    r"|Begin forwarded message:|Pesan yang diteruskan:)[ \t]*$",
    re.I | re.M,
)
_FORWARD_HEADER = re.compile(
    r"^[ \t>]*(?:From|Dari|Date|Tanggal|Sent|Dikirim|Subject|Subjek|Perihal|To|Kepada|Cc)"
    r"\s*:.*$",
    re.I | re.M,
)

# Indonesian mail clients, for mail-parser-reply: Gmail's "Pada Sen, 3 Mar 2025 pukul 10.15
# Budi <b@x> menulis:", Outlook's "Dari: … Dikirim: … Kepada: … Perihal: …", phone apps'
# "Dikirim dari …". Registered once, next to the library's own languages.
MAIL_LANGUAGES.setdefault(
    "id",
    {
        "wrote_header": r"^(?!Pada[.\s]*Pada\s(.+?\s?.+?)\smenulis:)((?:> ?)*Pada\s(?:.+?\s?.+?)"
        r"\s?menulis:)$",
        "from_header": r"((?:(?:^|\n|\n(?:> ?)*)[* ]*(?:Dari|Dikirim|Kepada|Perihal|Subjek|"
        r"Tanggal|Cc|Terkirim):[ *]*(?:\s{,2}).*){2,}(?:\n.*){,1})",
        "disclaimers": [
            "Pemberitahuan:",
            "Penafian:",
            "Disclaimer:",
            "(?:Email|Surel|Pesan) ini (?:dan|beserta) (?:lampiran|isinya)",
        ],
        "signatures": [
            "Hormat saya",
            "Hormat kami",
            "Salam hormat",
            "Wassalam",
            "Salam,",
            "Best regards",
            "Regards,",
        ],
        "sent_from": "Dikirim dari|Sent from my|Get Outlook for|Kirim dari",
    },
)
_REPLIES = EmailReplyParser(languages=["id", "en"])


@dataclass(frozen=True)
class Letter:
    """What one e-mail says, and what it is (the parts the adapter and the guards need)."""

    message_id: str
    sender: str  # lowercase address: the citizen's platform id, for the vault only
    subject: str = ""
    story: str = ""  # what they wrote this time, subject first
    photos: tuple[PhotoIn, ...] = ()
    unusable: tuple[str, ...] = ()  # attachments that are no photo (a PDF, a video, a logo)
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    token: str | None = None  # the thread token in the subject ("[Kanal #AB12CD]")
    auto: str | None = None  # why this must not be answered, or None
    bounce_of: tuple[str, ...] = ()  # our Message-IDs a bounce reports on
    size: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def read(raw: bytes, *, own_address: str = "") -> Letter:
    """Parse one RFC 5322 message. Never raises on bad MIME: a broken message is still a
    letter, with whatever could be read from it."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    sender = _address(msg.get("From", "")) or _address(msg.get("Sender", ""))
    subject = _header(msg, "Subject")
    body, photos, unusable = _content(msg)
    story = _own_words(body)
    clean_subject = _SUBJECT_NOISE.sub("", _TOKEN.sub("", subject)).strip()
    answers = bool(
        _TOKEN.search(subject) or msg.get("In-Reply-To") or _SUBJECT_NOISE.match(subject)
    )
    forward = bool(re.match(r"\s*(?:fw|fwd|trs|tr)\s*:", subject, re.I))
    # The subject is part of the story ("Sampah menumpuk di Jl. X"), not of an answer in a
    # thread ("Re: [Kanal #AB12CD] …"), unless it names what is forwarded.
    if (
        clean_subject
        and (forward or not answers)
        and clean_subject.lower() not in story.lower()[: len(clean_subject) + 40]
    ):
        story = f"{clean_subject}\n\n{story}".strip()
    message_id = _header(msg, "Message-ID") or "<sha256-" + hashlib.sha256(raw).hexdigest() + ">"
    token_match = _TOKEN.search(subject)
    return Letter(
        message_id=message_id,
        sender=sender,
        subject=subject,
        story=story,
        photos=tuple(photos),
        unusable=tuple(unusable),
        in_reply_to=_header(msg, "In-Reply-To") or None,
        references=tuple(_header(msg, "References").split()),
        token=token_match.group(1).upper() if token_match else None,
        auto=_automatic(msg, sender, own_address),
        bounce_of=tuple(_bounced_ids(msg)),
        size=len(raw),
    )


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a header the policy cannot parse
        value = None
    if value is None:
        return ""
    return " ".join(str(value).split())


def _address(value: object) -> str:
    try:
        text = str(value)
    except (ValueError, TypeError):
        return ""
    pairs = getaddresses([text]) or [parseaddr(text)]
    for _, addr in pairs:
        if "@" in addr:
            return addr.strip().lower()
    return ""


def _automatic(msg: Message, sender: str, own: str) -> str | None:
    """Why a message must never be answered (RFC 3834 and the headers mailers really send)."""
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return "auto-submitted"
    if _header(msg, "Precedence").lower() in ("bulk", "junk", "list", "auto_reply"):
        return "precedence"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id"):
        if msg.get(name) is not None and (
            name != "X-Auto-Response-Suppress" or "oof" in _header(msg, name).lower()
        ):
            return name.lower()
    if msg.get_content_type() == "multipart/report":
        return "report"
    return_path = msg.get("Return-Path")
    if return_path is not None and str(return_path).strip() in ("<>", ""):
        return "null-return-path"
    if not sender:
        return "no-sender"
    local = sender.split("@", 1)[0]
    if _NOREPLY.match(local):
        return "noreply"
    if own and sender == own.lower():
        return "own-address"
    return None


def _bounced_ids(msg: Message) -> list[str]:
    """The Message-IDs of ours a delivery report (DSN) is about."""
    if msg.get_content_type() != "multipart/report":
        return []
    ids: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            text = (
                str(inner.get("Message-ID", ""))
                if isinstance(inner, Message)
                else str(_decode(part) or "")
            )
            ids += re.findall(r"<[^<>\s]+@[^<>\s]+>", text)
    return ids


def _content(msg: Message) -> tuple[str, list[PhotoIn], list[str]]:
    """The readable text (plain preferred, HTML turned into text otherwise), the photos, and
    what was attached but is no photo. A forwarded message (``message/rfc822``) counts with
    its own text and photos."""
    texts: list[str] = []
    photos: list[PhotoIn] = []
    unusable: list[str] = []
    _collect(msg, texts, photos, unusable, depth=0)
    return "\n\n".join(t for t in texts if t.strip()), photos, unusable


def _collect(
    part: Message, texts: list[str], photos: list[PhotoIn], unusable: list[str], *, depth: int
) -> None:
    if depth > 8:
        return
    ctype = part.get_content_type()
    if part.is_multipart():
        children = (
            [p for p in part.iter_parts()]
            if isinstance(part, EmailMessage)
            else list(part.get_payload() or [])
        )
        if ctype == "multipart/alternative":
            plain = [c for c in children if c.get_content_type() == "text/plain"]
            html = [c for c in children if c.get_content_type() == "text/html"]
            rest = [c for c in children if c.get_content_type() not in ("text/plain", "text/html")]
            chosen = plain[-1:] or html[-1:]
            for child in chosen + rest:
                _collect(child, texts, photos, unusable, depth=depth + 1)
            return
        for child in children:
            if isinstance(child, Message):
                _collect(child, texts, photos, unusable, depth=depth + 1)
        return
    if ctype == "message/rfc822":  # an .eml attached, or a forward as attachment
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            _collect(inner, texts, photos, unusable, depth=depth + 1)
        return
    filename = _filename(part)
    disposition = (part.get_content_disposition() or "").lower()
    if ctype in IMAGE_TYPES or (ctype == "application/octet-stream" and _image_name(filename)):
        data = _payload(part)
        if data and len(data) >= MIN_PHOTO_BYTES:
            photos.append(PhotoIn(data=data, filename=filename))
        else:
            unusable.append(filename or ctype)  # a signature's logo, a pixel
        return
    if ctype in ("text/plain", "text/html") and disposition != "attachment":
        text = _decode(part)
        if text is None:
            return
        if ctype == "text/html":
            text = html_text.extract_text(text, guess_layout=True)
        texts.append(text)
        return
    if disposition == "attachment" or filename:
        unusable.append(filename or ctype)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, TypeError):
        return None
    return str(name) if name else None


def _image_name(name: str | None) -> bool:
    return name is not None and name.lower().rsplit(".", 1)[-1] in {"jpg", "jpeg", "png", "webp"}


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError):
        return b""
    return data if isinstance(data, bytes) else b""


def _decode(part: Message) -> str | None:
    """Text of a part by its declared charset, else UTF-8, else windows-1252: a mail that
    declares us-ascii and carries windows-1252 reads as it was written."""
    data = _payload(part)
    if not data:
        return None
    declared = part.get_content_charset() or "us-ascii"
    for charset in (declared, "utf-8", "windows-1252"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _own_words(body: str) -> str:
    """What the sender wrote this time: the latest reply without quotes and signature. A
    forward with no words of its own is the forwarded text, without its header lines."""
    body = body.replace("\r\n", "\n").strip()
    if not body:
        return ""
    forwarded = _FORWARDED.search(body)
    own = body[: forwarded.start()] if forwarded else body
    try:
        replies = _REPLIES.read(own).replies
        latest = replies[0].body if replies else own
    except Exception:  # a parser bug must not lose the mail: keep the text whole
        latest = own
    latest = latest.strip()
    if forwarded and len(latest.split()) < 8:
        inner = body[forwarded.end() :]
        inner = _FORWARD_HEADER.sub("", inner)
        inner = "\n".join(line.lstrip("> ").rstrip() for line in inner.splitlines())
        latest = (latest + "\n\n" + inner.strip()).strip()
    return re.sub(r"\n{3,}", "\n\n", latest)


def address_of(addr: str) -> Address:
    """A header Address from a plain address (for replies)."""
    local, _, domain = addr.partition("@")
    return Address(username=local, domain=domain)


__all__ = ["IMAGE_TYPES", "MIN_PHOTO_BYTES", "Letter", "address_of", "read"]
