"""A test channel on the adapter contract, talking to a platform the test controls.

It exists to prove the channel kit across real processes: the "platform" is a small HTTP
server in the test (``GET /updates?offset=`` with Telegram's confirmation semantics, ``POST
/send``), and ``python -m tests.loopback`` is a worker process built exactly like the real
channels (``kanal.app.channels.channel_main``), so a test can SIGKILL it between the engine's
commit and the send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from starlette.routing import BaseRoute

from bots.core.channel import Channel, ChannelSettings, WorkerContext, channel_config
from bots.core.outbox import RateLimits, deliver_outbox
from bots.core.render import strip_markup, with_menu
from bots.core.worker import handle_inbound
from kanal.errors import RecipientUnreachable, RetryAfter, TemporaryPeerError
from kanal.logging import get_logger
from kanal.messages import GeoPoint, Inbound, Outbound

NAME = "loopback"
LIMITS = RateLimits(per_recipient_per_s=20)
log = get_logger(__name__)


class LoopbackSettings(ChannelSettings):
    model_config = channel_config("LOOPBACK_")
    required = ("platform_url",)

    platform_url: str = ""


def parse(raw: dict[str, Any]) -> Inbound | None:
    sender = raw.get("from")
    if not sender:
        return None  # a channel post, a service message: not a citizen's event
    loc = raw.get("location")
    return Inbound(
        channel=NAME,
        user_id=str(sender),
        event_id=str(raw["update_id"]),
        text=str(raw.get("text") or ""),
        location=GeoPoint(lat=loc[0], lon=loc[1]) if loc else None,
    )


def render(out: Outbound) -> dict[str, str]:
    return {"to": out.to, "text": with_menu(strip_markup(out.text), out.choices)}


class LoopbackWorker:
    def __init__(self, ctx: WorkerContext, settings: LoopbackSettings) -> None:
        self.ctx = ctx
        self.http = httpx.AsyncClient(base_url=settings.platform_url, timeout=10)

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    async def send(self, out: Outbound) -> None:
        try:
            r = await self.http.post("/send", json=render(out))
        except httpx.TransportError as exc:
            raise TemporaryPeerError(type(exc).__name__) from exc
        if r.status_code == 429:
            raise RetryAfter(float(r.headers.get("retry-after", "1")))
        if r.status_code == 403:
            raise RecipientUnreachable("blocked", status=403, reason="blocked")
        if r.status_code >= 400:
            raise TemporaryPeerError("platform error", status=r.status_code)

    async def run(self) -> None:
        outbox = asyncio.create_task(
            deliver_outbox(
                self.ctx.redis, NAME, self.send, consumer=self.ctx.consumer, limits=LIMITS
            )
        )
        offset = 0
        try:
            while True:
                r = await self.http.get("/updates", params={"offset": offset})
                for raw in r.json():
                    inbound = parse(raw)
                    if inbound is not None:
                        await handle_inbound(self.ctx.engine, inbound, self.send)
                    offset = int(raw["update_id"]) + 1  # confirmed by the next call
                await asyncio.sleep(0.05)
        finally:
            outbox.cancel()
            await self.http.aclose()


def make_worker(ctx: WorkerContext, settings: LoopbackSettings) -> LoopbackWorker:
    return LoopbackWorker(ctx, settings)


CHANNEL = Channel(
    name=NAME,
    summary="A test channel whose platform is a server the test controls.",
    settings=LoopbackSettings,
    worker=make_worker,
    limits=LIMITS,
)

__all__ = ["CHANNEL", "parse", "render"]
