"""The one contract every ``bots/<channel>/`` package follows.

A channel package exposes, behind its ``__init__`` (see ``bots/console``):

- ``CHANNEL``: a :class:`Channel`: its name, its settings (a :class:`ChannelSettings` whose
  ``required`` fields turn it on), its rate limits and how to build its worker;
- ``parse(raw) -> Inbound | None``: a platform event as the engine reads it, or ``None`` for an
  event that is not for us. Pure: no I/O, no clock, no Redis;
- ``render(out: Outbound) -> payload(s)``: what the platform is sent. Pure as well;
- a worker (``CHANNEL.worker(ctx, settings)``) whose ``run()`` receives events, runs each one
  through :func:`bots.core.worker.handle_inbound` and delivers the outbox
  (:func:`bots.core.outbox.deliver_outbox`); ``routes()`` are the HTTP endpoints it serves.

``kanal run`` starts every channel whose settings are present; ``python -m bots.<channel>``
runs one alone against ``REDIS_URL``. Adding a channel is its own folder, its tests, and one
line in ``kanal/app/channels.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.routing import BaseRoute

from bots.core.engine import Engine
from bots.core.outbox import OutboxPolicy, RateLimits
from kanal.redis import Redis


def channel_config(env_prefix: str) -> SettingsConfigDict:
    """The settings config of a channel: its prefix, read from the environment and ``.env``."""
    return SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_prefix=env_prefix
    )


class ChannelSettings(BaseSettings):
    """A channel's settings. ``required`` lists the fields that must be set to turn it on."""

    model_config = channel_config("")
    required: ClassVar[tuple[str, ...]] = ()

    def missing(self) -> list[str]:
        """The environment variables, by name, that are required and empty."""
        prefix = str(self.model_config.get("env_prefix", ""))
        out = []
        for name in self.required:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if not value:
                out.append((prefix + name).upper())
        return out

    @property
    def enabled(self) -> bool:
        return not self.missing()


@dataclass
class WorkerContext:
    """What the composition root hands a channel worker."""

    redis: Redis
    engine: Engine
    consumer: str = "kanal-1"
    public_url: str = ""
    outbox_policy: OutboxPolicy = field(default_factory=OutboxPolicy)


class Worker(Protocol):
    def routes(self) -> Sequence[BaseRoute]:
        """HTTP endpoints this worker serves on the shared app (webhooks); often none."""
        ...

    async def run(self) -> None:
        """Receive events and deliver the outbox until cancelled."""
        ...


@dataclass(frozen=True)
class Channel:
    name: str
    summary: str
    settings: type[ChannelSettings]
    worker: Callable[[WorkerContext, Any], Worker]
    limits: RateLimits = field(default_factory=RateLimits)


__all__ = ["Channel", "ChannelSettings", "Worker", "WorkerContext", "channel_config"]
