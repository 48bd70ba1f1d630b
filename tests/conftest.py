"""Shared fixtures: a real Redis, an engine wired to it, captured logs for redaction checks."""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bots.core.engine import Engine, EngineConfig
from bots.core.gazetteer import Gazetteer
from bots.core.sessions import SessionStore
from kanal import logging as klog
from kanal.keys import Keyring
from kanal.mediastore import LocalMediaStore
from kanal.messages import GeoPoint, Inbound, Outbound, PhotoIn
from kanal.redis import Redis, connect
from nlu.fallback import FallbackNlu, KeywordMatcher
from tests.peers import GAZETTEER, redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything logged during the test, as JSON lines."""
    buf = io.StringIO()
    klog.configure(level="DEBUG", fmt="json", stream=buf)
    yield buf
    klog.configure(level="WARNING", fmt="json")


@pytest.fixture(scope="session")
def matcher() -> KeywordMatcher:
    return KeywordMatcher.from_data_dir()


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    return Gazetteer(GAZETTEER)


class Clock:
    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(["test-secret-key"])


@pytest.fixture
def engine(
    redis: Redis,
    matcher: KeywordMatcher,
    gazetteer: Gazetteer,
    tmp_path: Path,
    clock: Clock,
    keyring: Keyring,
    logs: io.StringIO,
) -> Engine:
    return Engine(
        sessions=SessionStore(redis),
        nlu=FallbackNlu(matcher),
        gazetteer=gazetteer,
        media=LocalMediaStore(tmp_path / "media"),
        keyring=keyring,
        config=EngineConfig(),
        clock=clock,
    )


class Citizen:
    """Drives one conversation: ``await c.say("halo")`` returns the bot's replies."""

    _ids = itertools.count(1)

    def __init__(self, engine: Engine, user: str = "6281234567890", channel: str = "console"):
        self.engine = engine
        self.user = user
        self.channel = channel

    def inbound(self, text: str = "", **kw: object) -> Inbound:
        return Inbound(
            channel=self.channel,
            user_id=self.user,
            event_id=f"ev-{next(self._ids)}",
            text=text,
            **kw,  # type: ignore[arg-type]
        )

    async def say(self, text: str) -> list[Outbound]:
        return await self.engine.handle(self.inbound(text))

    async def share(self, lat: float, lon: float) -> list[Outbound]:
        return await self.engine.handle(self.inbound(location=GeoPoint(lat=lat, lon=lon)))

    async def photo(self, data: bytes) -> list[Outbound]:
        return await self.engine.handle(self.inbound(photos=(PhotoIn(data=data),)))


@pytest.fixture
def citizen(engine: Engine) -> Citizen:
    return Citizen(engine)
