"""Which of the CRM's service codes each Kanal category is filed under.

Kanal's 12 category codes are fixed; a city's CRM has its own service list (``GET
services.json``). ``CRM_SERVICE_MAP`` names a YAML or JSON file that maps categories to the
CRM's codes, with an optional ``fallback``::

    lampu_jalan: PJU-01
    jalan_rusak: JLN-02
    fallback: UMUM

Without the file the mapping is the identity. A category whose code the CRM does not list is
filed under the fallback (the mapped ``lainnya`` when no fallback is named), never dropped. A
second city needs only its own file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kanal.categories import CODES
from kanal.errors import ConfigError
from kanal.logging import get_logger

log = get_logger(__name__)


@dataclass
class ServiceMap:
    mapping: dict[str, str] = field(default_factory=lambda: {c: c for c in CODES})
    fallback: str | None = None
    # The CRM's own codes, once read from services.json; None: not known (yet).
    offered: frozenset[str] | None = None

    @classmethod
    def from_file(cls, path: str | Path | None) -> ServiceMap:
        if not path:
            return cls()
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"CRM_SERVICE_MAP {path}: {type(exc).__name__}") from exc
        if not isinstance(doc, Mapping):
            raise ConfigError(f"CRM_SERVICE_MAP {path}: expected a mapping of category: code")
        unknown = sorted(set(doc) - set(CODES) - {"fallback"})
        if unknown:
            raise ConfigError(f"CRM_SERVICE_MAP {path}: unknown categories {unknown}")
        mapping = {c: str(doc.get(c, c)) for c in CODES}
        fallback = str(doc["fallback"]) if doc.get("fallback") else None
        return cls(mapping=mapping, fallback=fallback)

    def learn(self, codes: Iterable[str]) -> None:
        """The CRM's service list, from ``services.json``."""
        self.offered = frozenset(codes)
        for category in self.missing():
            log.warning(
                "crm_service_missing",
                category=category,
                service_code=self.mapping[category],
                filed_as=self.code(category),
            )

    def missing(self) -> list[str]:
        """Categories whose mapped code the CRM does not offer (empty while not known)."""
        if self.offered is None:
            return []
        return [c for c in CODES if self.mapping[c] not in self.offered]

    def code(self, category: str) -> str:
        """The service code to file ``category`` under."""
        code = self.mapping.get(category, category)  # not a Kanal code: let the CRM judge
        if self.offered is None or code in self.offered:
            return code
        for candidate in (self.fallback, self.mapping["lainnya"]):
            if candidate and candidate in self.offered:
                return candidate
        return self.fallback or code  # nothing better is known: let the CRM say what it thinks


__all__ = ["ServiceMap"]
