"""Wires the parts together: Redis (or embedded), keys, NLU, engine, CRM (or sandbox), bridge.

``async with Runtime(settings) as rt:`` gives a ready engine and runs the bridge's loops in the
background; leaving the block stops everything it started, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from starlette.routing import BaseRoute

from bots.core.channel import WorkerContext
from bots.core.engine import Engine, EngineConfig
from bots.core.gazetteer import Gazetteer
from bots.core.sessions import SessionStore
from bridge.forget import run_forget
from bridge.open311 import Open311Client
from bridge.sandbox import SandboxServer, SandboxStore
from bridge.services import ServiceMap
from bridge.signing import parse_secrets
from bridge.status import StatusService
from bridge.submitter import MediaLinks, Submitter
from bridge.vault import Vault
from bridge.webhook import local_webhook_url, webhook_route
from kanal.errors import PeerError
from kanal.keys import Keyring
from kanal.logging import get_logger
from kanal.medialinks import media_route
from kanal.mediastore import media_store_from_settings
from kanal.redis import EmbeddedRedis, Redis, connect
from kanal.settings import Settings
from kanal.tasks import FailureStreak, stop_tasks, supervise
from nlu.fallback import FallbackNlu
from nlu.managed import open_nlu
from nlu.types import Nlu

log = get_logger(__name__)


async def purge_every(vault: Vault, interval_s: float) -> None:
    while True:
        await vault.purge()
        await asyncio.sleep(interval_s)


async def learn_services(crm: Open311Client | None, services: ServiceMap) -> None:
    """Read the CRM's service list at start (and daily), retrying while the CRM is down."""
    assert crm is not None
    streak = FailureStreak("services", base_s=2.0, cap_s=300.0)
    while True:
        try:
            offered = await crm.services()
        except PeerError as exc:
            await asyncio.sleep(streak.failed(exc))
            continue
        streak.ok()
        services.learn(s.service_code for s in offered)
        log.info("crm_services", offered=len(offered), missing=",".join(services.missing()))
        await asyncio.sleep(24 * 3600)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        bridge: bool = True,
        nlu: Nlu | None = None,
        consumer: str = "kanal-1",
        serves_http: bool = False,
        start_rasa: bool = False,
    ) -> None:
        self.settings = settings
        self.run_bridge = bridge
        self.consumer = consumer
        self.serves_http = serves_http
        self.start_rasa = start_rasa
        self._exit = contextlib.AsyncExitStack()
        self._nlu = nlu
        self._embedded: EmbeddedRedis | None = None
        self._sandbox: SandboxServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._routes: list[BaseRoute] = []
        self.crm: Open311Client | None = None

    async def __aenter__(self) -> Self:
        s = self.settings
        data = s.kanal.data_dir
        data.mkdir(parents=True, exist_ok=True)
        if s.redis.url:
            url = s.redis.url
        else:
            self._embedded = await asyncio.to_thread(EmbeddedRedis, data / "redis")
            url = self._embedded.url
        self.redis: Redis = connect(url)
        await self.redis.ping()
        self.keyring = Keyring.from_setting(s.kanal.secret_key.get_secret_value(), data)
        self.media = media_store_from_settings(s.kanal)
        self.gazetteer = Gazetteer(s.kanal.gazetteer_file or None)
        self.nlu: Nlu
        if self._nlu is not None:
            self.nlu = self._nlu
        elif s.rasa.url or self.start_rasa:
            # RASA_URL, or (kanal run) the managed server, started in the background: the
            # keyword matcher answers until it is up and whenever it is down or slow.
            self.nlu = await self._exit.enter_async_context(
                open_nlu(s.rasa, data_dir=data, wait=False)
            )
        else:
            self.nlu = FallbackNlu()
        self.sessions = SessionStore(self.redis, ttl_s=s.kanal.session_ttl_hours * 3600 * 2)
        self.engine = Engine(
            sessions=self.sessions,
            nlu=self.nlu,
            gazetteer=self.gazetteer,
            media=self.media,
            keyring=self.keyring,
            config=EngineConfig(
                session_ttl_s=s.kanal.session_ttl_hours * 3600,
                resume_after_s=s.kanal.resume_after_minutes * 60,
                max_photos=s.kanal.max_photos,
            ),
        )
        if self.run_bridge:
            await self._start_bridge()
        return self

    def worker_context(self) -> WorkerContext:
        """What channel workers get: Redis, the engine, this replica's name."""
        return WorkerContext(
            redis=self.redis,
            engine=self.engine,
            consumer=self.consumer,
            public_url=self.settings.kanal.public_url.rstrip("/"),
        )

    def routes(self) -> list[BaseRoute]:
        """HTTP routes of the roles this runtime runs (media links, CRM webhook)."""
        return list(self._routes)

    @property
    def crm_url(self) -> str:
        if self.settings.crm.url:
            return self.settings.crm.url
        return self._sandbox.url if self._sandbox else ""

    async def _start_bridge(self) -> None:
        s = self.settings
        webhook_secrets = parse_secrets(s.crm.webhook_secret.get_secret_value())
        if not s.crm.url:
            store = SandboxStore(s.kanal.data_dir / "crm-sandbox.sqlite3")
            if self.serves_http:
                # The in-process sandbox pushes to our own POST /crm/webhook; without a
                # configured secret the two share a random one that never leaves this process.
                webhook_secrets = webhook_secrets or [secrets.token_urlsafe(32)]
                self._sandbox = SandboxServer(
                    store,
                    webhook_url=local_webhook_url(s.kanal.http_host, s.kanal.http_port),
                    webhook_secret=webhook_secrets[0],
                )
            else:  # kanal chat serves no HTTP: the poll brings the updates
                self._sandbox = SandboxServer(store)
            await self._sandbox.start()
            log.info("crm_sandbox_started", port=self._sandbox.url.rsplit(":", 1)[-1])
        self.crm = Open311Client(
            self.crm_url,
            api_key=s.crm.api_key.get_secret_value() or None,
            jurisdiction_id=s.crm.jurisdiction_id or None,
            timeout=s.crm.timeout_s,
        )
        vault = Vault(self.redis, self.keyring, retention_days=s.kanal.vault_retention_days)
        self.vault = vault
        media = MediaLinks(
            self.media,
            self.keyring,
            public_url=s.kanal.public_url.rstrip("/"),
            ttl_s=int(s.kanal.media_url_ttl_hours * 3600),
        )
        services = ServiceMap.from_file(s.crm.service_map or None)
        self.services = services
        submitter = Submitter(
            self.redis,
            self.crm,
            vault,
            media=media,
            services=services,
            consumer=self.consumer,
            token_poll_s=s.crm.token_poll_s,
            keyring=self.keyring,
            linkable_reporter=s.kanal.linkable_reporter,
        )
        self._routes.append(media_route(self.media, self.keyring))
        status = StatusService(
            self.redis,
            self.crm,
            vault,
            consumer=self.consumer,
            poll_interval_s=s.crm.poll_interval_s,
        )
        self.spawn("services", lambda: learn_services(self.crm, services))
        self.spawn("submitter", submitter.run)
        self.spawn("tokens", submitter.run_tokens)
        self.spawn("lookups", status.run_lookups)
        self.spawn("relay", status.run_relay)
        self._routes.append(webhook_route(status, webhook_secrets))
        self.spawn("ratings", status.run_ratings)
        self.spawn("forget", lambda: run_forget(self.redis, self.consumer))
        self.spawn("vault-purge", lambda: purge_every(vault, s.kanal.vault_purge_interval_s))

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(supervise(name, factory), name=name))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await stop_tasks(self._tasks)
        if self.crm is not None:
            await self.crm.aclose()
        if self._sandbox is not None:
            await self._sandbox.stop()
        await self._exit.aclose()
        await self.redis.aclose()
        if self._embedded is not None:
            self._embedded.close()


__all__ = ["Runtime"]
