"""Stream names and consumer-group helpers (at-least-once; ack only after the effect is durable)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from redis.exceptions import ResponseError

from kanal.redis import Redis

COMPLAINTS = "kanal:complaints"
PARKED = "kanal:complaints:parked"
# A citizen's confirmed "hapus data saya": the bridge removes everything that leads back.
FORGET = "kanal:forget"
LOOKUPS = "kanal:lookups"
RATINGS = "kanal:ratings"
UPDATES = "kanal:updates"


def outbox(channel: str) -> str:
    return f"kanal:outbox:{channel}"


def dead_letters(channel: str) -> str:
    """Messages a channel could not deliver, with the reason (``kanal outbox dead list``)."""
    return f"kanal:outbox:{channel}:dead"


def vault_key(conv: str) -> str:
    return f"kanal:vault:{conv}"


def rating_key(conv: str) -> str:
    """Set by the bridge when a report closes: which report the citizen's next 1-5 rates."""
    return f"kanal:rating:{conv}"


def unreachable_key(conv: str) -> str:
    """Set when a channel says this pseudonym's contact is gone (blocked the bot, no such
    number): the bridge stops sending it status updates. A new message from it clears it."""
    return f"kanal:unreachable:{conv}"


async def ensure_group(redis: Redis, stream: str, group: str, *, start_id: str = "0") -> None:
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def consume(
    redis: Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    block_ms: int = 1000,
    count: int = 16,
    claim_idle_ms: int = 30_000,
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Yield entries for this consumer: first its own pending ones (after a crash), then entries
    other consumers left idle too long, then new ones. The caller acks with ``XACK``."""
    await ensure_group(redis, stream, group)
    pending = await redis.xreadgroup(group, consumer, {stream: "0"}, count=1000)
    for entry_id, fields in _entries(pending):
        if fields:
            yield entry_id, fields
    while True:
        claimed: list[Any] = await redis.xautoclaim(
            stream, group, consumer, claim_idle_ms, "0-0", count=count
        )
        for entry_id, fields in cast(list[tuple[str, dict[str, str]]], claimed[1] or []):
            if fields:
                yield entry_id, fields
        batch = await redis.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
        for entry_id, fields in _entries(batch):
            yield entry_id, fields


def _entries(reply: object) -> list[tuple[str, dict[str, str]]]:
    """Flatten an XREADGROUP reply, ``[[stream, [(id, fields), ...]], ...]``, to entries."""
    out: list[tuple[str, dict[str, str]]] = []
    for _, entries in cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], reply or []):
        out.extend(entries)
    return out


__all__ = [
    "COMPLAINTS",
    "FORGET",
    "LOOKUPS",
    "PARKED",
    "RATINGS",
    "UPDATES",
    "consume",
    "dead_letters",
    "ensure_group",
    "outbox",
    "rating_key",
    "unreachable_key",
    "vault_key",
]
