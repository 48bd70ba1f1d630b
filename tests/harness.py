"""The table-test harness every channel's tests share (the pattern of courier's handlertest).

A channel's tests are data: a list of :class:`Case`, run by :func:`run_cases`::

    Case("shared location", raw=..., want_inbound=Inbound(...))
    Case("greeting", raw=..., want_reply="Halo")

A case checks ``parse(raw)`` against ``want_inbound`` (``None``: the event is not for us), or
sends the parsed event through the real engine and checks the replies (``want_reply`` is a
substring of their text, ``want_expects`` what the bot waits for next), or checks that parsing
fails politely (``want_error``, a substring of the reply). ``before`` are raw events sent first
in the same conversation.

The runner plants personal values (:data:`PLANTED`: a phone number, an e-mail address, a chat
id, a name) that cases put in their raw events and user ids, and fails if any of them, in any
of its usual spellings, appears in a log line of the run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bots.core.engine import Engine
from bots.core.worker import handle_inbound
from kanal.errors import BadInput
from kanal.messages import Expects, Inbound, Outbound
from kanal.redis import Redis


@dataclass(frozen=True)
class Planted:
    phone: str = "081311112222"
    email: str = "siti.rahma77@contoh.co.id"
    chat_id: str = "778899001"
    name: str = "Siti Rahmawati"

    def spellings(self) -> list[str]:
        """Every way a leak of these values could be written."""
        digits = self.phone.lstrip("0")
        return [
            self.phone,
            "62" + digits,
            "+62" + digits,
            f"{self.phone[:4]}-{self.phone[4:8]}-{self.phone[8:]}",
            self.email,
            self.email.lower(),
            self.chat_id,
            self.name,
            self.name.lower(),
            self.name.split()[-1],
        ]


PLANTED = Planted()
_UNSET: Any = object()


@dataclass(frozen=True)
class Case:
    label: str
    raw: object
    want_inbound: Inbound | None = _UNSET
    want_reply: str | None = None
    want_expects: Expects | None = None
    want_error: str | None = None
    before: tuple[object, ...] = ()
    # Fields of the parsed Inbound that a case does not pin down (ids, timestamps).
    ignore: tuple[str, ...] = field(default=("received_at",))


Parse = Callable[[Any], Inbound | None]


class LeakFound(AssertionError):
    pass


def assert_clean(text: str, planted: Planted = PLANTED, *, where: str = "logs") -> None:
    """Fail if any planted personal value appears in ``text``."""
    for value in planted.spellings():
        if value and value in text:
            line = next(ln for ln in text.splitlines() if value in ln)
            raise LeakFound(f"planted value {value!r} found in {where}: {line[:300]}")


def _dump(inbound: Inbound | None, ignore: Sequence[str]) -> dict[str, Any] | None:
    if inbound is None:
        return None
    doc = inbound.model_dump()
    for name in ignore:
        doc.pop(name, None)
    return doc


async def _replies(engine: Engine, inbound: Inbound) -> list[Outbound]:
    sent: list[Outbound] = []

    async def collect(out: Outbound) -> None:
        sent.append(out)

    await handle_inbound(engine, inbound, collect)
    return sent


async def run_case(case: Case, parse: Parse, engine: Engine | None) -> None:
    if case.want_error is not None:
        try:
            got = parse(case.raw)
        except BadInput as exc:
            assert case.want_error.lower() in (exc.reply or "").lower(), exc.reply
            return
        raise AssertionError(f"parse accepted it: {got!r}")
    inbound = parse(case.raw)
    if case.want_inbound is not _UNSET:
        want, have = _dump(case.want_inbound, case.ignore), _dump(inbound, case.ignore)
        assert have == want, f"parsed\n  {have}\nwanted\n  {want}"
    if case.want_reply is None and case.want_expects is None:
        return
    assert engine is not None, "a reply case needs the engine"
    assert inbound is not None, "the event was ignored, so nothing answers it"
    for raw in case.before:
        earlier = parse(raw)
        if earlier is not None:
            await _replies(engine, earlier)
    replies = await _replies(engine, inbound)
    said = "\n".join(r.text for r in replies)
    if case.want_reply is not None:
        assert case.want_reply.lower() in said.lower(), f"replies were:\n{said}"
    if case.want_expects is not None:
        assert replies and replies[-1].expects == case.want_expects, (
            f"expects {replies[-1].expects if replies else None}, wanted {case.want_expects}"
        )


async def run_cases(
    cases: Sequence[Case],
    parse: Parse,
    *,
    engine: Engine | None = None,
    redis: Redis | None = None,
    logs: io.StringIO,
    planted: Planted = PLANTED,
    extra_check: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run every case (each in a fresh Redis when one is given); report all failures at once,
    then fail if a planted personal value reached a log line."""
    labels = [c.label for c in cases]
    assert len(set(labels)) == len(labels), "case labels must be unique"
    failures: list[str] = []
    for case in cases:
        if redis is not None:
            await redis.flushdb()
        try:
            await run_case(case, parse, engine)
        except AssertionError as exc:
            failures.append(f"[{case.label}] {exc}")
    if extra_check is not None:
        await extra_check()
    text = logs.getvalue()
    for line in text.splitlines():
        json.loads(line)  # every log line is one JSON object
    assert_clean(text, planted)
    assert not failures, "\n".join(failures)


__all__ = ["PLANTED", "Case", "LeakFound", "Planted", "assert_clean", "run_case", "run_cases"]
