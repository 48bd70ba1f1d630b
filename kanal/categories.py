"""The 12 CRM category codes (a fixed contract) and the labels citizens see."""

from __future__ import annotations

from types import MappingProxyType

CATEGORIES: MappingProxyType[str, str] = MappingProxyType(
    {
        "sampah": "Sampah & kebersihan",
        "banjir": "Banjir, genangan & saluran air",
        "jalan_rusak": "Jalan rusak / berlubang",
        "lampu_jalan": "Lampu penerangan jalan umum (PJU)",
        "pohon": "Pohon tumbang / rawan tumbang / perlu dipangkas",
        "parkir_liar": "Parkir liar & juru parkir liar",
        "lalu_lintas": "Kemacetan, lampu lalu lintas, rambu & marka",
        "pkl": "Pedagang kaki lima liar",
        "pmks": "Pengemis, gelandangan, ODGJ terlantar",
        "fasilitas_umum": "Fasilitas umum rusak (trotoar, taman, halte, JPO, toilet umum)",
        "pelanggaran": "Pelanggaran perda/pergub (bangunan liar, usaha melanggar aturan)",
        "lainnya": "Lainnya",
    }
)

CODES: tuple[str, ...] = tuple(CATEGORIES)


def label(code: str) -> str:
    return CATEGORIES.get(code, CATEGORIES["lainnya"])


__all__ = ["CATEGORIES", "CODES", "label"]
