"""Exponential backoff with jitter, the one formula every retry loop in Kanal uses."""

from __future__ import annotations

import random


def backoff(attempt: int, *, base_s: float = 0.5, cap_s: float = 60.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): base·2^attempt, capped,
    with jitter between half and all of it so that replicas do not retry in step."""
    delay = min(cap_s, base_s * 2 ** min(attempt, 16))
    return random.uniform(delay / 2, delay)


__all__ = ["backoff"]
