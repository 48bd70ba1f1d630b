"""NLU figures for ``make bench``: training, cold start, memory, and parse latency/throughput
through the gateway's own client (``RasaNlu``), against a real Rasa server on 127.0.0.1.

``await run()`` returns::

    nlu_train_s        training from scratch (into a temporary file; the cache is untouched)
    nlu_cold_start_s   `rasa run` from the cached model until GET /status reports it loaded
    nlu_rss_mb         the server's resident memory after the parses
    nlu_parse_p50_ms   sequential parses, median
    nlu_parse_p99_ms   sequential parses, 99th percentile (target < 50 ms)
    nlu_parses_per_s   parses per second with 4 requests in flight
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from nlu import rasa
from nlu.client import RasaNlu
from nlu.evaluate import load_holdout

SEQUENTIAL = 400
CONCURRENT = 800
IN_FLIGHT = 4


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kanal-bench-nlu-") as tmp:
        scratch = await asyncio.to_thread(rasa.train, True, rasa.CONFIG, Path(tmp) / "m.tar.gz")
    model = (await asyncio.to_thread(rasa.train)).path
    texts = [ex.text for ex in load_holdout()]
    with tempfile.TemporaryDirectory(prefix="kanal-bench-rasa-") as logs:
        async with rasa.RasaServer(model, log_dir=Path(logs)) as server:
            client = RasaNlu(server.url, timeout_s=5.0)
            try:
                for text in texts[:20]:  # warm-up
                    await client.parse(text)
                latencies: list[float] = []
                for i in range(SEQUENTIAL):
                    started = time.perf_counter()
                    await client.parse(texts[i % len(texts)])
                    latencies.append((time.perf_counter() - started) * 1000)

                queue = iter(range(CONCURRENT))

                async def worker() -> None:
                    for i in queue:
                        await client.parse(texts[i % len(texts)])

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
                elapsed = time.perf_counter() - started
                rss = server.rss_mb()
            finally:
                await client.aclose()
            cold = server.cold_start_s
    return {
        "nlu_parse_p50_ms": round(_quantile(latencies, 0.5), 2),
        "nlu_parse_p99_ms": round(_quantile(latencies, 0.99), 2),
        "nlu_parses_per_s": round(CONCURRENT / elapsed, 1),
        "nlu_cold_start_s": cold,
        "nlu_train_s": scratch.seconds,
        "nlu_rss_mb": rss,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(run()), indent=2))
