"""A real Rasa server for the tests: trained from nlu/ if the cached model is stale.

Import what you use into a test module (``from tests.nlu_fixtures import rasa_server``). The
server is started once per test session; ``rasa_nlu`` gives each test a fresh client and breaker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from nlu import rasa
from nlu.client import CircuitBreaker, RasaNlu, ResilientNlu
from nlu.fallback import FallbackNlu, KeywordMatcher


@pytest.fixture(scope="session")
def rasa_model() -> Path:
    """The cached model for the current nlu/ (trained now if the data or config changed)."""
    return rasa.train().path


@pytest.fixture(scope="session")
def rasa_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rasa-log")


@pytest.fixture(scope="session")
def rasa_server(rasa_model: Path, rasa_log_dir: Path) -> Iterator[rasa.RasaServer]:
    with rasa.RasaServer(rasa_model, log_dir=rasa_log_dir) as server:
        yield server


@pytest.fixture
async def rasa_nlu(
    rasa_server: rasa.RasaServer, matcher: KeywordMatcher
) -> AsyncIterator[ResilientNlu]:
    nlu = ResilientNlu(
        RasaNlu(rasa_server.url, timeout_s=2.0),
        FallbackNlu(matcher),
        CircuitBreaker(failures=3, cooldown_s=30.0),
    )
    yield nlu
    await nlu.aclose()


__all__ = ["rasa_log_dir", "rasa_model", "rasa_nlu", "rasa_server"]
