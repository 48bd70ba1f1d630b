"""The photo upload page for SMS citizens: ``GET|POST /u/{token}``.

SMS carries no photos, so the summary SMS may carry a short link instead. The page is a plain
HTML form (no JavaScript, no external resources) that works in a cheap phone's browser.

The token is 16 random URL-safe characters (96 bits): unguessable, and it encodes nothing. What
it stands for lives in Redis: the conversation's pseudonym, the citizen's number sealed with the
keyring (the engine needs it to address the reply SMS), the draft it belongs to and when it
expires. A token is single-use: the first good upload claims it atomically. A second use, an
expired link, a link for a report already sent or cancelled, and a file that is no photo each
get a clear page in Bahasa Indonesia.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from kanal.keys import Keyring
from kanal.redis import Redis, hgetall_str

TOKEN = re.compile(r"[A-Za-z0-9_-]{16}")
KEEP_AFTER_S = 7 * 24 * 3600  # a used or expired token is remembered this long, for its page

# Claim an open, unexpired token: 1 claimed, 0 used already, -1 expired, -2 unknown.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -2 end
if state ~= 'open' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'expires_at')) <= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'state', 'used')
return 1
"""


@dataclass(frozen=True)
class Ticket:
    token: str
    conv: str
    number: str
    draft: str
    expires_at: float
    state: str


class UploadTokens:
    def __init__(
        self,
        redis: Redis,
        keyring: Keyring,
        *,
        ttl_s: float = 3600.0,
        prefix: str = "kanal:sms:upload:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.keyring = keyring
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.clock = clock
        self._claim = redis.register_script(_CLAIM)

    def _key(self, token: str) -> str:
        return self.prefix + token

    async def mint(self, conv: str, number: str, draft: str) -> str:
        token = secrets.token_urlsafe(12)
        key = self._key(token)
        await self.redis.hset(
            key,
            mapping={
                "conv": conv,
                "contact": self.keyring.seal(number.encode()),
                "draft": draft,
                "expires_at": str(self.clock() + self.ttl_s),
                "state": "open",
            },
        )
        await self.redis.expire(key, int(self.ttl_s + KEEP_AFTER_S))
        return token

    async def get(self, token: str) -> Ticket | None:
        if not TOKEN.fullmatch(token):
            return None
        doc = await hgetall_str(self.redis, self._key(token))
        if not doc.get("state"):
            return None
        try:
            number = self.keyring.unseal(doc["contact"]).decode()
            expires_at = float(doc["expires_at"])
        except (KeyError, ValueError):
            return None
        return Ticket(
            token, doc.get("conv", ""), number, doc.get("draft", ""), expires_at, doc["state"]
        )

    def expired(self, ticket: Ticket) -> bool:
        return ticket.expires_at <= self.clock()

    async def claim(self, token: str) -> int:
        return int(await self._claim(keys=[self._key(token)], args=[str(self.clock())]))

    async def release(self, token: str) -> None:
        """Open a claimed token again (the upload could not be recorded: the citizen retries)."""
        await self.redis.hset(self._key(token), "state", "open")


# ---- pages -----------------------------------------------------------------------------------
_STYLE = (
    "body{font-family:sans-serif;max-width:32em;margin:1em auto;padding:0 1em;line-height:1.4}"
    "h1{font-size:1.3em}input,button{font-size:1em;margin:.5em 0}"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"
    ),
}


def page(title: str, *paragraphs: str, form: bool = False) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    if form:
        body += (
            '<form method="post" enctype="multipart/form-data">'
            '<p><label for="foto">Foto (JPG atau PNG, maksimal 10 MB):</label><br>'
            '<input type="file" id="foto" name="foto" accept="image/*" required></p>'
            '<p><button type="submit">Kirim foto</button></p></form>'
        )
    return (
        '<!doctype html><html lang="id"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - Kanal</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


FORM = page(
    "Kirim foto laporan",
    "Pilih foto masalah yang Anda laporkan, lalu tekan Kirim foto. Foto membantu petugas "
    "menemukan dan menangani masalahnya. Data lokasi dan kamera di foto dihapus sebelum "
    "diteruskan.",
    "Tautan ini hanya bisa dipakai sekali.",
    form=True,
)
DONE = page(
    "Foto diterima",
    "Terima kasih! Foto sudah ditambahkan ke laporan Anda. Ringkasan laporan kami kirim lagi "
    "lewat SMS; balas 1 untuk mengirim laporan.",
)
USED = page(
    "Tautan sudah dipakai",
    "Foto sudah pernah dikirim lewat tautan ini. Setiap tautan hanya bisa dipakai sekali.",
    "Laporan Anda tetap bisa dilanjutkan lewat SMS.",
)
EXPIRED = page(
    "Tautan sudah kedaluwarsa",
    "Masa berlaku tautan ini sudah habis, jadi foto tidak bisa dikirim lewat tautan ini lagi.",
    "Laporan Anda tetap bisa dikirim tanpa foto lewat SMS.",
)
UNKNOWN = page(
    "Tautan tidak dikenal",
    "Tautan ini tidak kami kenal. Periksa lagi tautan di SMS dari Kanal.",
)
CLOSED = page(
    "Laporan sudah selesai dibuat",
    "Laporan untuk tautan ini sudah dikirim atau dibatalkan, jadi foto tidak bisa ditambahkan "
    "lagi. Untuk laporan baru, kirim SMS ke Kanal.",
)
NOT_A_PHOTO = page(
    "File bukan foto",
    "File itu bukan foto yang bisa kami baca, atau terlalu besar. Kirim foto JPG atau PNG "
    "berukuran di bawah 10 MB.",
    form=True,
)
BUSY = page(
    "Sistem sedang sibuk",
    "Maaf, foto Anda belum bisa kami simpan. Coba kirim lagi sebentar lagi; tautan ini masih "
    "berlaku.",
    form=True,
)


__all__ = [
    "BUSY",
    "CLOSED",
    "DONE",
    "EXPIRED",
    "FORM",
    "HEADERS",
    "NOT_A_PHOTO",
    "TOKEN",
    "UNKNOWN",
    "USED",
    "Ticket",
    "UploadTokens",
    "page",
]
