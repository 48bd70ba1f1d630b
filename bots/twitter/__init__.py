"""The X (Twitter) channel: @DKIJakarta's DMs, where reports are made, and its mentions, which
get one public invitation to continue by DM."""

from __future__ import annotations

from bots.core.channel import Channel
from bots.twitter.adapter import CHANNEL as NAME
from bots.twitter.adapter import (
    DmIn,
    MediaRef,
    MentionShape,
    dm_media,
    looks_like_report,
    mention_shape,
    mention_text,
    parse,
    public_reply,
    render,
)
from bots.twitter.client import BaseUrlSession, Limit, XClient, poll_delay
from bots.twitter.worker import CHANNEL_LIMITS, TwitterSettings, TwitterWorker, make_worker

CHANNEL = Channel(
    name=NAME,
    summary="The X (Twitter) channel: DMs polled in and answered as DMs; report-like mentions "
    "get one public invitation to DM.",
    settings=TwitterSettings,
    worker=make_worker,
    limits=CHANNEL_LIMITS,
)

__all__ = [
    "CHANNEL",
    "BaseUrlSession",
    "DmIn",
    "Limit",
    "MediaRef",
    "MentionShape",
    "TwitterSettings",
    "TwitterWorker",
    "XClient",
    "dm_media",
    "looks_like_report",
    "mention_shape",
    "mention_text",
    "parse",
    "poll_delay",
    "public_reply",
    "render",
]
