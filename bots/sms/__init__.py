"""The SMS channel through Kannel (1708, 08111272206): for citizens without a smartphone."""

from __future__ import annotations

from bots.core.channel import Channel
from bots.sms.adapter import CHANNEL as NAME
from bots.sms.adapter import MoRequest, e164, parse
from bots.sms.render import Sms, encode, render, shorten
from bots.sms.worker import LIMITS, SmsSettings, SmsWorker, make_worker

CHANNEL = Channel(
    name=NAME,
    summary="The SMS channel: Kannel's sms-service calls /sms/inbound, replies go out by sendsms.",
    settings=SmsSettings,
    worker=make_worker,
    limits=LIMITS,
)

__all__ = [
    "CHANNEL",
    "MoRequest",
    "Sms",
    "SmsSettings",
    "SmsWorker",
    "e164",
    "encode",
    "parse",
    "render",
    "shorten",
]
