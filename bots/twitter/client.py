"""The thin client around tweepy 4's ``Client`` (X API v2) that the worker uses.

tweepy builds every call on ``https://api.twitter.com``. :class:`BaseUrlSession`, the
``requests`` session of *this* client only, sends them to ``TWITTER_API_BASE_URL`` instead
(a local stand-in in tests) and gives every request a timeout; tweepy itself is not patched.
The URL is rewritten before the request is prepared, so the OAuth 1.0a signature covers the
address really called.

Auth: the DM and tweet endpoints are called with user context (OAuth 1.0a, the access token);
the bearer token, when set, only for the mentions timeline, the one call here whose security
requirement allows it. Photos of DMs are downloaded with user context as well, and only from
X's own hosts (or the configured API host): credentials never go anywhere else.

Errors become Kanal's: 429 → :class:`RetryAfter` (until ``x-rate-limit-reset``), 5xx and
network errors → :class:`TemporaryPeerError`, other 4xx → :class:`XRefused` with a short
``reason`` that is safe to log. Every answer carries its rate-limit window (:class:`Limit`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import tweepy

from bots.twitter.adapter import Page
from kanal.errors import PermanentPeerError, RetryAfter, TemporaryPeerError

TWITTER_HOST = "https://api.twitter.com"
DM_FIELDS = ["id", "event_type", "text", "sender_id", "created_at", "attachments"]
DM_EXPANSIONS = ["attachments.media_keys", "sender_id"]
MEDIA_FIELDS = ["media_key", "type", "url"]
TWEET_FIELDS = ["id", "text", "author_id", "created_at", "referenced_tweets", "conversation_id"]
MENTION_EXPANSIONS = ["referenced_tweets.id"]  # with author_id: is a quoted tweet ours?
USER_FIELDS = ["id"]  # the expansions bring users; we ask for nothing about them but the id
# Problems of a 403 that are about our app or account, not about the recipient.
_OUR_403 = ("oauth1-permissions", "client-forbidden", "unsupported-authentication", "usage-cap")
RATE_WAIT_DEFAULT_S = 60.0
RATE_WAIT_CAP_S = 15 * 60 + 5.0


class XRefused(PermanentPeerError):
    """X refused a request for good (a 4xx other than 429)."""


@dataclass(frozen=True)
class Limit:
    """An endpoint's rate-limit window, from ``x-rate-limit-remaining`` / ``-reset``."""

    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Limit:
        return cls(
            remaining=_int(headers.get("x-rate-limit-remaining")),
            reset_at=_float(headers.get("x-rate-limit-reset")),
        )


def poll_delay(base_s: float, limit: Limit, now: float, *, cap_s: float = RATE_WAIT_CAP_S) -> float:
    """How long to wait before the next poll: ``base_s``, or longer so that the calls left in
    the window last until it resets; past the reset when none is left."""
    if limit.remaining is None or limit.reset_at is None:
        return base_s
    left = max(0.0, limit.reset_at - now)
    if limit.remaining <= 0:
        return min(cap_s, max(base_s, left + 0.5))
    return min(cap_s, max(base_s, left / limit.remaining))


def retry_wait(headers: Mapping[str, str], now: float) -> float:
    """After a 429: until ``x-rate-limit-reset`` (a little after), else a default wait."""
    reset = _float(headers.get("x-rate-limit-reset"))
    if reset is None:
        return RATE_WAIT_DEFAULT_S
    return min(RATE_WAIT_CAP_S, max(1.0, reset - now + 0.5))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class BaseUrlSession(requests.Session):
    """tweepy's calls to ``https://api.twitter.com`` go to ``base_url``, each with a timeout."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith(TWITTER_HOST + "/"):
            url = self.base_url + url[len(TWITTER_HOST) :]
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    bearer_token: str = ""


class XClient:
    """One tweepy ``Client`` on its own :class:`BaseUrlSession`. Blocking calls run in a
    thread; each loop of the worker has its own client (a session per thread)."""

    def __init__(
        self,
        creds: Credentials,
        base_url: str = TWITTER_HOST,
        *,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.creds = creds
        self.base_url = base_url.rstrip("/") or TWITTER_HOST
        self.clock = clock
        self.tweepy = tweepy.Client(
            bearer_token=creds.bearer_token or None,
            consumer_key=creds.consumer_key,
            consumer_secret=creds.consumer_secret,
            access_token=creds.access_token,
            access_token_secret=creds.access_token_secret,
            return_type=requests.Response,
        )
        self.session = BaseUrlSession(self.base_url, timeout_s)
        self.tweepy.session = self.session

    # ---- calls ---------------------------------------------------------------------------
    async def me(self) -> str:
        doc, _ = await self._call(self.tweepy.get_me, user_auth=True, user_fields=USER_FIELDS)
        return str(doc["data"]["id"])

    async def dm_events(self, pagination_token: str | None = None) -> tuple[Page, Limit]:
        doc, limit = await self._call(
            self.tweepy.get_direct_message_events,
            event_types="MessageCreate",
            dm_event_fields=DM_FIELDS,
            expansions=DM_EXPANSIONS,
            media_fields=MEDIA_FIELDS,
            user_fields=USER_FIELDS,
            max_results=100,
            pagination_token=pagination_token,
            user_auth=True,
        )
        return Page.of(doc), limit

    async def mentions(
        self,
        own_id: str,
        *,
        since_id: str | None = None,
        start_time: str | None = None,
        pagination_token: str | None = None,
    ) -> tuple[Page, Limit]:
        params: dict[str, Any] = {
            "tweet_fields": TWEET_FIELDS,
            "expansions": MENTION_EXPANSIONS,
            "max_results": 100,
        }
        if since_id:
            params["since_id"] = since_id
        elif start_time:
            params["start_time"] = start_time
        if pagination_token:
            params["pagination_token"] = pagination_token
        # The one call whose security requirement allows the app's bearer token.
        user_auth = not self.creds.bearer_token
        doc, limit = await self._call(
            self.tweepy.get_users_mentions, own_id, user_auth=user_auth, **params
        )
        return Page.of(doc), limit

    async def send_dm(self, participant_id: str, text: str) -> Limit:
        _, limit = await self._call(
            self.tweepy.create_direct_message,
            participant_id=participant_id,
            text=text,
            user_auth=True,
        )
        return limit

    async def reply(self, tweet_id: str, text: str, dm_link: str) -> Limit:
        _, limit = await self._call(
            self.tweepy.create_tweet,
            text=text,
            in_reply_to_tweet_id=tweet_id,
            direct_message_deep_link=dm_link,
            user_auth=True,
        )
        return limit

    async def download(self, url: str, max_bytes: int) -> bytes:
        """A DM photo, with user-context auth; at most ``max_bytes + 1`` bytes are read (the
        media checks refuse what is larger). A photo X no longer has comes back empty (the
        media checks refuse it politely); a failing X raises, to be tried again."""
        return await asyncio.to_thread(self._download, url, max_bytes)

    # ---- plumbing --------------------------------------------------------------------------
    def _media_auth(self, url: str) -> Any:
        host = (urlsplit(url).hostname or "").lower()
        ours = (urlsplit(self.base_url).hostname or "").lower()
        if (
            host == ours
            or host in ("twitter.com", "x.com")
            or host.endswith((".twitter.com", ".x.com"))
        ):
            return tweepy.OAuth1UserHandler(
                self.creds.consumer_key,
                self.creds.consumer_secret,
                self.creds.access_token,
                self.creds.access_token_secret,
            ).apply_auth()
        if host.endswith(".twimg.com"):
            return None
        raise XRefused("media on a foreign host", reason="foreign_media_host")

    def _download(self, url: str, max_bytes: int) -> bytes:
        try:
            auth = self._media_auth(url)
        except XRefused:
            return b""
        try:
            with self.session.get(url, auth=auth, stream=True) as resp:
                if resp.status_code == 429:
                    raise RetryAfter(retry_wait(resp.headers, self.clock()), status=429)
                if resp.status_code >= 500:
                    raise TemporaryPeerError("media download failed", status=resp.status_code)
                if resp.status_code >= 400:
                    return b""
                data = bytearray()
                for chunk in resp.iter_content(64 * 1024):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        break
                return bytes(data)
        except requests.RequestException as exc:
            raise TemporaryPeerError(f"media download: {type(exc).__name__}") from None

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Limit]:
        return await asyncio.to_thread(self._call_sync, fn, *args, **kwargs)

    def _call_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Limit]:
        try:
            resp: requests.Response = fn(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            raise RetryAfter(retry_wait(exc.response.headers, self.clock()), status=429) from None
        except tweepy.TwitterServerError as exc:
            raise TemporaryPeerError("X server error", status=exc.response.status_code) from None
        except tweepy.Unauthorized:
            # Wrong or revoked credentials: an operator must fix them; nothing is dropped.
            raise TemporaryPeerError("X refused our credentials", status=401) from None
        except tweepy.HTTPException as exc:
            raise refused(exc.response) from None
        except requests.RequestException as exc:
            raise TemporaryPeerError(f"X unreachable: {type(exc).__name__}") from None
        try:
            doc = resp.json() if resp.content else {}
        except ValueError:
            raise TemporaryPeerError("X answered something that is not JSON") from None
        return doc, Limit.of(resp.headers)


def refused(resp: requests.Response) -> XRefused:
    """A 4xx as :class:`XRefused`, its ``reason`` a short code (never the platform's words)."""
    status = resp.status_code
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    kind = str(doc.get("type") or "") if isinstance(doc, dict) else ""
    detail = str(doc.get("detail") or "") if isinstance(doc, dict) else ""
    if status == 403 and "duplicate" in detail.lower():
        reason = "duplicate"
    elif status == 403 and any(k in kind for k in _OUR_403):
        reason = "app_forbidden"
    else:
        reason = {400: "bad_request", 403: "forbidden", 404: "not_found"}.get(
            status, f"http_{status}"
        )
    return XRefused(f"X refused: {status}", status=status, reason=reason)


__all__ = [
    "DM_EXPANSIONS",
    "DM_FIELDS",
    "TWITTER_HOST",
    "BaseUrlSession",
    "Credentials",
    "Limit",
    "XClient",
    "XRefused",
    "poll_delay",
    "refused",
    "retry_wait",
]
