"""Kanal's exception tree.

Every error Kanal raises on purpose derives from :class:`KanalError`, so a worker loop
can catch the family at its edge, log it, and go on::

    KanalError
    ├── ConfigError              configuration is missing or contradictory (fix .env)
    ├── BadInput                 a citizen or peer sent something we cannot use (reply politely;
    │   │                        ``reply`` is the polite answer, when there is one)
    │   └── NotAnImage           bytes that Pillow cannot decode as a picture, or too large
    ├── PeerError                a peer (CRM, Rasa, a platform) failed
    │   ├── TemporaryPeerError   5xx, timeout, connection refused: retry with backoff
    │   │   └── RetryAfter       the peer said when: wait ``seconds``, then retry
    │   └── PermanentPeerError   4xx: retrying will not help; park or dead-letter, and report
    │       └── RecipientUnreachable  the citizen is gone (blocked the bot, no such number)
    ├── LockTimeout              a conversation lock could not be taken in time
    └── RasaError (nlu.rasa)     the managed Rasa could not be installed, trained or started

``retryable`` tells the caller what to do without knowing the subclass.
"""

from __future__ import annotations


class KanalError(Exception):
    """Root of every error Kanal raises on purpose."""

    retryable: bool = False


class ConfigError(KanalError):
    """Configuration is missing or contradictory."""


class BadInput(KanalError):
    """Input we cannot use; the sender deserves a polite reply, not a crash."""

    def __init__(self, message: str = "", *, reply: str | None = None) -> None:
        super().__init__(message or reply or "")
        self.reply = reply


class NotAnImage(BadInput):
    """The bytes are not an image Pillow can decode within the limits."""


class PeerError(KanalError):
    """A peer failed. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TemporaryPeerError(PeerError):
    """Worth retrying later (5xx, timeout, refused connection)."""

    retryable = True


class RetryAfter(TemporaryPeerError):
    """The peer asked us to wait (HTTP 429 ``Retry-After``, Telegram's ``retry_after``)."""

    def __init__(self, seconds: float, message: str = "", *, status: int | None = 429) -> None:
        super().__init__(message or f"retry after {seconds} s", status=status)
        self.seconds = float(seconds)


class PermanentPeerError(PeerError):
    """Not worth retrying (4xx): the request itself is wrong. ``reason`` is a short code that
    is safe to log and count (never the platform's message, which may quote the recipient)."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message, status=status)
        self.reason = reason


class RecipientUnreachable(PermanentPeerError):
    """The platform says this recipient cannot get messages any more."""


class LockTimeout(KanalError):
    """A per-conversation lock could not be acquired in time."""

    retryable = True


__all__ = [
    "BadInput",
    "ConfigError",
    "KanalError",
    "LockTimeout",
    "NotAnImage",
    "PeerError",
    "PermanentPeerError",
    "RecipientUnreachable",
    "RetryAfter",
    "TemporaryPeerError",
]
