"""Structured JSON logs that never carry personal data.

Log lines carry ``event``, ``channel``, ``conv`` (pseudonym), ``complaint_id`` and timings.
A processor drops any field whose name says it may hold message text, a contact, a
coordinate or a media URL, so a careless keyword argument cannot leak it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Field names that may carry personal data. Values under these keys are replaced.
FORBIDDEN_FIELDS = frozenset(
    {
        "text",
        "body",
        "description",
        "phone",
        "email",
        "address",
        "chat_id",
        "user_id",
        "contact",
        "lat",
        "lon",
        "long",
        "latitude",
        "longitude",
        "media_url",
        "url_with_query",
        "name",
        "handle",
        "payload",
    }
)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's duplicate with terminal escapes
    for key in list(event_dict):
        if key in FORBIDDEN_FIELDS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to one JSON (or console) stream on stderr."""
    out = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that would log URLs (with query strings) or bodies stay quiet.
    # PIL logs EXIF values (names, serials) at DEBUG: never let it speak below WARNING.
    for noisy in (
        "httpx",
        "httpcore",
        "uvicorn.access",
        "asyncio",
        "PIL",
        "botocore",
        "boto3",
        "telegram",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


__all__ = ["FORBIDDEN_FIELDS", "configure", "get_logger"]
