"""``make bench``: throughput and latency figures, printed as a table and written to
``reports/bench.json`` (a flat map from figure name to number).

Engine: whole conversations (greeting, story, category, GPS point, skip photo, send) through a
real redis-server with the fallback NLU, in 1 and 4 worker processes (replicas) at once.
Bridge: submissions per second into the sandbox CRM over HTTP, and the relay's added latency
from an officer's update to the citizen's outbox entry. E-mail (``tests/bench_email.py``) and X
(``tests/bench_twitter.py``): a backlog handled by the channel's worker process.
SMS (tests/bench_sms.py): MO per second through a real Kannel end to end, and the SMS segments
a typical report costs.
Telegram: updates per second and reply latency of the real worker through the npm emulator
(tests/bench_telegram.py).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPT = [
    "halo min",
    "sampah numpuk di pinggir kali udah seminggu gak diangkut, bau banget",
    "ya",
    ("loc", -6.2446, 106.8006),
    "lewati",
    "kirim",
    "makasih",
]


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _engine_worker(
    redis_url: str, worker: int, conversations: int, ready: Any, go: Any
) -> tuple[float, float, list[float]]:
    from bots.core.engine import Engine
    from bots.core.gazetteer import Gazetteer
    from bots.core.sessions import SessionStore
    from kanal import logging as klog
    from kanal.keys import Keyring
    from kanal.mediastore import LocalMediaStore
    from kanal.messages import GeoPoint, Inbound
    from kanal.redis import connect
    from nlu.fallback import FallbackNlu

    klog.configure(level="ERROR")
    redis = connect(redis_url)
    engine = Engine(
        sessions=SessionStore(redis),
        nlu=FallbackNlu(),
        gazetteer=Gazetteer(),
        media=LocalMediaStore(Path(tempfile.mkdtemp())),
        keyring=Keyring(["bench"]),
    )
    latencies: list[float] = []
    run = uuid.uuid4().hex[:8]
    await engine.handle(Inbound(channel="bench", user_id=f"warm-{run}", event_id=run, text="halo"))
    ready.release()
    await asyncio.to_thread(go.wait)
    started = time.perf_counter()
    for c in range(conversations):
        user = f"w{worker}-{run}-{c}"
        for i, step in enumerate(SCRIPT):
            kw: dict[str, Any] = {}
            if isinstance(step, tuple):
                kw["location"] = GeoPoint(lat=step[1], lon=step[2])
            else:
                kw["text"] = step
            msg = Inbound(channel="bench", user_id=user, event_id=f"{user}:{i}", **kw)
            t0 = time.perf_counter()
            await engine.handle(msg)
            latencies.append(time.perf_counter() - t0)
    ended = time.perf_counter()
    await redis.aclose()
    return started, ended, latencies


def _run_worker(args: tuple[str, int, int, Any, Any, Any]) -> None:
    redis_url, worker, conversations, queue, ready, go = args
    queue.put(asyncio.run(_engine_worker(redis_url, worker, conversations, ready, go)))


def engine_figures(redis_url: str, workers: int, conversations: int) -> tuple[float, list[float]]:
    """Messages per second over the wall time all workers ran together, and every latency."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [
        ctx.Process(target=_run_worker, args=((redis_url, w, conversations, queue, ready, go),))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()  # every worker imported, connected and warmed up
    go.set()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    lat = [x for _, _, r in results for x in r]
    wall = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    return len(lat) / wall, lat


async def bridge_figures(redis_url: str, n: int = 300) -> dict[str, float]:
    from bridge.open311 import Open311Client
    from bridge.sandbox import SandboxServer
    from bridge.status import StatusService
    from bridge.submitter import Submitter, ledger_key
    from bridge.vault import Vault
    from kanal import logging as klog
    from kanal import streams
    from kanal.keys import Keyring
    from kanal.messages import Complaint, Location
    from kanal.redis import connect
    from kanal.tasks import stop_tasks

    klog.configure(level="ERROR")
    redis = connect(redis_url)
    await redis.flushdb()
    keyring = Keyring(["bench"])
    tmp = Path(tempfile.mkdtemp())
    ids = []
    for i in range(n):
        c = Complaint(
            complaint_id=uuid.uuid4().hex,
            conv=keyring.pseudonym("bench", str(i)),
            channel="bench",
            category="sampah",
            description="sampah menumpuk",
            location=Location(lat=-6.2, lon=106.8, kecamatan="Menteng"),
            created_at=datetime.now(UTC),
        )
        contact = json.dumps({"channel": "bench", "address": str(i)}).encode()
        await redis.hset(streams.vault_key(c.conv), "contact", keyring.encrypt(contact))
        await redis.xadd(streams.COMPLAINTS, {"complaint": c.model_dump_json()})
        ids.append(c.complaint_id)
    async with SandboxServer(tmp / "crm.sqlite3") as crm, Open311Client(crm.url) as client:
        vault = Vault(redis, keyring)
        submitter = Submitter(redis, client, vault, consumer="bench")
        t0 = time.perf_counter()
        task = asyncio.create_task(submitter.run())
        while not await redis.hexists(ledger_key(ids[-1]), "service_request_id"):
            await asyncio.sleep(0.01)
        submit_s = time.perf_counter() - t0
        await stop_tasks([task])
        status = StatusService(redis, client, vault, poll_interval_s=0)
        await status.poll_once()
        relay_ms: list[float] = []
        requests = crm.store.list_requests()[:50]
        for req in requests:
            crm.store.add_update(req.id, "in_progress", "Petugas menuju lokasi")
            t1 = time.perf_counter()
            await status.poll_once()
            relay_ms.append((time.perf_counter() - t1) * 1000)
    await redis.aclose()
    return {
        "bridge_submissions_per_s": round(n / submit_s, 1),
        "relay_latency_ms": round(statistics.median(relay_ms), 2),
    }


def scrub_figures() -> dict[str, float]:
    """Recall (planted personal values removed) and kept (problem details preserved) of the
    bridge's scrubbing: on the two held-out sets together (scrub_recall, scrub_kept), never
    tuned on, on each of them (…_heldout_a: heldout.jsonl, …_heldout_b: heldout_b.jsonl, written
    later from another angle), and on the tuning tables (…_tuning)."""
    from bridge.scrub import scrub
    from tests.scrub_eval import DATA, evaluate, load

    out: dict[str, float] = {}
    for names, suffix in (
        (["heldout", "heldout_b"], ""),
        (["heldout"], "_heldout_a"),
        (["heldout_b"], "_heldout_b"),
        (
            [
                "tuning",
                "tuning_messages",
                "tuning_informal",
                "tuning_letters",
                "tuning_people",
                "tuning_contexts",
                "tuning_regions",
            ],
            "_tuning",
        ),
    ):
        cases = [c for n in names if (DATA / f"{n}.jsonl").exists() for c in load(n)]
        if not cases:
            continue
        score = evaluate(cases, scrub)
        out[f"scrub_recall{suffix}"] = round(score.recall, 3)
        out[f"scrub_kept{suffix}"] = round(score.kept_share, 3)
    return out


def main() -> int:
    sys.path.insert(0, str(REPO))
    from tests.peers import redis_server

    figures: dict[str, float] = {}
    with redis_server() as url:
        for workers, key in ((1, "1w"), (4, "4w")):
            rate, lat = engine_figures(url, workers, conversations=300 if workers == 1 else 150)
            figures[f"engine_msgs_per_s_{key}"] = round(rate, 1)
            if workers == 1:
                figures["engine_p50_ms"] = round(_percentile(lat, 0.50) * 1000, 3)
                figures["engine_p99_ms"] = round(_percentile(lat, 0.99) * 1000, 3)
            else:
                figures["engine_p50_ms_4w"] = round(_percentile(lat, 0.50) * 1000, 3)
                figures["engine_p99_ms_4w"] = round(_percentile(lat, 0.99) * 1000, 3)
        figures.update(asyncio.run(bridge_figures(url)))
        from tests import bench_email

        figures.update(bench_email.run(url))
        from tests import bench_sms

        figures.update(asyncio.run(bench_sms.run(url)))
        from tests import bench_twitter

        figures.update(bench_twitter.run(url))
        from tests import bench_telegram

        figures.update(asyncio.run(bench_telegram.run(url)))
    figures.update(scrub_figures())
    from tests import bench_nlu

    figures.update(asyncio.run(bench_nlu.run()))
    out = REPO / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(figures)
    out.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}")
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
