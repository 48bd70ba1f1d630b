"""The short forms of every sentence Kanal says, for SMS (Bahasa Indonesia).

One entry per key of :data:`bots.core.prompts.MESSAGES` and :data:`kanal.notices.NOTICES`, with
the same fields (or fewer), each short enough for one 160-character GSM-7 SMS with ordinary
values (``tests/test_sms_render.py`` measures every one). SMS has no buttons, no shared location
and no photos: the short forms ask for an address in words and name the keywords (LAPOR, CEK,
BATAL, BANTUAN) instead of the slash commands.

Choice labels get short forms too; a citizen may answer with the number or the short word.
"""

from __future__ import annotations

from types import MappingProxyType

from bots.core import prompts as p
from kanal.categories import CATEGORIES

SHORT_MESSAGES: MappingProxyType[str, str] = MappingProxyType(
    {
        "greeting": (
            "Halo, ini Kanal, pengaduan warga Jakarta. Ceritakan masalahnya, "
            "mis: sampah menumpuk di Jl. Kemang Raya."
        ),
        "help": (
            "Cara lapor: ceritakan masalah, lalu alamat & kelurahan. Anda dapat nomor laporan. "
            "CEK dan nomornya untuk status, BATAL untuk batal. Darurat: 112"
        ),
        "ask_description": "Ceritakan masalah yang ingin Anda laporkan.",
        "ask_description_again": (
            "Maaf, masalahnya belum jelas. Ceritakan singkat, "
            "mis: lampu jalan mati di depan masjid."
        ),
        "empty": "Pesan Anda kosong.",
        "emoji_only": "Maaf, emoji/stiker belum bisa kami baca.",
        "too_long": "Pesan sangat panjang; {limit} karakter pertama kami simpan.",
        "unknown_command": "Perintah {command} tidak dikenal. Ketik BANTUAN.",
        "confirm_category": "Kategori: {label}. Benar?",
        "ask_category": "Pilih kategori:",
        "category_set": "Kategori: {label}.",
        "ask_location": "Di mana lokasinya? Ketik alamat: nama jalan, patokan, dan kelurahan.",
        "ask_location_offer": "Di mana lokasinya? Ketik alamat dan kelurahan, atau pilih:",
        "ask_location_first": "Lokasi wajib diisi. Ketik alamat: nama jalan dan kelurahan.",
        "ask_kelurahan": "Alamat dicatat. Di kelurahan atau kecamatan apa? (mis: Tebet Barat)",
        "kelurahan_unknown": (
            "Kelurahan/kecamatan itu tidak ada di DKI Jakarta. "
            "Tulis lagi namanya, mis: Tebet Barat."
        ),
        "outside_jakarta": "Lokasi itu di luar DKI Jakarta. Ketik alamat lain di Jakarta.",
        "location_set": "Lokasi: {where}.",
        "ask_photo": "Foto tidak wajib di SMS. Balas LEWATI untuk lanjut.",
        "photo_received": "Foto {n} dari {max} diterima.",
        "photo_limit": "Sudah {max} foto, cukup.",
        "photo_bad": "File itu bukan foto yang bisa kami baca (JPG/PNG, maks {mb} MB).",
        "photo_expected": "Balas LEWATI untuk lanjut.",
        "summary": "Cek laporan: {label}, {where}. Foto: {photos}. Isi: {description}",
        "ask_field": "Bagian mana yang diubah?",
        "ask_new_description": "Tulis deskripsi yang baru.",
        "ask_new_photos": "Foto lama dihapus.",
        "submitted": (
            "Laporan diterima dan sedang diteruskan. Nomor laporan menyusul lewat SMS. "
            "Terima kasih!"
        ),
        "submitted_whole": (
            "Laporan diterima. Nomor laporan menyusul. {summary} Salah? Balas perbaikannya."
        ),
        "summary_filed": "{label}, {where}. Foto: {photos}. Isi: {description}",
        "tracking": "Laporan tercatat, nomor {tracking_id}. Cek status: balas CEK {tracking_id}",
        "cancelled": "Laporan dibatalkan. Kirim SMS lagi untuk laporan baru.",
        "nothing_to_cancel": "Tidak ada laporan yang sedang dibuat.",
        "emergency": (
            "DARURAT? Hubungi 112 (gratis, 24 jam). Damkar 113, Polisi 110, Ambulans 118/119. "
            "Kanal bukan layanan darurat."
        ),
        "resume": "Laporan Anda ({label}) belum selesai. Lanjutkan atau mulai baru?",
        "expired": (
            "Laporan sebelumnya tidak dilanjutkan lebih dari 24 jam, jadi kami hapus. "
            "Silakan mulai lagi."
        ),
        "status_checking": "Sebentar, status laporan {tracking_id} kami cek.",
        "forget_confirm": (
            "Hapus data Anda? Nomor HP dihapus, kabar status berhenti; laporan terkirim tetap "
            "ada tanpa nama, laporan yang sedang dibuat batal."
        ),
        "forgotten": (
            "Nomor Anda sudah kami hapus. Kabar status tidak dikirim lagi; laporan tetap "
            "ditangani tanpa nama."
        ),
        "forget_kept": "Baik, data Anda tidak dihapus.",
        "status_checking_mine": "Sebentar, laporan Anda kami cek.",
        "status_ask_number": "Balas CEK dan nomor laporan Anda, mis: CEK 2400001",
        "thanks": "Sama-sama! Kirim SMS lagi untuk laporan baru.",
        "off_topic": (
            "Maaf, Kanal hanya untuk pengaduan layanan kota Jakarta (sampah, banjir, jalan rusak, "
            "dll)."
        ),
        "choose_please": "Balas dengan nomor pilihan.",
        "rating_thanks": "Terima kasih atas nilai {rating}/5 untuk laporan {tracking_id}.",
        "unavailable": "Maaf, sistem sedang sibuk. Pesan Anda tersimpan; coba lagi nanti.",
    }
)

SHORT_NOTICES: MappingProxyType[str, str] = MappingProxyType(
    {
        "tracking_sent": (
            "Laporan tercatat, nomor {tracking_id} ({label}). Cek status: balas CEK {tracking_id}"
        ),
        "parked": (
            "Maaf, laporan Anda belum diterima sistem CRM. Petugas kami memeriksanya; "
            "tidak perlu kirim ulang."
        ),
        "update": "Laporan {tracking_id}: {status}.",
        "update_note": " Catatan: {note}",
        "update_reason": " Alasan: {note}",
        "update_proof": " Foto bukti: {url}",
        "update_photo": " Foto petugas: {url}",
        "ask_rating": " Beri nilai 1-5 (5 = sangat baik).",
        "lookup_owner": "Laporan {tracking_id}: {status}.",
        "lookup_public": "Laporan {tracking_id}: {status}. Rincian hanya untuk pelapor.",
        "lookup_unknown": "Nomor laporan {tracking_id} tidak ditemukan. Periksa lagi nomornya.",
        "lookup_pending": "Laporan Anda sedang diteruskan; nomornya menyusul lewat SMS.",
        "lookup_none": "Laporan Anda belum ditemukan. Balas CEK dan nomornya, mis: CEK 2400001",
        "lookup_unavailable": "Maaf, status belum bisa dicek. Coba lagi nanti.",
    }
)

# Sentences the engine says without a catalogue key (prefixes of a repeated question).
LITERALS: tuple[str, ...] = ("Lokasi disimpan.", "Foto disimpan.", "Foto ditambahkan.")

SHORT_CATEGORIES: MappingProxyType[str, str] = MappingProxyType(
    {
        "sampah": "Sampah",
        "banjir": "Banjir",
        "jalan_rusak": "Jalan rusak",
        "lampu_jalan": "Lampu jalan",
        "pohon": "Pohon",
        "parkir_liar": "Parkir liar",
        "lalu_lintas": "Lalu lintas",
        "pkl": "PKL",
        "pmks": "Pengemis",
        "fasilitas_umum": "Fasilitas umum",
        "pelanggaran": "Langgar perda",
        "lainnya": "Lainnya",
    }
)

SHORT_CHOICES: MappingProxyType[str, str] = MappingProxyType(
    {
        p.CHOICE_REPORT: "Lapor",
        p.CHOICE_STATUS: "Cek status",
        p.CHOICE_PHOTO_GPS: "Lokasi di foto",
        p.CHOICE_STORY_PLACE: "Kelurahan di cerita",
        p.CHOICE_FORGET: "Hapus",
        # Category labels, as a menu line and inside a sentence ("Kategori: Sampah.").
        **{CATEGORIES[code]: short for code, short in SHORT_CATEGORIES.items()},
    }
)

# How long a citizen's own words may be when a short form quotes them back.
FIELD_LIMITS: MappingProxyType[str, int] = MappingProxyType(
    {"description": 60, "where": 80, "note": 200}
)


def short_choice(label: str) -> str:
    """The short label of a choice (itself when it is short already)."""
    return SHORT_CHOICES.get(label, label)


__all__ = [
    "FIELD_LIMITS",
    "LITERALS",
    "SHORT_CATEGORIES",
    "SHORT_CHOICES",
    "SHORT_MESSAGES",
    "SHORT_NOTICES",
    "short_choice",
]
