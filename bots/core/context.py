"""What a step handler sees of the turn it runs in.

The engine imports the step handlers (``steps.py``); the handlers know the turn only through
this protocol, so the two modules do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bots.core.gazetteer import Gazetteer
from bots.core.sessions import State
from kanal.messages import Expects, Inbound
from nlu.types import Understanding


@dataclass(frozen=True)
class EngineConfig:
    session_ttl_s: float = 24 * 3600
    resume_after_s: float = 30 * 60
    max_photos: int = 3


class EngineParts(Protocol):
    @property
    def gazetteer(self) -> Gazetteer: ...

    @property
    def config(self) -> EngineConfig: ...


class TurnContext(Protocol):
    """One inbound event applied to one conversation (implemented by the engine)."""

    text: str
    state: State
    inbound: Inbound

    @property
    def e(self) -> EngineParts: ...

    def say(
        self,
        text: str,
        expects: Expects = Expects.NONE,
        choices: tuple[str, ...] = (),
        tracking_id: str | None = None,
        follow_up: int = 0,
    ) -> None: ...

    def ask(self, prefix: str | None = None) -> None: ...

    def next(self, prefix: str | None = None) -> None: ...

    def where(self) -> str: ...

    def choice(self) -> str | None: ...

    async def understand(self) -> Understanding: ...

    def set_point(self) -> bool: ...

    async def take_photos(self) -> bool: ...

    async def take_description(self, u: Understanding | None) -> None: ...

    def submit(self) -> None: ...

    def reset(self) -> None: ...

    def cancel(self) -> None: ...

    def forget(self) -> None: ...


__all__ = ["EngineConfig", "EngineParts", "TurnContext"]
