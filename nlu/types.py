"""What NLU tells the engine about one message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

INTENTS: tuple[str, ...] = (
    "salam",
    "lapor",
    "cek_status",
    "batal",
    "bantuan",
    "darurat",
    "konfirmasi_ya",
    "konfirmasi_tidak",
    "lewati",
    "terima_kasih",
    "nilai",
    "di_luar_topik",
)


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Understanding:
    intent: str
    confidence: float
    category: str | None = None
    category_confidence: float = 0.0
    entities: tuple[Entity, ...] = field(default=())
    source: str = "fallback"

    def entity(self, name: str) -> str | None:
        for e in self.entities:
            if e.entity == name:
                return e.value
        return None


class Nlu(Protocol):
    """The engine's view of NLU: Rasa with a fallback, or the fallback alone."""

    async def parse(self, text: str) -> Understanding: ...


__all__ = ["INTENTS", "Entity", "Nlu", "Understanding"]
