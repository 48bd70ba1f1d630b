"""The NLU the gateway runs with: the configured Rasa, or the managed one, always with a fallback.

``async with open_nlu(settings.rasa, data_dir=...) as nlu:`` gives a :class:`ResilientNlu`.

- ``RASA_URL`` set: that server, nothing is started.
- ``RASA_URL`` empty: a :class:`nlu.rasa.RasaServer` on a free port of 127.0.0.1, trained from
  ``nlu/`` first if the cached model is stale. With ``wait=True`` (the CLI) the block starts once
  the model is loaded; with ``wait=False`` (``kanal run``) it starts at once and the keyword
  matcher answers until Rasa is up (refused connections open the breaker; it is closed as soon
  as the model is loaded). If Rasa cannot be had at all (no Python 3.10, a failed install), the
  gateway keeps the keyword matcher and says so in one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from kanal.logging import get_logger
from kanal.settings import RasaSettings
from nlu.client import CircuitBreaker, RasaNlu, ResilientNlu
from nlu.rasa import RasaServer
from nlu.types import Nlu

log = get_logger(__name__)


@contextlib.asynccontextmanager
async def open_nlu(
    settings: RasaSettings,
    *,
    data_dir: Path = Path("var"),
    wait: bool = True,
    fallback: Nlu | None = None,
    breaker: CircuitBreaker | None = None,
) -> AsyncIterator[ResilientNlu]:
    if settings.url:
        nlu = ResilientNlu(RasaNlu(settings.url, settings.timeout_s), fallback, breaker)
        try:
            yield nlu
        finally:
            await nlu.aclose()
        return
    server = RasaServer(log_dir=data_dir)
    nlu = ResilientNlu(RasaNlu(server.url, settings.timeout_s), fallback, breaker)
    starting: asyncio.Task[None] | None = None
    try:
        if wait:
            await asyncio.to_thread(server.start)
        else:
            starting = asyncio.create_task(_start_in_background(server, nlu), name="rasa-start")
        nlu.server = server
        yield nlu
    finally:
        await asyncio.to_thread(server.stop)
        if starting is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        await nlu.aclose()


async def _start_in_background(server: RasaServer, nlu: ResilientNlu) -> None:
    try:
        await asyncio.to_thread(server.start)
    except Exception as exc:
        if not server.stopping:  # not merely shut down before it was up
            log.warning("rasa_unavailable", error=type(exc).__name__, detail=str(exc)[:300])
    else:
        nlu.breaker.success()  # refusals while it was loading must not keep it out for long


__all__ = ["open_nlu"]
