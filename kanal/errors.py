"""Kanal's exception tree.

Every error Kanal raises on purpose derives from :class:`KanalError`, so a worker loop
can catch the family at its edge, log it, and go on::

    KanalError
    ├── ConfigError              configuration is missing or contradictory (fix .env)
    ├── BadInput                 a citizen or peer sent something we cannot use (reply politely)
    │   └── NotAnImage           bytes that Pillow cannot decode as a picture, or too large
    ├── PeerError                a peer (CRM, Rasa, a platform) failed
    │   ├── TemporaryPeerError   5xx, timeout, connection refused: retry with backoff
    │   └── PermanentPeerError   4xx: retrying will not help; park and report
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


class PermanentPeerError(PeerError):
    """Not worth retrying (4xx): the request itself is wrong."""


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
    "TemporaryPeerError",
]
