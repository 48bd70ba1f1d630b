"""Where cleaned photos are kept: a local directory by default, S3-compatible storage if set.

Every store takes the bytes a citizen sent, cleans them with :func:`kanal.media.clean_image`
(so only stripped JPEGs are ever stored) and keys them by content hash: the same photo sent
twice is stored once. Media ids are 32 lowercase hex characters; anything else is refused
before it can reach a path or an object key.

The API is synchronous (file and S3 I/O block): async callers use ``asyncio.to_thread``.
Store failures raise :class:`TemporaryPeerError` (retry) or :class:`PermanentPeerError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from kanal.errors import PermanentPeerError, TemporaryPeerError
from kanal.media import CleanImage, clean_image
from kanal.settings import KanalSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MEDIA_ID = re.compile(r"[0-9a-f]{32}")
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def valid_media_id(media_id: str) -> bool:
    """Whether ``media_id`` has the shape of an id this module hands out."""
    return _MEDIA_ID.fullmatch(media_id) is not None


def _clean(raw: bytes) -> CleanImage:
    return clean_image(raw)


@dataclass(frozen=True)
class StoredMedia:
    """A stored photo: its id (content hash) and the GPS position its EXIF carried."""

    media_id: str
    gps: tuple[float, float] | None  # (lat, lon) read before stripping; offer it as location
    width: int
    height: int


class MediaStore(Protocol):
    """Cleaned JPEGs by content hash."""

    def put(self, raw: bytes) -> StoredMedia:
        """Clean and store; :class:`~kanal.errors.NotAnImage` if ``raw`` is no image."""
        ...

    def get(self, media_id: str) -> bytes | None:
        """The stored JPEG, or ``None`` for an unknown or malformed id."""
        ...

    def delete(self, media_id: str) -> None:
        """Remove a photo (no error if it is already gone)."""
        ...


def _checked(media_id: str) -> str:
    if not valid_media_id(media_id):
        raise ValueError("not a media id")
    return media_id


class LocalMediaStore:
    """A directory of ``<media_id>.jpg`` files, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, media_id: str) -> Path:
        return self.root / f"{_checked(media_id)}.jpg"

    def put(self, raw: bytes) -> StoredMedia:
        img = _clean(raw)
        path = self._path(img.media_id)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".put-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(img.data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return StoredMedia(img.media_id, img.gps, img.width, img.height)

    def get(self, media_id: str) -> bytes | None:
        if not valid_media_id(media_id):
            return None
        try:
            return self._path(media_id).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, media_id: str) -> None:
        self._path(media_id).unlink(missing_ok=True)


def _peer_error(exc: BotoCoreError | ClientError) -> TemporaryPeerError | PermanentPeerError:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code", "?")
        message = f"S3 media store: {code}"
        if status is not None and (status >= 500 or status in (408, 429)):
            return TemporaryPeerError(message, status=status)
        return PermanentPeerError(message, status=status)
    return TemporaryPeerError(f"S3 media store: {type(exc).__name__}")


class S3MediaStore:
    """Objects ``{prefix}<media_id>.jpg`` in an S3-compatible bucket (AWS, MinIO, Ceph, R2)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        prefix: str = "media/",
        timeout_s: float = 10.0,
    ) -> None:
        if not bucket:
            raise ValueError("a bucket is required")
        import boto3  # here, not at the top: importing it costs ~0.1 s and most setups are local
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        config = Config(
            signature_version="s3v4",
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            # Custom endpoints (MinIO and friends) rarely serve virtual-hosted buckets.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        # Empty credentials: boto3's own chain (environment, instance role, …).
        self._s3: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region or None,
            config=config,
        )

    def _key(self, media_id: str) -> str:
        return f"{self.prefix}{_checked(media_id)}.jpg"

    def put(self, raw: bytes) -> StoredMedia:
        img = _clean(raw)
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=self._key(img.media_id),
                Body=img.data,
                ContentType="image/jpeg",
            )
        except (BotoCoreError, ClientError) as exc:
            raise _peer_error(exc) from None
        return StoredMedia(img.media_id, img.gps, img.width, img.height)

    def get(self, media_id: str) -> bytes | None:
        if not valid_media_id(media_id):
            return None
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=self._key(media_id))
            return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise _peer_error(exc) from None
        except BotoCoreError as exc:
            raise _peer_error(exc) from None

    def delete(self, media_id: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(media_id))
        except (BotoCoreError, ClientError) as exc:
            raise _peer_error(exc) from None


def media_store_from_settings(settings: KanalSettings) -> MediaStore:
    """S3 when ``KANAL_MEDIA_S3_BUCKET`` is set, else ``{KANAL_DATA_DIR}/media``."""
    if settings.media_s3_bucket:
        return S3MediaStore(
            settings.media_s3_bucket,
            endpoint_url=settings.media_s3_endpoint_url or None,
            access_key=settings.media_s3_access_key.get_secret_value() or None,
            secret_key=settings.media_s3_secret_key.get_secret_value() or None,
            region=settings.media_s3_region or None,
            prefix=settings.media_s3_prefix,
        )
    return LocalMediaStore(settings.data_dir / "media")


__all__ = [
    "LocalMediaStore",
    "MediaStore",
    "S3MediaStore",
    "StoredMedia",
    "media_store_from_settings",
    "valid_media_id",
]
