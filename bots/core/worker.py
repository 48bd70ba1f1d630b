"""The loop shared by every adapter: inbound → engine → replies, and the outbox → platform.

Replies to a citizen's own message are sent straight back. Anything the bridge says later
(tracking numbers, status updates) arrives on ``kanal:outbox:<channel>`` and is delivered by
:func:`deliver_outbox`, acknowledged only after the platform accepted it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bots.core.engine import Engine
from bots.core.models import Inbound, Outbound
from kanal import streams
from kanal.errors import KanalError
from kanal.logging import get_logger
from kanal.redis import Redis

log = get_logger(__name__)

Send = Callable[[Outbound], Awaitable[None]]


async def handle_inbound(engine: Engine, inbound: Inbound, send: Send) -> list[Outbound]:
    """Run one event through the engine and send the replies; errors are logged, not raised."""
    try:
        replies = await engine.handle(inbound)
    except KanalError as exc:
        log.warning("inbound_failed", channel=inbound.channel, error=type(exc).__name__)
        raise
    for out in replies:
        await send(out)
    return replies


async def publish(redis: Redis, out: Outbound) -> str:
    """Queue a message for a channel's outbox (used by the bridge)."""
    entry_id = await redis.xadd(streams.outbox(out.channel), {"outbound": out.model_dump_json()})
    return str(entry_id)


async def deliver_outbox(
    redis: Redis,
    channel: str,
    send: Send,
    *,
    group: str | None = None,
    consumer: str = "worker-1",
    accept: Callable[[Outbound], bool] | None = None,
    start_id: str = "0",
    block_ms: int = 500,
) -> None:
    """Deliver ``kanal:outbox:<channel>`` forever; ack each entry after ``send`` returned."""
    stream = streams.outbox(channel)
    group = group or f"{channel}-senders"
    await streams.ensure_group(redis, stream, group, start_id=start_id)
    async for entry_id, fields in streams.consume(
        redis, stream, group, consumer, block_ms=block_ms
    ):
        try:
            out = Outbound.model_validate_json(fields["outbound"])
        except (KeyError, ValueError):
            log.error("outbox_bad_entry", channel=channel, entry=entry_id)
            await redis.xack(stream, group, entry_id)
            continue
        if accept is None or accept(out):
            while True:
                try:
                    await send(out)
                    break
                except KanalError as exc:
                    if not exc.retryable:
                        log.error("outbox_send_failed", channel=channel, conv=out.conv)
                        break
                    await asyncio.sleep(1.0)
        await redis.xack(stream, group, entry_id)


__all__ = ["Send", "deliver_outbox", "handle_inbound", "publish"]
