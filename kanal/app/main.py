"""``kanal run``: everything in one foreground process until SIGINT/SIGTERM."""

from __future__ import annotations

from bots.console import ConsoleWorker
from kanal.app.channels import configured, serve, start_workers, stop_on_signals
from kanal.app.runtime import Runtime
from kanal.logging import get_logger
from kanal.settings import Settings

log = get_logger(__name__)


async def run_main(settings: Settings) -> int:
    stop = stop_on_signals()
    async with Runtime(settings, serves_http=True, start_rasa=True) as rt:
        found = configured()
        workers = start_workers(rt, found)
        http = await serve(settings, [*rt.routes(), *(r for w in workers for r in w.routes())])
        log.info(
            "kanal_started",
            http=http.url,
            crm_sandbox=not settings.crm.url,
            channels=",".join(spec.name for spec, _ in found),
        )
        for (spec, _), worker in zip(found, workers, strict=True):
            if isinstance(worker, ConsoleWorker):
                worker.banner = (
                    f"Kanal berjalan. HTTP {http.url}, CRM {rt.crm_url}. "
                    "Ketik pesan (mis. 'halo'); Ctrl-C untuk berhenti."
                )
            # Supervised: one channel failing (and backing off) never stops the others.
            rt.spawn(f"channel:{spec.name}", worker.run)
        await stop.wait()
        await http.stop()
        log.info("kanal_stopped")
    return 0


__all__ = ["run_main"]
