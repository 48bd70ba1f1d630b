"""Switches that make the sandbox behave like other real Open311 servers, not like the client
it was written with: string update ids, token responses, a city's own service codes, no
``Idempotency-Key`` support, a feed cut at a page size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# Another city's service list: its own codes for Kanal's categories (and none for two of them).
CITY_CODES: Mapping[str, str] = MappingProxyType(
    {
        "sampah": "KEBERSIHAN-01",
        "banjir": "SDA-02",
        "jalan_rusak": "BM-03",
        "lampu_jalan": "PJU-04",
        "pohon": "TAMAN-05",
        "parkir_liar": "DISHUB-06",
        "lalu_lintas": "DISHUB-07",
        "pkl": "UMKM-08",
        "pmks": "DINSOS-09",
        "lainnya": "UMUM-99",
    }
)


@dataclass(frozen=True)
class SandboxMode:
    # update_id as "<request id>-<n>" (as some CRMs do), never a bare number.
    string_update_ids: bool = False
    # POST requests.json answers [{"token"}]; the id appears on tokens/{token}.json later.
    tokens: bool = False
    token_delay_s: float = 1.0
    # Kanal category -> this CRM's service code; None: Kanal's own codes.
    service_codes: Mapping[str, str] | None = None
    # False: the Idempotency-Key header is ignored, as by most real servers.
    honour_idempotency_key: bool = True
    # servicerequestupdates.json returns at most this many (oldest first), as a paged feed.
    max_updates: int | None = None

    def kanal_category(self, service_code: str) -> str | None:
        """The Kanal category behind one of this CRM's codes (None: not one of ours)."""
        if self.service_codes is None:
            return service_code
        for category, code in self.service_codes.items():
            if code == service_code:
                return category
        return None


DEFAULT = SandboxMode()

__all__ = ["CITY_CODES", "DEFAULT", "SandboxMode"]
