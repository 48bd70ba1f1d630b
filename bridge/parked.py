"""Reports the CRM refused (``kanal:complaints:parked``): list them, file them again.

A report is parked when the CRM answers 4xx (a service code it does not know, a field it
rejects) or its entry cannot be read. Once the cause is fixed (``CRM_SERVICE_MAP``, the CRM's
configuration), an operator replays it: the complaint goes back on ``kanal:complaints`` with its
own id, so the submitter's ledger and ``Idempotency-Key`` still keep it from being filed twice.
Listings carry ids, categories and reasons only: never the story, the place or the reporter.
"""

from __future__ import annotations

from dataclasses import dataclass

from kanal import streams
from kanal.messages import Complaint
from kanal.redis import Redis, xrange_str
from kanal.redis import fields as redis_fields


@dataclass(frozen=True)
class ParkedReport:
    entry_id: str
    parked_at_ms: int
    reason: str
    complaint_id: str
    category: str
    channel: str
    conv: str


def _describe(entry_id: str, fields: dict[str, str]) -> ParkedReport:
    try:
        c = Complaint.model_validate_json(fields.get("complaint", ""))
        complaint_id, category, channel, conv = c.complaint_id, c.category, c.channel, c.conv
    except ValueError:
        complaint_id = category = channel = conv = "?"
    return ParkedReport(
        entry_id=entry_id,
        parked_at_ms=int(entry_id.split("-", 1)[0]),
        reason=fields.get("reason", ""),
        complaint_id=complaint_id,
        category=category,
        channel=channel,
        conv=conv,
    )


async def list_parked(redis: Redis, *, limit: int = 1000) -> list[ParkedReport]:
    entries = await xrange_str(redis, streams.PARKED, count=limit)
    return [_describe(entry_id, fields) for entry_id, fields in entries]


class NotParked(LookupError):
    pass


async def replay_parked(redis: Redis, entry_id: str) -> ParkedReport:
    """Put a parked report back on the submitter's stream and take it off the parked one."""
    entries = await xrange_str(redis, streams.PARKED, min=entry_id, max=entry_id)
    if not entries:
        raise NotParked(entry_id)
    _, fields = entries[0]
    report = _describe(entry_id, fields)
    if report.complaint_id == "?":
        raise ValueError("this entry holds no readable complaint; it cannot be filed")
    has_contact = bool(await redis.hexists(streams.vault_key(report.conv), "contact"))
    async with redis.pipeline(transaction=True) as tx:
        tx.xadd(streams.COMPLAINTS, redis_fields({"complaint": fields["complaint"]}))
        if has_contact:  # until it is filed, the reporter's contact is kept from purges again
            tx.hset(streams.vault_key(report.conv), f"pending:{report.complaint_id}", "1")
        tx.xdel(streams.PARKED, entry_id)
        await tx.execute()
    return report


__all__ = ["NotParked", "ParkedReport", "list_parked", "replay_parked"]
