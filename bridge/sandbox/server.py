"""Serve an ASGI app with uvicorn inside the running event loop (tests, ``kanal run``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from bridge.sandbox.app import create_app
from bridge.sandbox.modes import DEFAULT, SandboxMode
from bridge.sandbox.push import WebhookPusher
from bridge.sandbox.store import SandboxStore


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to whoever embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AppServer:
    """``async with AppServer(app) as server:`` serves ``app`` on ``server.url``.

    ``port=0`` picks a free port. Access logs are off: they would print query strings.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Where the server listens, e.g. ``http://127.0.0.1:8311``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind (``OSError`` if the port is taken), start serving, return once listening."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted sockets inherit this. Without it uvicorn's separate header and body
            # writes meet delayed ACKs: every response took ~45 ms instead of ~2 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it stopped
                raise RuntimeError("the HTTP server stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting connections, finish open ones, and wait for the server task."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class SandboxServer(AppServer):
    """The sandbox CRM served over HTTP; ``store`` may be a :class:`SandboxStore` or a path.

    With ``webhook_url`` and ``webhook_secret`` every status update is pushed there, signed
    (:mod:`bridge.sandbox.push`), while the server runs.
    """

    def __init__(
        self,
        store: SandboxStore | Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        jurisdiction_id: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        mode: SandboxMode = DEFAULT,
    ) -> None:
        self.store = store if isinstance(store, SandboxStore) else SandboxStore(store)
        app = create_app(
            self.store,
            api_key=api_key,
            jurisdiction_id=jurisdiction_id,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            mode=mode,
        )
        self.pusher: WebhookPusher | None = app.state.pusher
        super().__init__(app, host=host, port=port)

    async def start(self) -> None:
        """Serve, then push updates to the webhook (if one is configured)."""
        await super().start()
        if self.pusher is not None:
            await self.pusher.start()

    async def stop(self) -> None:
        """Stop pushing, then stop serving."""
        if self.pusher is not None:
            await self.pusher.stop()
        await super().stop()


__all__ = ["AppServer", "SandboxServer"]
