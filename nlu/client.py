"""The gateway's side of Rasa: an HTTP client, a circuit breaker, and a fallback that never fails.

``ResilientNlu(RasaNlu(url), FallbackNlu())`` is what the engine gets. Each message goes to Rasa's
``POST /model/parse`` with a timeout; a refused connection, a timeout, a 5xx or a malformed answer
counts as a failure, and the keyword matcher answers instead, so the citizen notices nothing but a
menu where Rasa would have understood. After ``failures`` failures in a row the breaker opens and
Rasa is left alone for ``cooldown_s``; then one message tries it again (half-open).

Logs carry event names, latencies, intents and categories, never the text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from kanal.categories import CODES
from kanal.errors import PermanentPeerError, TemporaryPeerError
from kanal.logging import get_logger
from nlu.fallback import _EMERGENCY, _HEDGE, _STATUS_WORDS, _TRACKING, FallbackNlu
from nlu.normalize import normalize
from nlu.rasa import RasaServer
from nlu.types import INTENTS, Entity, Nlu, Understanding

log = get_logger(__name__)

CATEGORIES: tuple[str, ...] = CODES  # the contract lives in kanal.categories
ENTITIES = frozenset({"lokasi", "kelurahan", "kecamatan", "nomor_laporan", "rating"})
_PLACES = frozenset({"lokasi", "kelurahan", "kecamatan"})
_STARS = {"satu": "1", "dua": "2", "tiga": "3", "empat": "4", "lima": "5"}
_STAR_WORD = re.compile(r"(?<![\w.,])([1-5]|satu|dua|tiga|empat|lima)(?![\w.,])", re.I)


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → half-open after ``cooldown_s``."""

    def __init__(
        self,
        failures: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go through now? (In half-open state: one trial at a time.)"""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open":
            self.opened_at = self.clock()  # one trial; the others wait for its outcome
            return True
        return False

    def success(self) -> None:
        if self.opened_at is not None:
            log.info("nlu_breaker_closed")
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            if self.opened_at is None:
                log.warning("nlu_breaker_open", failures=self.failures)
            self.opened_at = self.clock()


class RasaNlu:
    """The :class:`nlu.types.Nlu` protocol over a Rasa server's ``POST /model/parse``.

    Raises :class:`kanal.errors.TemporaryPeerError` when Rasa cannot answer (refused, timeout,
    5xx) and :class:`kanal.errors.PermanentPeerError` when its answer makes no sense.
    """

    def __init__(
        self, url: str, timeout_s: float = 2.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            trust_env=False,
        )

    async def parse(self, text: str) -> Understanding:
        try:
            r = await self._client.post(f"{self.url}/model/parse", json={"text": text})
        except httpx.TimeoutException as exc:
            raise TemporaryPeerError("rasa timed out") from exc
        except httpx.TransportError as exc:
            raise TemporaryPeerError(f"rasa unreachable: {type(exc).__name__}") from exc
        if r.status_code >= 500:
            raise TemporaryPeerError("rasa failed", status=r.status_code)
        if r.status_code != 200:
            raise PermanentPeerError("rasa refused the request", status=r.status_code)
        try:
            body = r.json()
        except ValueError as exc:
            raise PermanentPeerError("rasa sent no JSON") from exc
        if not isinstance(body, dict):
            raise PermanentPeerError("rasa sent no parse result")
        return understanding_from_rasa(body, text)

    async def aclose(self) -> None:
        await self._client.aclose()


def understanding_from_rasa(body: Mapping[str, Any], text: str) -> Understanding:
    """Map Rasa's parse result onto the engine's :class:`Understanding`.

    ``intent`` is always one of the 12 names; a ``lapor`` gets its category from the
    ResponseSelector, with confidence = P(lapor) x P(category | lapor). Keyword rules back Rasa
    up where a miss would cost most: an emergency, a tracking number, a bare rating.
    """
    intent_block = body.get("intent") or {}
    intent = str(intent_block.get("name") or "")
    confidence = float(intent_block.get("confidence") or 0.0)
    if intent not in INTENTS:
        intent, confidence = "di_luar_topik", min(confidence, 0.3)
    category, cat_conf = None, 0.0
    if intent == "lapor":
        category, rs_conf = _category(body)
        cat_conf = confidence * rs_conf if category else 0.0
    entities = _entities(body.get("entities") or [], text)

    words = normalize(text)
    if intent != "darurat" and _EMERGENCY.search(words) and not _HEDGE.search(words):
        intent, confidence, category, cat_conf = "darurat", 0.9, None, 0.0
    if intent == "nilai" and not any(e.entity == "rating" for e in entities):
        m = _STAR_WORD.search(text)
        if m:
            stars = _STARS.get(m.group(1).lower(), m.group(1))
            entities = (*entities, Entity("rating", stars, m.start(1), m.end(1)))
    number = next((e.value for e in entities if e.entity == "nomor_laporan"), None)
    confident_report = intent == "lapor" and confidence >= 0.8  # "laporan ... kodepos 12950"
    if (
        number
        and intent not in ("cek_status", "darurat")
        and not confident_report
        and _STATUS_WORDS.search(text)
    ):
        intent, confidence, category, cat_conf = "cek_status", 0.9, None, 0.0
    return Understanding(
        intent=intent,
        confidence=round(confidence, 4),
        category=category,
        category_confidence=round(cat_conf, 4),
        entities=entities,
        source="rasa",
    )


def _category(body: Mapping[str, Any]) -> tuple[str | None, float]:
    selector = (body.get("response_selector") or {}).get("lapor") or {}
    response = selector.get("response") or {}
    key = str(response.get("intent_response_key") or "")
    conf = float(response.get("confidence") or 0.0)
    if not key:
        ranking = selector.get("ranking") or []
        if ranking:
            key = str(ranking[0].get("intent_response_key") or "")
            conf = float(ranking[0].get("confidence") or 0.0)
    code = key.partition("/")[2]
    return (code, conf) if code in CATEGORIES else (None, 0.0)


def _entities(raw: list[Any], text: str) -> tuple[Entity, ...]:
    out: list[Entity] = []
    seen: set[tuple[str, str]] = set()
    for e in raw:
        if not isinstance(e, dict):
            continue
        name, value = str(e.get("entity") or ""), str(e.get("value") or "").strip()
        start, end = e.get("start"), e.get("end")
        if name in _PLACES and isinstance(start, int) and isinstance(end, int):
            value = text[start:end].strip()  # the citizen's words, not a synonym's spelling
        if name not in ENTITIES or not value:
            continue
        if name == "nomor_laporan":
            value = re.sub(r"\D", "", value)
            if not 5 <= len(value) <= 10:
                continue
        if name == "rating" and value not in {"1", "2", "3", "4", "5"}:
            continue
        if (name, value) in seen:
            continue
        seen.add((name, value))
        out.append(
            Entity(
                name,
                value,
                start if isinstance(start, int) else None,
                end if isinstance(end, int) else None,
            )
        )
    if not any(e.entity == "nomor_laporan" for e in out):
        m = _TRACKING.search(text)
        if m:
            out.insert(0, Entity("nomor_laporan", m.group(1), m.start(1), m.end(1)))
    return tuple(out)


class ResilientNlu:
    """Rasa first; the keyword matcher when Rasa is down, slow, or its breaker is open.

    Never raises to the engine. ``last_source`` tells tests and metrics who answered.
    """

    def __init__(
        self,
        primary: RasaNlu,
        fallback: Nlu | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.primary = primary
        self.fallback: Nlu = fallback or FallbackNlu()
        self.breaker = breaker or CircuitBreaker()
        self.last_source = ""
        self.server: RasaServer | None = None  # the managed server, when this process runs it

    async def parse(self, text: str) -> Understanding:
        if self.breaker.allow():
            started = time.perf_counter()
            try:
                u = await self.primary.parse(text)
            except Exception as exc:
                self.breaker.failure()
                log.warning(
                    "nlu_rasa_failed",
                    error=type(exc).__name__,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                    breaker=self.breaker.state,
                )
            else:
                self.breaker.success()
                self.last_source = "rasa"
                log.debug(
                    "nlu_parsed",
                    source="rasa",
                    intent=u.intent,
                    category=u.category,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
                return u
        u = await self.fallback.parse(text)
        self.last_source = "fallback"
        log.debug("nlu_parsed", source="fallback", intent=u.intent, category=u.category)
        return u

    async def aclose(self) -> None:
        await self.primary.aclose()


__all__ = [
    "CATEGORIES",
    "CircuitBreaker",
    "RasaNlu",
    "ResilientNlu",
    "understanding_from_rasa",
]
