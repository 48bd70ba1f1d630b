"""Prometheus metrics. Labels carry channels, categories and outcomes only — never people."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INBOUND = Counter("kanal_inbound_total", "Inbound events handled", ["channel"])
REPORTS = Counter("kanal_reports_submitted_total", "Reports completed by citizens", ["channel"])
FILED = Counter("kanal_crm_filed_total", "Reports filed in the CRM", ["category"])
CRM_ERRORS = Counter("kanal_crm_errors_total", "CRM call failures", ["kind"])
CRM_ERROR_CODES = Counter(
    "kanal_crm_error_codes_total",
    "CRM errors by endpoint and GeoReport error code (or HTTP status)",
    ["endpoint", "code"],
)
CRM_BAD_RECORDS = Counter(
    "kanal_crm_bad_records_total", "Records from the CRM that did not parse, skipped", ["endpoint"]
)
RELAY_SKIPPED = Counter(
    "kanal_relay_skipped_total", "Status updates skipped by the relay", ["reason"]
)
TOKENS_WAITING = Gauge(
    "kanal_crm_tokens_waiting", "Reports the CRM queued (a token) that have no id yet"
)
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
EMAIL_IGNORED = Counter(
    "kanal_email_not_answered_total",
    "Mail recorded but not answered: auto-replies, bounces, lists, storms",
    ["reason"],
)
PART_FAILING = Gauge("kanal_part_failing", "1 while a loop keeps failing", ["part"])
PART_FAILURES = Counter("kanal_part_failures_total", "Failures of a loop, retried", ["part"])
TASK_CRASHES = Counter("kanal_task_crashes_total", "Supervised task crashes", ["task"])
ENGINE_SECONDS = Histogram(
    "kanal_engine_seconds",
    "Time to handle one inbound event",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

__all__ = [
    "CRM_BAD_RECORDS",
    "CRM_ERRORS",
    "CRM_ERROR_CODES",
    "ENGINE_SECONDS",
    "FILED",
    "INBOUND",
    "OUTBOX_DEAD",
    "OUTBOX_RETRIES",
    "OUTBOX_SENT",
    "PART_FAILING",
    "PART_FAILURES",
    "RELAYED",
    "RELAY_SKIPPED",
    "REPORTS",
    "TASK_CRASHES",
    "TOKENS_WAITING",
    "UNREACHABLE_SKIPPED",
]
