"""Key material: pseudonyms (keyed HMAC) and the vault's encryption keys.

``KANAL_SECRET_KEY`` holds one or more secrets, comma-separated, newest first. The newest
encrypts; every listed key can still decrypt (rotation). Pseudonyms use the *oldest* listed key,
so rotating the encryption key does not change who is who. With the variable empty, a key is
generated once and kept in ``var/secret.key`` (development only; ``kanal doctor`` warns).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


class Keyring:
    def __init__(self, secrets_newest_first: list[str], *, generated: bool = False) -> None:
        keys = [s.strip() for s in secrets_newest_first if s.strip()]
        if not keys:
            raise ValueError("at least one secret is needed")
        self.generated = generated
        self._pseudo_key = _derive(keys[-1], b"kanal pseudonym v1")
        self._signing_keys = [_derive(k, b"kanal signing v1") for k in keys]
        self.fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(k, b"kanal vault v1"))) for k in keys]
        )
        self._seal_keys = [AESGCM(_derive(k, b"kanal seal v1")) for k in keys]

    @classmethod
    def from_setting(cls, value: str, data_dir: Path) -> Keyring:
        if value.strip():
            return cls(value.split(","))
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        return cls([path.read_text().strip()], generated=True)

    def pseudonym(self, channel: str, user_id: str) -> str:
        """A stable, non-reversible id for one person on one channel."""
        mac = hmac.new(self._pseudo_key, f"{channel}:{user_id}".encode(), hashlib.sha256)
        return "p_" + mac.hexdigest()[:24]

    def sign(self, message: bytes) -> str:
        """HMAC-SHA256 with the newest key."""
        return hmac.new(self._signing_keys[0], message, hashlib.sha256).hexdigest()

    def signatures(self, message: bytes) -> list[str]:
        """The message's HMAC under every listed key, newest first (to check old signatures)."""
        return [hmac.new(k, message, hashlib.sha256).hexdigest() for k in self._signing_keys]

    def verify(self, message: bytes, signature: str) -> bool:
        """True if any listed key signed it, so links signed before a rotation keep working."""
        return any(
            hmac.compare_digest(hmac.new(k, message, hashlib.sha256).hexdigest(), signature)
            for k in self._signing_keys
        )

    def encrypt(self, plaintext: bytes) -> str:
        return self.fernet.encrypt(plaintext).decode()

    def decrypt(self, token: str) -> bytes:
        return self.fernet.decrypt(token.encode())

    def seal(self, plaintext: bytes) -> str:
        """Short-lived secrets (a turn's replies kept for a redelivery): AES-GCM with the
        newest key, a quarter of Fernet's cost on the engine's hot path."""
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(
            nonce + self._seal_keys[0].encrypt(nonce, plaintext, None)
        ).decode()

    def unseal(self, token: str) -> bytes:
        """The plaintext of :meth:`seal`, under any listed key; ``ValueError`` if none opens it."""
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (ValueError, binascii.Error) as exc:
            raise ValueError("not a sealed value") from exc
        for key in self._seal_keys:
            try:
                return key.decrypt(raw[:12], raw[12:], None)
            except InvalidTag:
                continue
        raise ValueError("no listed key opens it")


__all__ = ["Keyring"]
