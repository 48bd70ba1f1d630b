"""Conversation state in Redis: one JSON document per conversation, a lock, dedup keys.

A message is handled inside :meth:`SessionStore.open`: the per-conversation lock is taken (so two
replicas never interleave one citizen's messages), the state and the event's dedup key are read,
and on exit the new state, the dedup key and any stream entries are written in one MULTI/EXEC
transaction. Either all of a message's effects become durable or none do, so a crash between
the two never loses a report nor files one twice.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field

from kanal import streams
from kanal.errors import LockTimeout
from kanal.messages import Expects
from kanal.redis import Redis, get_str

SEEN_TTL_S = 7 * 24 * 3600
# The dedup key's value once an event's replies reached the platform (before: its sealed replies).
DELIVERED = "d"


class Step(StrEnum):
    IDLE = "idle"
    DESCRIPTION = "description"
    CATEGORY_CONFIRM = "category_confirm"
    CATEGORY = "category"
    LOCATION = "location"
    KELURAHAN = "kelurahan"
    PHOTO = "photo"
    CONFIRM = "confirm"
    FIELD = "field"
    RESUME = "resume"
    FORGET = "forget"


class Draft(BaseModel):
    description: str | None = None
    category: str | None = None
    category_guess: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    kelurahan: str | None = None
    kecamatan: str | None = None
    kota: str | None = None
    photos: list[str] = Field(default_factory=list)
    photos_done: bool = False
    photo_gps: tuple[float, float] | None = None

    @property
    def has_location(self) -> bool:
        return self.lat is not None or (self.address is not None and self.kecamatan is not None)


class State(BaseModel):
    step: Step = Step.IDLE
    draft: Draft = Field(default_factory=Draft)
    expects: Expects = Expects.NONE
    choices: list[str] = Field(default_factory=list)
    editing: bool = False
    paused_step: Step | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    reports: list[str] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.step not in (Step.IDLE,)


@dataclass
class Turn:
    """One message's view of a conversation: read state, then queued effects."""

    conv: str
    state: State
    seen: bool
    # What the event's first run answered (sealed), when ``seen``; what this run answers, to
    # be stored with the dedup key on commit.
    replay: str = ""
    # The report whose rating the bridge asked for (set when the CRM closed it), if any.
    rating_for: str | None = None
    entries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hashes: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def emit(self, stream: str, fields: dict[str, str]) -> None:
        self.entries.append((stream, fields))

    def store_hash(self, key: str, fields: dict[str, str]) -> None:
        self.hashes.append((key, fields))

    def delete(self, key: str) -> None:
        self.deletes.append(key)


# Taking the lock and reading the conversation is one round trip; so is committing the turn
# and letting go of the lock. (redis-py's Lock plus a pipeline needed four.)
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local seen = redis.call('GET', KEYS[3])
  return {1, redis.call('GET', KEYS[2]) or '', seen and 1 or 0, seen or '',
          redis.call('GET', KEYS[4]) or ''}
end
return {0}
"""
# KEYS: lock, state, seen, then one key per hash and per stream entry, in ARGV's order, then the
# keys to delete. ARGV: token, state, state ttl, seen ttl, n hashes, n entries, the turn's sealed
# replies (kept under the dedup key, for a redelivered event), then per effect: n fields, fields.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[4])
local nh, ne = tonumber(ARGV[5]), tonumber(ARGV[6])
local a = 8
for i = 1, nh + ne do
  local n = tonumber(ARGV[a])
  local fields = {}
  for j = 1, n do fields[j] = ARGV[a + j] end
  if i <= nh then
    redis.call('HSET', KEYS[3 + i], unpack(fields))
  else
    redis.call('XADD', KEYS[3 + i], '*', unpack(fields))
  end
  a = a + n + 1
end
for i = 4 + nh + ne, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        *,
        ttl_s: float = 48 * 3600,
        lock_timeout_s: float = 10.0,
        lock_wait_s: float = 5.0,
        prefix: str = "kanal",
    ) -> None:
        self.redis = redis
        self.ttl_s = int(ttl_s)
        self.lock_timeout_s = lock_timeout_s
        self.lock_wait_s = lock_wait_s
        self.prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._commit = redis.register_script(_COMMIT)
        self._release = redis.register_script(_RELEASE)

    def state_key(self, conv: str) -> str:
        return self._state_key(conv)

    def _state_key(self, conv: str) -> str:
        return f"{self.prefix}:conv:{conv}"

    def _seen_key(self, channel: str, event_id: str) -> str:
        return f"{self.prefix}:seen:{channel}:{event_id}"

    async def delivered(self, channel: str, event_id: str) -> None:
        """The event's replies reached the platform: a redelivery needs no replay any more."""
        await self.redis.set(self._seen_key(channel, event_id), DELIVERED, xx=True, keepttl=True)

    async def load(self, conv: str) -> State:
        raw = await get_str(self.redis, self._state_key(conv))
        return State.model_validate_json(raw) if raw else State()

    async def _lock(self, keys: list[str], token: str) -> tuple[str | None, bool, str, str | None]:
        deadline = time.monotonic() + self.lock_wait_s
        delay = 0.002
        ttl_ms = str(int(self.lock_timeout_s * 1000))
        while True:
            reply = await self._acquire(keys=keys, args=[token, ttl_ms])
            if reply[0] == 1:
                return (reply[1] or None), bool(reply[2]), reply[3], (reply[4] or None)
            if time.monotonic() >= deadline:
                raise LockTimeout("conversation is busy")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    @asynccontextmanager
    async def open(self, conv: str, channel: str, event_id: str) -> AsyncIterator[Turn]:
        """Lock the conversation, read it, and commit the turn's effects atomically on exit."""
        lock_key = f"{self.prefix}:lock:{conv}"
        keys = [lock_key, self._state_key(conv), self._seen_key(channel, event_id)]
        token = uuid.uuid4().hex
        raw, seen, replay, rating_for = await self._lock([*keys, streams.rating_key(conv)], token)
        committed = False
        try:
            state = State.model_validate_json(raw) if raw else State()
            turn = Turn(conv=conv, state=state, seen=seen, replay=replay, rating_for=rating_for)
            yield turn
            if turn.seen:
                return
            args: list[str | int] = [
                token,
                turn.state.model_dump_json(),
                self.ttl_s,
                SEEN_TTL_S,
                len(turn.hashes),
                len(turn.entries),
                turn.replay,
            ]
            effect_keys: list[str] = []
            for key, mapping in [*turn.hashes, *turn.entries]:
                effect_keys.append(key)
                flat = [x for kv in mapping.items() for x in kv]
                args += [len(flat), *flat]
            if not await self._commit(keys=keys + effect_keys + turn.deletes, args=args):
                raise LockTimeout("conversation lock expired before commit")
            committed = True
        finally:
            if not committed:
                await self._release(keys=[lock_key], args=[token])


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


__all__ = ["DELIVERED", "Draft", "SessionStore", "State", "Step", "Turn", "dumps"]
