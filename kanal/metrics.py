"""Prometheus metrics. Labels carry channels, categories and outcomes only — never people."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INBOUND = Counter("kanal_inbound_total", "Inbound events handled", ["channel"])
REPORTS = Counter("kanal_reports_submitted_total", "Reports completed by citizens", ["channel"])
FILED = Counter("kanal_crm_filed_total", "Reports filed in the CRM", ["category"])
CRM_ERRORS = Counter("kanal_crm_errors_total", "CRM call failures", ["kind"])
RELAYED = Counter("kanal_updates_relayed_total", "Status updates relayed to citizens")
OUTBOX_SENT = Counter("kanal_outbox_sent_total", "Outbox messages a platform accepted", ["channel"])
OUTBOX_RETRIES = Counter(
    "kanal_outbox_retries_total", "Outbox sends that failed and will be retried", ["channel"]
)
OUTBOX_DEAD = Counter(
    "kanal_outbox_dead_total", "Outbox messages moved to the dead letters", ["channel", "reason"]
)
UNREACHABLE_SKIPPED = Counter(
    "kanal_updates_unreachable_total", "Status updates not sent: the recipient is unreachable"
)
TASK_CRASHES = Counter("kanal_task_crashes_total", "Supervised task crashes", ["task"])
ENGINE_SECONDS = Histogram(
    "kanal_engine_seconds",
    "Time to handle one inbound event",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

__all__ = [
    "CRM_ERRORS",
    "ENGINE_SECONDS",
    "FILED",
    "INBOUND",
    "OUTBOX_DEAD",
    "OUTBOX_RETRIES",
    "OUTBOX_SENT",
    "RELAYED",
    "REPORTS",
    "TASK_CRASHES",
    "UNREACHABLE_SKIPPED",
]
