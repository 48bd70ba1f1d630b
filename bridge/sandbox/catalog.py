"""What the sandbox CRM offers: Kanal's 12 categories as Open311 services, and status texts."""

from __future__ import annotations

from typing import Any, NamedTuple

from bridge.sandbox.models import ExternalStatus
from kanal.categories import CATEGORIES as KANAL_CATEGORIES


class Category(NamedTuple):
    code: str
    label: str
    group: str


# The city's grouping of Kanal's categories (codes and labels come from kanal.categories).
_GROUPS = {
    "sampah": "Lingkungan",
    "banjir": "Lingkungan",
    "pohon": "Lingkungan",
    "jalan_rusak": "Prasarana",
    "lampu_jalan": "Prasarana",
    "fasilitas_umum": "Prasarana",
    "parkir_liar": "Transportasi",
    "lalu_lintas": "Transportasi",
    "pkl": "Ketertiban",
    "pelanggaran": "Ketertiban",
    "pmks": "Sosial",
    "lainnya": "Lainnya",
}
CATEGORIES: tuple[Category, ...] = tuple(
    Category(code, label, _GROUPS[code]) for code, label in KANAL_CATEGORIES.items()
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
