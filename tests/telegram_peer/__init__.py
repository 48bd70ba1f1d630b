"""The Telegram peer of the tests: the npm ``telegram-test-api`` emulator and a small fake in front.

The emulator (``start.js``, started with the shims of ``../shared/PEERS.md``) stores what the bot
sends and what citizens send. It lacks long polling with ``offset``, ``getFile``, file downloads,
``sendPhoto``, ``setWebhook`` with a secret and ``setMyCommands``; :class:`FakeBotApi` serves
those over the same Bot API HTTP (``{root}/bot{token}/{method}``, ``{root}/file/bot{token}/…``)
and forwards everything else to the emulator. The bot under test is pointed at the fake's root
(``TELEGRAM_API_BASE_URL``). The fake owns the update ids: it takes each citizen update from the
emulator (or one a test injects raw), numbers it, and serves it until the bot confirms it with a
higher ``offset``, or pushes it to the webhook with the secret header until it is answered 2xx.

Faults a test can ask for: a chat that blocked the bot (403), a 429 with ``retry_after``, a 5xx,
and an update delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.sandbox.server import AppServer
from tests.peers import free_port

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("KANAL_CACHE_DIR") or Path.home() / ".cache" / "kanal")
NODE_MODULES = CACHE / "node" / "node_modules"
SEND_METHODS = {"sendMessage", "sendPhoto"}


@dataclass
class Fault:
    method: str
    status: int
    times: int = 1
    retry_after: int | None = None
    chat_id: int | None = None


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class Webhook:
    url: str
    secret: str | None
    answers: list[int] = field(default_factory=list)


def _error(status: int, description: str, retry_after: int | None = None) -> Response:
    if status >= 500:
        return Response("Bad Gateway", status_code=status)  # a proxy in the way, not JSON
    doc: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        doc["parameters"] = {"retry_after": retry_after}
    return JSONResponse(doc, status_code=status)


def _value(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(v)
    return v


class FakeBotApi:
    def __init__(self, token: str, emulator_url: str) -> None:
        self.token = token
        self.emulator = httpx.AsyncClient(base_url=emulator_url, timeout=10)
        self.ids = itertools.count(5001)
        self.queue: list[dict[str, Any]] = []  # served until confirmed
        self.history: dict[int, dict[str, Any]] = {}
        self.extra: list[dict[str, Any]] = []  # duplicates to serve once, whatever the offset
        self.confirmed = 0
        self.files: dict[str, bytes] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.blocked: set[int] = set()
        self.webhook: Webhook | None = None
        self.webhook_log: list[tuple[str, int]] = []
        self.commands: list[dict[str, Any]] = []
        self.sent_photos: list[dict[str, Any]] = []
        self.update_seen_at: dict[int, float] = {}  # update id -> when it reached the peer
        self._arrived = asyncio.Event()
        # When each message the bot sent was stored by the emulator, by chat (wall clock, s).
        self.stored_at: dict[int, list[float]] = {}
        self._stored = asyncio.Condition()
        # SIGKILL this process when the bot sends a text containing this (a crash mid-send).
        self.kill_on: tuple[str, int] | None = None
        self.killed = asyncio.Event()
        self._pusher: asyncio.Task[None] | None = None
        self._pull_lock = asyncio.Lock()
        self.closing = False

    # ---- the test's side ----------------------------------------------------------------------
    def add_file(self, data: bytes) -> str:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return file_id

    def inject(self, update: dict[str, Any]) -> int:
        """A raw update the emulator cannot make (edited message, poll, member change)."""
        update_id = next(self.ids)
        doc = {"update_id": update_id, **update}
        self._enqueue(doc)
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Serve an update again on the next call, as Telegram does when unsure it arrived."""
        self.extra.append(self.history[update_id])
        self._arrived.set()

    def fail(self, method: str, status: int, *, times: int = 1, **kw: Any) -> None:
        self.faults.append(Fault(method, status, times, **kw))

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    # ---- updates ------------------------------------------------------------------------------
    def _enqueue(self, doc: dict[str, Any]) -> None:
        self.history[doc["update_id"]] = doc
        self.update_seen_at[doc["update_id"]] = time.perf_counter()
        self.queue.append(doc)
        self._arrived.set()

    async def pull(self) -> None:
        """Take the citizens' new updates from the emulator and number them."""
        async with self._pull_lock:
            r = await self.emulator.post(f"/bot{self.token}/getUpdates")
            for upd in r.json()["result"]:
                upd.pop("update_id", None)
                for body in upd.values():
                    if isinstance(body, dict):
                        body.pop("botToken", None)
                self._enqueue({"update_id": next(self.ids), **upd})

    def _ready(self, offset: int) -> list[dict[str, Any]]:
        if offset:
            self.confirmed = max(self.confirmed, offset)
            self.queue = [u for u in self.queue if u["update_id"] >= offset]
        out = list(self.queue)
        if self.extra:
            out += self.extra
            self.extra = []
        return out

    async def get_updates(self, params: dict[str, Any]) -> Response:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        while True:
            await self.pull()
            ready = self._ready(offset)
            if ready or time.monotonic() >= deadline or self.closing:
                return JSONResponse({"ok": True, "result": ready[:limit]})
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.05)

    async def push_forever(self) -> None:
        """Webhook mode: post each update with the secret header until it is answered 2xx."""
        async with httpx.AsyncClient(timeout=10) as client:
            while self.webhook is not None:
                await self.pull()
                hook = self.webhook
                pending = self._ready(0)
                for upd in pending:
                    headers = (
                        {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
                    )
                    try:
                        r = await client.post(hook.url, json=upd, headers=headers)
                        status = r.status_code
                    except httpx.TransportError:
                        status = 0
                    hook.answers.append(status)
                    self.webhook_log.append((str(upd["update_id"]), status))
                    if 200 <= status < 300:
                        self.queue = [u for u in self.queue if u is not upd]
                    else:
                        break  # Telegram waits and retries the same update
                await asyncio.sleep(0.05)

    # ---- HTTP ---------------------------------------------------------------------------------
    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        kind = request.headers.get("content-type", "")
        if "json" in kind:
            body = await request.body()
            if body:
                params.update(json.loads(body))
        elif "form" in kind:
            form = await request.form()
            for k, v in form.items():
                params[k] = await v.read() if hasattr(v, "read") else v
        return {k: _value(v) for k, v in params.items()}

    def _fault(self, method: str, params: dict[str, Any]) -> Response | None:
        chat = params.get("chat_id")
        if method in SEND_METHODS and chat is not None and int(chat) in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        for f in self.faults:
            if f.times > 0 and f.method == method and f.chat_id in (None, int(chat or 0)):
                f.times -= 1
                return _error(f.status, "Too Many Requests: retry later", f.retry_after)
        return None

    async def bot_method(self, request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        if token != self.token:
            return _error(401, "Unauthorized")
        params = await self._params(request)
        call = Call(method, params, time.perf_counter())
        self.calls.append(call)
        if self.kill_on and method in SEND_METHODS:
            needle, pid = self.kill_on
            if needle in str(params.get("text") or params.get("caption") or ""):
                os.kill(pid, signal.SIGKILL)  # the send never completes
                self.kill_on = None
                self.killed.set()
                call.status = 502
                return Response(status_code=502)
        refused = self._fault(method, params)
        if refused is not None:
            call.status = refused.status_code
            return refused
        handler = getattr(self, f"m_{method}", None)
        if handler is not None:
            response: Response = await handler(params)
            return response
        return await self.forward(method, params)

    async def forward(self, method: str, params: dict[str, Any]) -> Response:
        r = await self.emulator.post(f"/bot{self.token}/{method}", json=params)
        if method == "sendMessage" and r.status_code == 200:
            await self._note_stored(int(params["chat_id"]))
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    async def _note_stored(self, chat_id: int) -> None:
        async with self._stored:
            self.stored_at.setdefault(chat_id, []).append(time.time())
            self._stored.notify_all()

    async def wait_stored(self, chat_id: int, count: int) -> float:
        """When the ``count``-th message to this chat reached the emulator."""
        async with self._stored:
            await self._stored.wait_for(lambda: len(self.stored_at.get(chat_id, [])) >= count)
            return self.stored_at[chat_id][count - 1]

    async def m_getUpdates(self, params: dict[str, Any]) -> Response:
        return await self.get_updates(params)

    async def m_getFile(self, params: dict[str, Any]) -> Response:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        result = {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(self.files[file_id]),
            "file_path": f"photos/{file_id}.jpg",
        }
        return JSONResponse({"ok": True, "result": result})

    async def m_sendPhoto(self, params: dict[str, Any]) -> Response:
        self.sent_photos.append(params)
        photo = params.get("photo")
        shown = {
            "chat_id": params["chat_id"],
            "text": params.get("caption") or "",
            "photo": photo if isinstance(photo, str) else "(uploaded)",
        }
        if "reply_markup" in params:
            shown["reply_markup"] = params["reply_markup"]
        r = await self.emulator.post(f"/bot{self.token}/sendMessage", json=shown)
        await self._note_stored(int(params["chat_id"]))
        doc = r.json()
        doc["result"].pop("text", None)
        doc["result"]["photo"] = [
            {"file_id": "sent", "file_unique_id": "sent", "width": 1, "height": 1}
        ]
        if params.get("caption"):
            doc["result"]["caption"] = params["caption"]
        return JSONResponse(doc)

    async def m_answerCallbackQuery(self, params: dict[str, Any]) -> Response:
        return JSONResponse({"ok": True, "result": True})

    async def m_setMyCommands(self, params: dict[str, Any]) -> Response:
        self.commands = list(params.get("commands") or [])
        return JSONResponse({"ok": True, "result": True})

    async def m_setWebhook(self, params: dict[str, Any]) -> Response:
        if not params.get("url"):
            return await self.m_deleteWebhook(params)
        self.webhook = Webhook(str(params["url"]), params.get("secret_token"))
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.create_task(self.push_forever())
        return JSONResponse({"ok": True, "result": True})

    async def m_deleteWebhook(self, params: dict[str, Any]) -> Response:
        self.webhook = None
        return JSONResponse({"ok": True, "result": True})

    async def m_getWebhookInfo(self, params: dict[str, Any]) -> Response:
        info = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.queue),
        }
        return JSONResponse({"ok": True, "result": info})

    async def file(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return Response(status_code=401)
        file_id = Path(request.path_params["path"]).stem
        if file_id not in self.files:
            return Response(status_code=404)
        return Response(self.files[file_id], media_type="image/jpeg")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/bot{token}/{method}", self.bot_method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self.file),
            ]
        )

    async def aclose(self) -> None:
        self.webhook = None
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pusher
        await self.emulator.aclose()


@dataclass(frozen=True)
class Person:
    """A citizen (or a group) as Telegram shows it to the bot."""

    id: int
    first_name: str = "Siti"
    last_name: str = "Rahmawati"
    username: str = "sitirahma77"

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": "id",
        }

    @property
    def chat(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "private",
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
        }


class TelegramPeer:
    """The emulator process plus the fake, both on free ports of 127.0.0.1."""

    def __init__(self, token: str = "4242:kanal-test-token") -> None:
        self.token = token
        self.proc: subprocess.Popen[str] | None = None
        self.server: AppServer | None = None
        self.fake: FakeBotApi
        self.seen: dict[int, list[dict[str, Any]]] = {}
        self.cursor: dict[int, int] = {}
        self.message_ids = itertools.count(1)

    async def __aenter__(self) -> TelegramPeer:
        node = shutil.which("node")
        if node is None or not (NODE_MODULES / "telegram-test-api").exists():
            raise RuntimeError("the Telegram emulator is not installed: run `make peers`")
        port = free_port()
        self.proc = subprocess.Popen(
            [node, str(HERE / "start.js"), str(port)],
            env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 20)
        assert line.startswith("listening"), line
        self.emulator_url = f"http://127.0.0.1:{port}"
        self.fake = FakeBotApi(self.token, self.emulator_url)
        self.server = AppServer(self.fake.app(), host="127.0.0.1", port=free_port())
        await self.server.start()
        self.url = self.server.url
        self.client = httpx.AsyncClient(base_url=self.emulator_url, timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.fake.closing = True  # open long polls answer at once
        if self.server is not None:
            await self.server.stop()
        await self.client.aclose()
        await self.fake.aclose()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    async def outage(self, seconds: float) -> None:
        """The Bot API unreachable for a while (connections refused), then back, same port."""
        assert self.server is not None
        port = int(self.url.rsplit(":", 1)[1])
        self.fake.closing = True
        await self.server.stop()
        await asyncio.sleep(seconds)
        self.fake.closing = False
        self.server = AppServer(self.fake.app(), host="127.0.0.1", port=port)
        await self.server.start()

    # ---- a citizen's side, through the emulator's own client API ----------------------------
    async def send(self, who: Person, chat: dict[str, Any] | None = None, **message: Any) -> None:
        body = {
            "botToken": self.token,
            "from": who.user,
            "chat": chat or who.chat,
            "date": int(time.time()),
            **message,
        }
        r = await self.client.post("/sendMessage", json=body)
        assert r.status_code == 200, r.text
        self.fake._arrived.set()  # a long poll in the fake looks at once (Telegram's push)

    async def say(self, who: Person, text: str) -> None:
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else None
        )
        await self.send(who, text=text, **({"entities": entities} if entities else {}))

    async def share(self, who: Person, lat: float, lon: float) -> None:
        await self.send(who, location={"latitude": lat, "longitude": lon})

    async def photo(
        self, who: Person, data: bytes, caption: str | None = None, **extra: Any
    ) -> str:
        file_id = self.fake.add_file(data)
        sizes = [
            {"file_id": "thumb-" + file_id, "file_unique_id": "t", "width": 90, "height": 67},
            {
                "file_id": file_id,
                "file_unique_id": "u" + file_id,
                "width": 640,
                "height": 480,
                "file_size": len(data),
            },
        ]
        self.fake.files["thumb-" + file_id] = b"not the one to take"
        await self.send(who, photo=sizes, **({"caption": caption} if caption else {}), **extra)
        return file_id

    async def tap(self, who: Person, data: str) -> None:
        """A tap on an inline button of the bot's last message to this citizen."""
        last = (self.seen.get(who.id) or [{}])[-1]
        message = {
            "message_id": last.get("messageId", 1),
            "chat": who.chat,
            "date": int(time.time()),
            "text": last.get("text", ""),
        }
        body = {"botToken": self.token, "from": who.user, "message": message, "data": data}
        r = await self.client.post("/sendCallback", json=body)
        assert r.status_code == 200, r.text

    # ---- what the bot said ----------------------------------------------------------------
    async def replies(self, who: Person | int) -> list[dict[str, Any]]:
        """Every message the bot sent to this chat so far (``text``, ``reply_markup``, …)."""
        chat_id = who if isinstance(who, int) else who.id
        r = await self.client.post("/getUpdates", json={"token": self.token, "chatId": chat_id})
        got = self.seen.setdefault(chat_id, [])
        for item in r.json()["result"]:
            got.append({**item["message"], "messageId": item["messageId"], "time": item["time"]})
        return got

    async def wait_for(
        self, who: Person | int, contains: str, *, timeout: float = 20.0, after: int | None = None
    ) -> dict[str, Any]:
        """The first message whose text contains ``contains``, after the one the previous
        call found (or from index ``after``)."""
        chat_id = who if isinstance(who, int) else who.id
        start = self.cursor.get(chat_id, 0) if after is None else after
        deadline = time.monotonic() + timeout
        while True:
            got = await self.replies(who)
            for i in range(start, len(got)):
                if contains.lower() in str(got[i].get("text") or "").lower():
                    self.cursor[chat_id] = i + 1
                    return got[i]
            if time.monotonic() > deadline:
                texts = [m.get("text") for m in await self.replies(who)]
                raise AssertionError(f"no reply containing {contains!r}; got {texts}")
            await asyncio.sleep(0.05)

    async def quiet(self, who: Person | int, seconds: float = 1.0) -> list[dict[str, Any]]:
        """Wait, then return every message; for asserting that nothing more came."""
        await asyncio.sleep(seconds)
        return await self.replies(who)


@contextlib.asynccontextmanager
async def telegram_peer() -> AsyncIterator[TelegramPeer]:
    async with TelegramPeer() as peer:
        yield peer


__all__ = ["NODE_MODULES", "FakeBotApi", "Person", "TelegramPeer", "telegram_peer"]
