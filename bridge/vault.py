"""The identity vault: pseudonym → contact, encrypted at rest. Only the bridge opens it.

Bots seal the contact (``Keyring.encrypt``) into ``kanal:vault:<conv>`` when a citizen files a
report or asks for a status; the bridge opens it to route tracking numbers and status updates
back to the same channel. Nothing here is ever logged.
"""

from __future__ import annotations

import json

from cryptography.fernet import InvalidToken
from pydantic import BaseModel, ConfigDict

from kanal import streams
from kanal.keys import Keyring
from kanal.logging import get_logger
from kanal.redis import Redis, hget_str

log = get_logger(__name__)


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    address: str
    language: str = "id"


class Vault:
    def __init__(self, redis: Redis, keyring: Keyring) -> None:
        self.redis = redis
        self.keyring = keyring

    async def contact(self, conv: str) -> Contact | None:
        sealed = await hget_str(self.redis, streams.vault_key(conv), "contact")
        if not sealed:
            return None
        try:
            return Contact.model_validate(json.loads(self.keyring.decrypt(sealed)))
        except (InvalidToken, ValueError):
            log.error("vault_unreadable", conv=conv)
            return None


__all__ = ["Contact", "Vault"]
