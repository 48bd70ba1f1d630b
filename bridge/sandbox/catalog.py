"""What the sandbox CRM offers: Kanal's 12 categories as Open311 services, and status texts."""

from __future__ import annotations

from typing import Any, NamedTuple

from bridge.sandbox.models import ExternalStatus


class Category(NamedTuple):
    code: str
    label: str
    group: str


CATEGORIES: tuple[Category, ...] = (
    Category("sampah", "Sampah & kebersihan", "Lingkungan"),
    Category("banjir", "Banjir, genangan & saluran air", "Lingkungan"),
    Category("jalan_rusak", "Jalan rusak / berlubang", "Prasarana"),
    Category("lampu_jalan", "Lampu penerangan jalan umum (PJU)", "Prasarana"),
    Category("pohon", "Pohon tumbang / rawan tumbang / perlu dipangkas", "Lingkungan"),
    Category("parkir_liar", "Parkir liar & juru parkir liar", "Transportasi"),
    Category("lalu_lintas", "Kemacetan, lampu lalu lintas, rambu & marka", "Transportasi"),
    Category("pkl", "Pedagang kaki lima liar", "Ketertiban"),
    Category("pmks", "Pengemis, gelandangan, ODGJ terlantar", "Sosial"),
    Category(
        "fasilitas_umum",
        "Fasilitas umum rusak (trotoar, taman, halte, JPO, toilet umum)",
        "Prasarana",
    ),
    Category(
        "pelanggaran",
        "Pelanggaran perda/pergub (bangunan liar, usaha melanggar aturan)",
        "Ketertiban",
    ),
    Category("lainnya", "Lainnya", "Lainnya"),
)
BY_CODE: dict[str, Category] = {category.code: category for category in CATEGORIES}

# Attributes Kanal sends with every request; none is required, all are plain strings.
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("kelurahan", "Kelurahan lokasi laporan"),
    ("kecamatan", "Kecamatan lokasi laporan"),
    ("channel", "Kanal pelaporan (telegram, twitter, email, sms)"),
    ("reporter", "Pseudonim pelapor"),
)

# Submitted Open311 fields that identify a person: accepted per the spec, never stored.
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {"email", "first_name", "last_name", "phone", "device_id", "account_id", "name"}
)

SERVICE_NOTICE = "Laporan diterima dan akan diverifikasi petugas."
DEFAULT_NOTES: dict[ExternalStatus, str] = {
    "received": SERVICE_NOTICE,
    "forwarded": "Laporan diteruskan ke kelurahan/dinas terkait.",
    "in_progress": "Laporan sedang ditindaklanjuti petugas.",
    "resolved": "Laporan telah selesai ditangani.",
    "rejected": "Laporan ditolak.",
}


def service_json(category: Category) -> dict[str, Any]:
    """An Open311 ``service`` object."""
    return {
        "service_code": category.code,
        "service_name": category.label,
        "description": category.label,
        "metadata": False,
        "type": "realtime",
        "keywords": category.code.replace("_", " "),
        "group": category.group,
    }


def definition_json(category: Category) -> dict[str, Any]:
    """An Open311 service definition: the optional attributes Kanal fills in."""
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": True,
                "code": code,
                "datatype": "string",
                "required": False,
                "datatype_description": None,
                "order": order,
                "description": description,
            }
            for order, (code, description) in enumerate(ATTRIBUTES, start=1)
        ],
    }
