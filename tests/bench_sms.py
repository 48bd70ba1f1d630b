"""``make bench`` figures of the SMS channel, through a real Kannel (bearerbox + smsbox):

- ``sms_mo_per_s``: MO messages per second end to end: written by the fake SMSC, through
  bearerbox and smsbox to ``/sms/inbound``, through the engine, and the reply back through
  ``sendsms`` and bearerbox to the SMSC (distinct senders, all at once);
- ``sms_segments_per_report``: the SMS segments a typical report costs the city, every reply of
  the conversation, the tracking number and one status update.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bots.core.engine import Engine
from bots.core.gazetteer import Gazetteer
from bots.core.sessions import SessionStore
from bridge.open311 import Open311Client
from bridge.sandbox import SandboxServer
from bridge.status import StatusService
from bridge.submitter import Submitter
from bridge.vault import Vault
from kanal import logging as klog
from kanal.keys import Keyring
from kanal.mediastore import LocalMediaStore
from kanal.redis import connect
from kanal.tasks import stop_tasks
from nlu.fallback import FallbackNlu
from tests.peers import GAZETTEER
from tests.sms_fixtures import SmsStack, sms_stack


async def _mo_rate(stack: SmsStack, n: int) -> float:
    senders = [f"+62812{i:07d}" for i in range(n)]
    started = time.perf_counter()
    for sender in senders:
        await stack.mo(sender, "halo")
    got = 0
    while got < n:
        await stack.mt(timeout=60)
        got += 1
    return n / (time.perf_counter() - started)


async def _report_segments(stack: SmsStack, crm: SandboxServer) -> int:
    sender = "+6281299990000"
    segments = 0

    async def say(text: str) -> str:
        nonlocal segments
        await asyncio.sleep(1.1)
        mt = await stack.chat(sender, text)
        segments += mt.parts
        return mt.text

    text = await say("lapor sampah numpuk di pinggir kali udah seminggu gak diangkut, bau banget")
    if "Benar?" in text:
        text = await say("1")
    text = await say("Jl. Kemang Raya no 10 RT 03")
    if "kelurahan" in text.lower():
        await say("Bangka")
    await say("1")
    segments += (await stack.mt(timeout=30)).parts  # the tracking number
    [req] = crm.store.list_requests()
    async with httpx.AsyncClient(base_url=crm.url) as http:
        await http.post(
            f"/officer/requests/{req.id}/status",
            json={"status": "in_progress", "note": "Truk dijadwalkan besok pagi."},
        )
    segments += (await stack.mt(timeout=30)).parts  # one status update
    return segments


async def run(redis_url: str, n: int = 200) -> dict[str, float]:
    klog.configure(level="ERROR")
    redis = connect(redis_url)
    await redis.flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="kanal-bench-sms-"))
    keyring = Keyring(["bench-key"])
    engine = Engine(
        sessions=SessionStore(redis),
        nlu=FallbackNlu(),
        gazetteer=Gazetteer(GAZETTEER),
        media=LocalMediaStore(tmp / "media"),
        keyring=keyring,
    )
    out: dict[str, float] = {}
    async with SandboxServer(tmp / "crm.sqlite3") as crm, Open311Client(crm.url) as client:
        vault = Vault(redis, keyring)
        status = StatusService(redis, client, vault, poll_interval_s=0.2)
        tasks = [
            asyncio.create_task(Submitter(redis, client, vault).run()),
            asyncio.create_task(status.run_relay()),
        ]
        try:
            async with sms_stack(redis, engine, tmp) as stack:
                out["sms_mo_per_s"] = round(await _mo_rate(stack, n), 1)
                out["sms_segments_per_report"] = float(await _report_segments(stack, crm))
        finally:
            await stop_tasks(tasks)
    await redis.aclose()
    return out


__all__ = ["run"]
