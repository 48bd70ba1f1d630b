"""Conversation state in Redis: one JSON document per conversation, a lock, dedup keys.

A message is handled inside :meth:`SessionStore.open`: the per-conversation lock is taken (so two
replicas never interleave one citizen's messages), the state and the event's dedup key are read,
and on exit the new state, the dedup key and any stream entries are written in one MULTI/EXEC
transaction. Either all of a message's effects become durable or none do, so a crash between
the two never loses a report nor files one twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field
from redis.exceptions import LockError

from bots.core.models import Expects
from kanal.errors import LockTimeout
from kanal.redis import Redis
from kanal.redis import fields as redis_fields

SEEN_TTL_S = 7 * 24 * 3600


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
    entries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hashes: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def emit(self, stream: str, fields: dict[str, str]) -> None:
        self.entries.append((stream, fields))

    def store_hash(self, key: str, fields: dict[str, str]) -> None:
        self.hashes.append((key, fields))


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

    def _state_key(self, conv: str) -> str:
        return f"{self.prefix}:conv:{conv}"

    def _seen_key(self, channel: str, event_id: str) -> str:
        return f"{self.prefix}:seen:{channel}:{event_id}"

    async def load(self, conv: str) -> State:
        raw = await self.redis.get(self._state_key(conv))
        return State.model_validate_json(raw) if raw else State()

    @asynccontextmanager
    async def open(self, conv: str, channel: str, event_id: str) -> AsyncIterator[Turn]:
        lock = self.redis.lock(
            f"{self.prefix}:lock:{conv}",
            timeout=self.lock_timeout_s,
            blocking_timeout=self.lock_wait_s,
        )
        if not await lock.acquire():
            raise LockTimeout(f"conversation {conv} is busy")
        try:
            seen_key = self._seen_key(channel, event_id)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(self._state_key(conv))
                pipe.exists(seen_key)
                raw, seen = await pipe.execute()
            state = State.model_validate_json(raw) if raw else State()
            turn = Turn(conv=conv, state=state, seen=bool(seen))
            yield turn
            if turn.seen:
                return
            async with self.redis.pipeline(transaction=True) as tx:
                tx.set(self._state_key(conv), turn.state.model_dump_json(), ex=self.ttl_s)
                tx.set(seen_key, "1", ex=SEEN_TTL_S)
                for key, mapping in turn.hashes:
                    tx.hset(key, mapping=redis_fields(mapping))
                for stream, fields in turn.entries:
                    tx.xadd(stream, redis_fields(fields))
                await tx.execute()
        finally:
            # If the lock expired under us, the transaction above was still atomic.
            with contextlib.suppress(LockError):
                await lock.release()


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


__all__ = ["Draft", "SessionStore", "State", "Step", "Turn", "dumps"]
