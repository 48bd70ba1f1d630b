"""What the bridge says to citizens, later, on their own channel (Bahasa Indonesia).

The engine's conversation lives in ``bots/core/prompts.py``; these are the sentences of the
bridge (tracking numbers, status updates, lookups), kept in the kernel so that the bridge knows
no conversation. Keep them short enough for one SMS where possible.
"""

from __future__ import annotations

from types import MappingProxyType

# What the CRM's status codes mean to a citizen.
STATUS: MappingProxyType[str, str] = MappingProxyType(
    {
        "received": "diterima",
        "forwarded": "diteruskan ke kelurahan/dinas",
        "in_progress": "dalam pengerjaan",
        "resolved": "selesai",
        "rejected": "ditolak",
        "open": "sedang diproses",
        "closed": "selesai",
    }
)
RATING_CHOICES = ("1", "2", "3", "4", "5")

NOTICES: MappingProxyType[str, str] = MappingProxyType(
    {
        "tracking_sent": (
            "Laporan Anda tercatat dengan nomor {tracking_id} ({label}). Simpan nomor ini; ketik "
            "'cek {tracking_id}' untuk melihat statusnya. Kabar berikutnya akan kami kirim di sini."
        ),
        "parked": (
            "Maaf, laporan Anda belum bisa diterima oleh sistem CRM. Petugas kami akan "
            "memeriksanya; Anda tidak perlu mengirim ulang."
        ),
        "update": "Kabar laporan {tracking_id}: {status}.",
        "update_note": " Catatan petugas: {note}",
        "update_reason": " Alasan: {note}",
        "update_proof": " Foto bukti penanganan: {url}",
        "update_photo": " Foto dari petugas: {url}",
        "ask_rating": (
            " Bagaimana penanganan laporan ini? Beri nilai 1 (buruk) sampai 5 (sangat baik)."
        ),
        "lookup_owner": "Laporan {tracking_id}: {status}.",
        "lookup_public": (
            "Laporan {tracking_id}: {status}. Rincian hanya dikirim kepada pelapornya."
        ),
        "lookup_unknown": (
            "Laporan dengan nomor {tracking_id} tidak ditemukan. Periksa lagi nomornya."
        ),
        "lookup_pending": (
            "Laporan Anda sedang diteruskan ke CRM; nomor laporannya akan kami kirim di sini "
            "begitu tercatat."
        ),
        "lookup_none": (
            "Kami belum menemukan laporan Anda. Ketik nomor laporannya, misalnya: cek 2400001"
        ),
        "lookup_unavailable": (
            "Maaf, status laporan belum bisa dicek saat ini. Coba lagi beberapa saat lagi."
        ),
    }
)


def notice(key: str, **fields: object) -> str:
    return NOTICES[key].format(**fields)


__all__ = ["NOTICES", "RATING_CHOICES", "STATUS", "notice"]
