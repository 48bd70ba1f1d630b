"""The X worker: DMs polled in, replies and the bridge's messages sent as DMs, mentions polled
and the report-like ones answered once in public with an invitation to DM.

DMs: ``GET /2/dm_events`` (newest first, no ``since_id``) is paged back to the newest id seen,
which is kept in Redis (``kanal:twitter:dm_cursor``). Events are taken oldest first: the bot's
own DMs are skipped, a DM's photos are downloaded with user-context auth, the turn and its
replies are committed together (:func:`bots.core.worker.handle_queued`), and only then does the
cursor move past the event. A crash anywhere loses nothing and answers nothing twice: an event
recorded but not yet passed by the cursor is a duplicate when it comes again. On the very first
start (no cursor), only DMs of the last ``TWITTER_BACKLOG_H`` hours are answered.

Mentions: ``GET /2/users/{id}/mentions`` with ``since_id`` (``kanal:twitter:mention_cursor``).
A mention that reads like a report gets exactly one public reply (:func:`adapter.public_reply`,
with a "send a DM" link), remembered per tweet id before and after it is posted; everything
else gets nothing.

Rate limits: each loop waits as ``x-rate-limit-remaining`` and ``x-rate-limit-reset`` allow
(:func:`bots.twitter.client.poll_delay`); a 429 waits for the reset; a 5xx or a network error
backs off (:class:`kanal.tasks.FailureStreak`). The cursor never moves on a failure, so none of
them loses an event.

Sending: the outbox sender sends DMs only (``POST /2/dm_conversations/with/{id}/messages``);
tracking numbers and status updates arrive there too, never as public replies. A 403/404 for
the recipient dead-letters the message as unreachable; a 429, or a send window used up, holds
it until the reset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from starlette.routing import BaseRoute

from bots.core.channel import ChannelSettings, WorkerContext, channel_config
from bots.core.outbox import RateLimits
from bots.core.worker import deliver_outbox, handle_queued, queue_once, within_hourly
from bots.twitter import adapter
from bots.twitter.adapter import CHANNEL, DmIn, MentionShape, newer, photo_refs
from bots.twitter.client import Credentials, Limit, XClient, XRefused, poll_delay
from kanal import metrics
from kanal.errors import (
    BadInput,
    KanalError,
    PermanentPeerError,
    RecipientUnreachable,
    RetryAfter,
    TemporaryPeerError,
)
from kanal.logging import get_logger
from kanal.media import MAX_BYTES
from kanal.messages import Outbound, PhotoIn
from kanal.redis import Redis, get_str
from kanal.tasks import FailureStreak, stop_tasks

log = get_logger(__name__)

# tweepy logs whole requests and responses (bodies, user ids) at DEBUG, oauthlib its signature
# base strings: never let them speak below WARNING, whatever KANAL_LOG_LEVEL says.
for _noisy in ("tweepy", "oauthlib", "requests_oauthlib", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

DM_CURSOR = "kanal:twitter:dm_cursor"
MENTION_CURSOR = "kanal:twitter:mention_cursor"
OWN_ID = "kanal:twitter:own_id"
MENTION_TTL_S = 30 * 24 * 3600
MAX_PAGES = 50  # 5,000 DMs or mentions since the last poll
CHANNEL_LIMITS = RateLimits(per_s=None, per_recipient_per_s=1.0, burst=3)


class TwitterSettings(ChannelSettings):
    """``TWITTER_*`` (see ARCHITECTURE.md). The four OAuth 1.0a values turn the channel on; the
    bearer token is optional (used for the mentions timeline only)."""

    model_config = channel_config("TWITTER_")
    required = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")

    api_base_url: str = "https://api.twitter.com"
    bearer_token: SecretStr = SecretStr("")
    consumer_key: SecretStr = SecretStr("")
    consumer_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    access_token_secret: SecretStr = SecretStr("")
    dm_poll_s: float = 60.0  # the floor; the rate-limit window may ask for longer
    mention_poll_s: float = 60.0
    backlog_h: float = 24.0  # first start only: DMs and mentions younger than this are answered
    invites_per_hour: int = 3  # public replies to one author per hour (a storm gets no more)
    timeout_s: float = 30.0

    def credentials(self) -> Credentials:
        return Credentials(
            consumer_key=self.consumer_key.get_secret_value(),
            consumer_secret=self.consumer_secret.get_secret_value(),
            access_token=self.access_token.get_secret_value(),
            access_token_secret=self.access_token_secret.get_secret_value(),
            bearer_token=self.bearer_token.get_secret_value(),
        )


class TwitterWorker:
    def __init__(
        self,
        ctx: WorkerContext,
        settings: TwitterSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.s = settings
        self.redis: Redis = ctx.redis
        self.engine = ctx.engine
        self.keyring = ctx.engine.keyring
        self.clock = clock
        creds = settings.credentials()

        def client() -> XClient:
            return XClient(creds, settings.api_base_url, timeout_s=settings.timeout_s, clock=clock)

        # One client (one requests session) per loop: they run in threads at the same time.
        self.dm_api, self.mention_api, self.send_api = client(), client(), client()
        self.own_id: str | None = None
        self.send_gate = 0.0  # epoch seconds before which the DM send window is used up

    def routes(self) -> Sequence[BaseRoute]:
        return ()

    async def run(self) -> None:
        outbox = deliver_outbox(
            self.redis,
            CHANNEL,
            self.send,
            consumer=self.ctx.consumer,
            limits=CHANNEL_LIMITS,
            policy=self.ctx.outbox_policy,
        )
        tasks = [asyncio.create_task(outbox)]
        try:
            self.own_id = await self.whoami()
            tasks.append(
                asyncio.create_task(self.loop("dm_events", self.poll_dms, self.s.dm_poll_s))
            )
            tasks.append(
                asyncio.create_task(
                    self.loop("mentions", self.poll_mentions, self.s.mention_poll_s)
                )
            )
            await asyncio.gather(*tasks)
        finally:
            await stop_tasks(tasks)

    async def whoami(self) -> str:
        """The bot's own user id (``GET /2/users/me``), kept in Redis for the next start."""
        streak = FailureStreak("twitter_me")
        while True:
            try:
                own = await self.dm_api.me()
                await self.redis.set(OWN_ID, own)
                streak.ok()
                log.info("twitter_ready", channel=CHANNEL)
                return own
            except (KanalError, ValueError, KeyError, TypeError) as exc:
                known = await get_str(self.redis, OWN_ID)
                if known:
                    return known
                delay = exc.seconds if isinstance(exc, RetryAfter) else streak.failed(exc)
                await asyncio.sleep(delay)

    async def loop(self, endpoint: str, poll: Callable[[], Any], base_s: float) -> None:
        """Poll forever at the pace the rate-limit window allows; back off on failures."""
        streak = FailureStreak(f"twitter_{endpoint}")
        while True:
            try:
                limit: Limit = await poll()
                streak.ok()
                delay = poll_delay(base_s, limit, self.clock())
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                metrics.PART_FAILURES.labels(f"twitter_{endpoint}").inc()
                log.warning(
                    "twitter_rate_limited",
                    channel=CHANNEL,
                    endpoint=endpoint,
                    retry_in_s=round(exc.seconds, 1),
                )
                delay = exc.seconds
            except Exception as exc:  # the loop's edge: log the type, back off, go on
                delay = streak.failed(exc)
            await asyncio.sleep(delay)

    # ---- DMs -----------------------------------------------------------------------------
    async def poll_dms(self) -> Limit:
        """One poll: every DM newer than the cursor, taken oldest first."""
        cursor = await get_str(self.redis, DM_CURSOR) or None
        events, media, limit = await self._fetch_dms(cursor)
        oldest_ok = None if cursor else self.clock() - self.s.backlog_h * 3600
        for ev in reversed(events):
            if oldest_ok is not None and _older_than(ev.get("created_at"), oldest_ok):
                log.info("twitter_dm_too_old", channel=CHANNEL)  # first start: not answered
            else:
                await self.take_dm(ev, media)
            await self.redis.set(DM_CURSOR, str(ev["id"]))
        return limit

    async def _fetch_dms(
        self, cursor: str | None
    ) -> tuple[list[Mapping[str, Any]], dict[str, Any], Limit]:
        events: list[Mapping[str, Any]] = []
        media: dict[str, Any] = {"media": []}
        token: str | None = None
        oldest_ok = None if cursor else self.clock() - self.s.backlog_h * 3600
        for _ in range(MAX_PAGES):
            page, limit = await self.dm_api.dm_events(token)
            media["media"].extend(page.includes.get("media") or ())
            reached = False
            for ev in page.items:
                if not newer(str(ev["id"]), cursor):
                    reached = True
                    break
                events.append(ev)
                if oldest_ok is not None and _older_than(ev.get("created_at"), oldest_ok):
                    reached = True  # first start: older ones are not answered anyway
            if reached or not page.next_token:
                return events, media, limit
            token = page.next_token
        log.error("twitter_dm_backlog_truncated", channel=CHANNEL, events=len(events))
        return events, media, limit

    async def take_dm(self, ev: Mapping[str, Any], includes: Mapping[str, Any]) -> None:
        """Record one DM: through the engine (its replies queued with the turn) or, for one we
        cannot use, a polite answer queued once."""
        assert self.own_id is not None
        if str(ev.get("sender_id") or "") == self.own_id:
            return  # our own DM, which dm_events lists too
        media = adapter.dm_media(ev, includes)
        photos = []
        for ref in photo_refs(media, self.engine.config.max_photos):
            assert ref.url is not None
            photos.append(PhotoIn(data=await self.dm_api.download(ref.url, MAX_BYTES)))
        dm = DmIn(event=ev, own_id=self.own_id, media=media, photos=tuple(photos))
        try:
            inbound = adapter.parse(dm)
        except BadInput as exc:
            log.info("twitter_dm_unusable", channel=CHANNEL, attachments=len(media))
            await self.answer_once(ev, exc.reply or adapter.NOT_A_PHOTO)
            return
        if inbound is None:
            return
        try:
            await handle_queued(self.engine, inbound)
        except KanalError as exc:
            raise TemporaryPeerError("engine busy: the DM waits behind the cursor") from exc

    async def answer_once(self, ev: Mapping[str, Any], text: str) -> None:
        sender = str(ev["sender_id"])
        conv = self.keyring.pseudonym(CHANNEL, sender)
        out = Outbound(channel=CHANNEL, to=sender, conv=conv, text=text)
        await queue_once(self.redis, f"kanal:twitter:answered:{ev['id']}", out)

    # ---- mentions --------------------------------------------------------------------------
    async def poll_mentions(self) -> Limit:
        assert self.own_id is not None
        cursor = await get_str(self.redis, MENTION_CURSOR) or None
        start = None
        if cursor is None:
            since = datetime.fromtimestamp(self.clock(), UTC) - timedelta(hours=self.s.backlog_h)
            start = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        tweets: list[Mapping[str, Any]] = []
        includes: dict[str, Any] = {"tweets": []}
        token: str | None = None
        for _ in range(MAX_PAGES):
            page, limit = await self.mention_api.mentions(
                self.own_id, since_id=cursor, start_time=start, pagination_token=token
            )
            tweets.extend(t for t in page.items if newer(str(t["id"]), cursor))
            includes["tweets"].extend(page.includes.get("tweets") or ())
            if not page.next_token:
                break
            token = page.next_token
        tweets.sort(key=lambda t: (len(str(t["id"])), str(t["id"])))
        for tweet in tweets:
            await self.take_mention(tweet, includes)
            await self.redis.set(MENTION_CURSOR, str(tweet["id"]))
        return limit

    async def take_mention(self, tweet: Mapping[str, Any], includes: Mapping[str, Any]) -> None:
        assert self.own_id is not None
        shape = adapter.mention_shape(tweet, includes, self.own_id)
        if shape is not MentionShape.CANDIDATE:
            log.info("twitter_mention_ignored", channel=CHANNEL, reason=str(shape))
            return
        understood = await self.engine.nlu.parse(adapter.mention_text(tweet))
        if not adapter.looks_like_report(understood):
            log.info(
                "twitter_mention_ignored",
                channel=CHANNEL,
                reason="not_a_report",
                intent=understood.intent,
            )
            return
        await self.invite(tweet)

    async def invite(self, tweet: Mapping[str, Any]) -> None:
        """The one public reply to a report-like mention. Its key is written before the post
        and after it; a post that may or may not have gone out is tried again (X refuses the
        same reply twice, which then counts as done)."""
        assert self.own_id is not None
        tweet_id = str(tweet["id"])
        key = f"kanal:twitter:mention:{tweet_id}"
        conv = self.keyring.pseudonym(CHANNEL, str(tweet.get("author_id") or ""))
        state = await get_str(self.redis, key)
        if state and state != "pending":
            return
        if not state:
            if not await self.within_rate(conv):
                log.warning("twitter_mention_storm", channel=CHANNEL, conv=conv)
                await self.redis.set(key, "capped", ex=MENTION_TTL_S)
                return
            await self.redis.set(key, "pending", ex=MENTION_TTL_S)
        try:
            await self.mention_api.reply(
                tweet_id, adapter.public_reply(tweet_id), adapter.deep_link(self.own_id)
            )
        except XRefused as exc:
            done = "done" if exc.reason == "duplicate" else "refused"
            await self.redis.set(key, done, ex=MENTION_TTL_S)
            log.info("twitter_mention_refused", channel=CHANNEL, conv=conv, reason=exc.reason)
            return
        await self.redis.set(key, "done", ex=MENTION_TTL_S)
        log.info("twitter_mention_answered", channel=CHANNEL, conv=conv)

    async def within_rate(self, conv: str) -> bool:
        key = f"kanal:twitter:invites:{conv}"
        return await within_hourly(self.redis, key, self.s.invites_per_hour, self.clock())

    # ---- sending ---------------------------------------------------------------------------
    async def send(self, out: Outbound) -> None:
        """One outbox message as DMs (never a public reply)."""
        if not out.to.isdigit():
            raise PermanentPeerError("not an X user id", reason="bad_recipient")
        wait = self.send_gate - self.clock()
        if wait > 0:
            raise RetryAfter(wait, "DM send window used up")
        for part in adapter.render(out):
            try:
                limit = await self.send_api.send_dm(out.to, part)
            except RetryAfter as exc:
                self.send_gate = self.clock() + exc.seconds
                raise
            except XRefused as exc:
                if exc.reason in ("forbidden", "not_found"):
                    raise RecipientUnreachable(
                        "X will not deliver to this user", status=exc.status, reason=exc.reason
                    ) from None
                if exc.reason == "app_forbidden":
                    raise TemporaryPeerError("our app may not send DMs", status=403) from None
                raise
            if limit.remaining is not None and limit.remaining <= 0 and limit.reset_at:
                self.send_gate = limit.reset_at + 0.5


def _older_than(created_at: object, epoch_s: float) -> bool:
    if not isinstance(created_at, str):
        return False
    try:
        when = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when.timestamp() < epoch_s


def make_worker(ctx: WorkerContext, settings: TwitterSettings) -> TwitterWorker:
    return TwitterWorker(ctx, settings)


__all__ = [
    "CHANNEL_LIMITS",
    "DM_CURSOR",
    "MENTION_CURSOR",
    "TwitterSettings",
    "TwitterWorker",
    "make_worker",
]
