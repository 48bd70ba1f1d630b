"""Every sentence the engine says to a citizen, in one catalog (Bahasa Indonesia).

What the bridge says later (tracking numbers, status updates) is in :mod:`kanal.notices`.

Templates use ``str.format`` fields. Keep them short enough for a 160-character SMS where
possible, name the thing being asked for in plain words (kategori, lokasi/alamat, kelurahan,
foto, kirim), and never promise what the city has not promised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

# Choice labels shown as buttons or numbered lines. Replying with the text or its number selects it.
CHOICE_REPORT = "Buat laporan"
CHOICE_STATUS = "Cek status laporan"
CHOICE_HELP = "Bantuan"
CHOICE_YES = "Ya"
CHOICE_NO = "Bukan"
CHOICE_SKIP = "Lewati"
CHOICE_DONE = "Selesai"
CHOICE_SEND = "Kirim"
CHOICE_FIX = "Ubah"
CHOICE_CANCEL = "Batal"
CHOICE_CONTINUE = "Lanjutkan"
CHOICE_RESTART = "Mulai baru"
CHOICE_PHOTO_GPS = "Pakai lokasi dari foto"
CHOICE_STORY_PLACE = "Pakai kelurahan/kecamatan di laporan"
CHOICE_FORGET = "Ya, hapus data saya"
CHOICE_KEEP = "Tidak jadi"
FIELD_CHOICES = ("Deskripsi", "Kategori", "Lokasi", "Foto")


MESSAGES: MappingProxyType[str, str] = MappingProxyType(
    {
        "greeting": (
            "Halo! Saya Kanal, layanan pengaduan warga Jakarta (CRM). "
            "Ceritakan masalah yang ingin Anda laporkan, misalnya: "
            '"sampah menumpuk di Jl. Kemang Raya".'
        ),
        "help": (
            "Cara melapor: 1) ceritakan masalahnya, 2) kirim lokasi/alamat, "
            "3) kirim foto (boleh dilewati), 4) periksa ringkasan lalu kirim. "
            "Anda akan menerima nomor laporan. Ketik 'cek <nomor>' untuk melihat status, "
            "'batal' untuk membatalkan. Identitas Anda tidak diteruskan ke petugas. "
            "Keadaan darurat? Hubungi 112."
        ),
        "ask_description": "Silakan ceritakan masalah yang ingin Anda laporkan.",
        "ask_description_again": (
            "Maaf, saya belum menangkap masalahnya. Ceritakan singkat apa yang terjadi, "
            'misalnya "lampu jalan mati di depan masjid".'
        ),
        "empty": "Pesan Anda kosong. {question}",
        "emoji_only": "Maaf, saya belum bisa membaca emoji atau stiker saja. {question}",
        "too_long": (
            "Pesan Anda sangat panjang; kami simpan {limit} karakter pertama sebagai deskripsi."
        ),
        "unknown_command": (
            "Perintah {command} tidak dikenal. Yang tersedia: /start, /bantuan, /batal, "
            "/cek <nomor>. {question}"
        ),
        "confirm_category": "Sepertinya laporan Anda termasuk kategori *{label}*. Benar?",
        "ask_category": "Pilih kategori laporan Anda (balas dengan nomornya):",
        "category_set": "Kategori: {label}.",
        "ask_location": (
            "Di mana lokasinya? Kirim lokasi (share location) atau ketik alamat lengkap "
            "dengan nama jalan dan kelurahan/kecamatan."
        ),
        "ask_location_offer": (
            "Di mana lokasinya? Pilih di bawah, atau kirim lokasi (share location), atau ketik "
            "alamat lengkap dengan nama jalan."
        ),
        "ask_location_first": (
            "Lokasi wajib diisi agar petugas bisa menemukan masalahnya. Kirim lokasi "
            "(share location) atau ketik alamat lengkap."
        ),
        "ask_kelurahan": (
            "Alamat dicatat. Di kelurahan atau kecamatan mana itu? (contoh: Kelurahan Tebet "
            "Barat, atau Kecamatan Tebet)"
        ),
        "kelurahan_unknown": (
            "Maaf, kelurahan/kecamatan itu tidak saya temukan di DKI Jakarta. "
            "Coba tulis lagi nama kelurahan atau kecamatannya, atau kirim lokasi."
        ),
        "outside_jakarta": (
            "Lokasi itu berada di luar wilayah DKI Jakarta, jadi tidak bisa kami teruskan. "
            "Kirim lokasi lain di Jakarta atau ketik alamatnya."
        ),
        "location_set": "Lokasi dicatat: {where}.",
        "ask_photo": (
            "Kirim foto masalahnya (maksimal {max} foto) agar petugas lebih mudah menangani, "
            "atau ketik 'lewati'."
        ),
        "photo_received": (
            "Foto {n} dari {max} diterima. Kirim foto lain, atau ketik 'selesai' untuk lanjut."
        ),
        "photo_limit": "Sudah {max} foto, cukup. Kita lanjut ke ringkasan.",
        "photo_bad": (
            "File itu bukan foto yang bisa kami baca (kirim JPG atau PNG, maksimal {mb} MB). "
            "Kirim foto lain atau ketik 'lewati'."
        ),
        "photo_expected": "Saya menunggu foto. Kirim foto, atau ketik 'lewati' jika tidak ada.",
        "summary": (
            "Ringkasan laporan:\n"
            "- Kategori: {label}\n"
            "- Deskripsi: {description}\n"
            "- Lokasi: {where}\n"
            "- Foto: {photos}\n"
            "Sudah benar? Ketik 'kirim' untuk mengirim, atau pilih bagian yang ingin diubah."
        ),
        "ask_field": "Bagian mana yang ingin diubah?",
        "ask_new_description": "Tulis deskripsi yang baru.",
        "ask_new_photos": "Kirim foto yang baru (foto lama dihapus), atau ketik 'lewati'.",
        "submitted": (
            "Laporan diterima, sedang diteruskan ke CRM. Nomor laporan akan kami kirim "
            "sebentar lagi. Terima kasih!"
        ),
        "submitted_whole": (
            "Laporan Anda kami terima dan sedang diteruskan ke CRM. Nomor laporan akan kami "
            "kirim sebentar lagi.\n{summary}\nJika ada yang keliru, balas pesan ini dengan "
            "perbaikannya."
        ),
        "summary_filed": (
            "Ringkasan laporan:\n"
            "- Kategori: {label}\n"
            "- Deskripsi: {description}\n"
            "- Lokasi: {where}\n"
            "- Foto: {photos}"
        ),
        "tracking": (
            "Laporan Anda tercatat dengan nomor {tracking_id}. Simpan nomor ini; "
            "ketik 'cek {tracking_id}' untuk melihat statusnya. Kabar berikutnya akan "
            "kami kirim di sini."
        ),
        "cancelled": "Laporan dibatalkan. Ketik apa saja jika ingin membuat laporan baru.",
        "nothing_to_cancel": "Tidak ada laporan yang sedang dibuat. {question}",
        "emergency": (
            "Ini keadaan DARURAT? Segera hubungi Jakarta Siaga 112 (gratis, 24 jam). "
            "Pemadam kebakaran 113, Polisi 110, Ambulans 118/119. "
            "Kanal bukan layanan darurat. Jika sudah aman dan ingin membuat laporan "
            "non-darurat, lanjutkan di sini."
        ),
        "resume": (
            "Anda punya laporan yang belum selesai ({label}). "
            "Lanjutkan laporan itu atau mulai baru?"
        ),
        "expired": (
            "Laporan Anda sebelumnya tidak dilanjutkan lebih dari 24 jam, jadi sudah kami "
            "hapus. Silakan mulai lagi."
        ),
        "status_checking": "Sebentar, kami cek status laporan {tracking_id}...",
        "forget_confirm": (
            "Anda meminta data Anda dihapus. Jika ya, kontak Anda kami hapus dari sistem: Anda "
            "tidak akan menerima kabar status laporan lagi, dan laporan yang sudah dikirim tetap "
            "ada di pemerintah kota tanpa nama. Laporan yang sedang dibuat dibatalkan. Hapus data?"
        ),
        "forgotten": (
            "Data kontak Anda sudah kami hapus. Anda tidak akan menerima kabar status lagi; "
            "laporan Anda tetap ditangani pemerintah kota tanpa nama. Terima kasih."
        ),
        "forget_kept": "Baik, data Anda tidak dihapus.",
        "status_checking_mine": "Sebentar, kami cek laporan Anda...",
        "status_ask_number": "Ketik nomor laporan Anda, misalnya: cek 2400001",
        "thanks": "Sama-sama! Ketik apa saja jika ingin membuat laporan baru.",
        "off_topic": (
            "Maaf, Kanal hanya menerima pengaduan tentang layanan kota Jakarta "
            "(sampah, banjir, jalan rusak, dan lain-lain). {question}"
        ),
        "choose_please": "Balas dengan salah satu pilihan (nomor atau teksnya). {question}",
        "rating_thanks": (
            "Terima kasih atas penilaian Anda ({rating}/5) untuk laporan {tracking_id}. "
            "Masukan Anda kami teruskan ke petugas."
        ),
        "unavailable": (
            "Maaf, sistem sedang sibuk. Pesan Anda sudah kami simpan; coba lagi sebentar lagi."
        ),
    }
)


# A channel may say some sentences in its own register (e-mail: formal; SMS: short). The
# engine speaks in the register of the channel whose event it is handling.
_REGISTERS: dict[str, Mapping[str, str]] = {}
_CURRENT: ContextVar[str] = ContextVar("kanal_prompt_register", default="")


def register(channel: str, overrides: Mapping[str, str]) -> None:
    """Let ``channel`` say these keys its own way (every key must exist in MESSAGES)."""
    unknown = set(overrides) - set(MESSAGES)
    if unknown:
        raise KeyError(f"no such prompts: {sorted(unknown)}")
    _REGISTERS[channel] = MappingProxyType(dict(overrides))


@contextmanager
def speaking_for(channel: str) -> Iterator[None]:
    token = _CURRENT.set(channel)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def template(key: str, channel: str | None = None) -> str:
    own = _REGISTERS.get(_CURRENT.get() if channel is None else channel, {})
    return own.get(key) or MESSAGES[key]


def say(key: str, **fields: object) -> str:
    return template(key).format(**fields)


__all__ = ["FIELD_CHOICES", "MESSAGES", "register", "say", "speaking_for", "template"]
