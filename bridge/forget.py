"""The right to be forgotten (UU PDP 27/2022): remove everything that leads back to a reporter.

A citizen's "hapus data saya" (confirmed) puts their pseudonym on ``kanal:forget``; an operator
handling a written request runs ``kanal vault forget --channel C --user U``. Both end here:

- the vault record (the sealed contact) and the set of open reports;
- every map from a report back to the pseudonym (``kanal:req:<id>``'s ``conv``), so the relay
  treats later updates as updates of a report it does not know: nothing reaches the citizen;
- the conversation state, a channel's own state of it (``kanal:conv:<conv>:*``: an e-mail
  thread), a pending rating question, the unreachable mark;
- the messages that carried the contact in plaintext: entries of every outbox and dead-letter
  stream addressed to the pseudonym, and the complaints already filed from it (their entry held
  the story as the citizen wrote it; the CRM keeps its scrubbed copy, without a name).

A report not yet filed stays queued and is filed without a name: the complaint itself is the
city's. What cannot be undone is said plainly to the citizen by the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kanal import streams
from kanal.logging import get_logger
from kanal.redis import Redis, hget_str, xrange_str

log = get_logger(__name__)

FORGET_GROUP = "bridge-forget"


@dataclass(frozen=True)
class Forgotten:
    reports: int
    messages: int


async def forget(redis: Redis, conv: str) -> Forgotten:
    """Remove every trace of ``conv`` (a pseudonym) from Redis; returns what was removed."""
    reports = 0
    async for key in redis.scan_iter(match="kanal:req:*", count=500):
        if await hget_str(redis, key, "conv") == conv:
            await redis.hdel(key, "conv")
            reports += 1
    vault = streams.vault_key(conv)
    # a channel's own state of the conversation (an e-mail thread) lives under its key too
    owned = [k async for k in redis.scan_iter(match=f"kanal:conv:{conv}:*", count=200)]
    await redis.delete(
        vault,
        vault + ":open",
        f"kanal:conv:{conv}",
        streams.rating_key(conv),
        streams.unreachable_key(conv),
        *owned,
    )
    messages = 0
    stream_keys = [streams.COMPLAINTS, streams.PARKED, streams.LOOKUPS, streams.RATINGS]
    stream_keys += [k async for k in redis.scan_iter(match="kanal:outbox:*", count=200)]
    for stream in stream_keys:
        messages += await _drop_entries(redis, stream, conv)
    log.info("reporter_forgotten", reports=reports, messages=messages)
    return Forgotten(reports=reports, messages=messages)


async def _drop_entries(redis: Redis, stream: str, conv: str) -> int:
    """Delete the entries of ``stream`` that belong to ``conv`` and are done with: acknowledged
    by every group (a complaint still to be filed stays; it is filed without a name)."""
    if await redis.type(stream) != "stream":
        return 0
    pending: set[str] = set()
    groups = await redis.xinfo_groups(stream)
    for group in groups:
        name = group["name"]
        last = group.get("last-delivered-id", "0-0")
        rows = await redis.xpending_range(stream, name, min="-", max="+", count=10_000)
        pending.update(str(r["message_id"]) for r in rows)
        pending.update(
            entry_id
            for entry_id, _ in await xrange_str(redis, stream, min=_after(last), count=10_000)
        )
    dropped = 0
    for entry_id, fields in await xrange_str(redis, stream, count=100_000):
        if entry_id in pending or not _belongs(fields, conv):
            continue
        await redis.xdel(stream, entry_id)
        dropped += 1
    return dropped


def _after(entry_id: str) -> str:
    return "(" + entry_id if entry_id and entry_id != "0-0" else "-"


def _belongs(fields: dict[str, str], conv: str) -> bool:
    if fields.get("conv") == conv:
        return True
    for name in ("outbound", "complaint"):
        raw = fields.get(name)
        if raw:
            try:
                if json.loads(raw).get("conv") == conv:
                    return True
            except (ValueError, AttributeError):
                continue
    return False


async def run_forget(redis: Redis, consumer: str) -> None:
    """The bridge's task: carry out each confirmed "hapus data saya"."""
    async for entry_id, fields in streams.consume(redis, streams.FORGET, FORGET_GROUP, consumer):
        conv = fields.get("conv", "")
        if conv:
            await forget(redis, conv)
        await redis.xack(streams.FORGET, FORGET_GROUP, entry_id)
        await redis.xdel(streams.FORGET, entry_id)  # the request itself names the pseudonym


__all__ = ["FORGET_GROUP", "Forgotten", "forget", "run_forget"]
