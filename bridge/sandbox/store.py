"""SQLite storage for the sandbox CRM: requests, photos, status updates and idempotency keys.

Every call opens its own connection (WAL mode, ``busy_timeout``), so one store may be used
from several threads, and several processes (a served sandbox plus ``kanal crm-sandbox
officer status``) may share the file. Writes run inside ``BEGIN IMMEDIATE`` so id allocation
and idempotency checks are atomic across processes.

Updates double as an outbox for webhook pushes: ``pushed_at`` stays NULL until the running
server has delivered the update (:mod:`bridge.sandbox.push`), whoever recorded it.
Proof photos live next to the database, in ``<name>-media/`` (:attr:`SandboxStore.media_dir`).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.sandbox.models import (
    CLOSED_STATUSES,
    ExternalStatus,
    IdempotencyKeyReused,
    NewRequest,
    OpenStatus,
    StoredRequest,
    StoredUpdate,
    UnknownRequest,
    format_ts,
)
from kanal.media import clean_image

FIRST_REQUEST_ID = 2400001
_MEDIA_ID = re.compile(r"[0-9a-f]{16,64}")  # a content hash, as kanal.media names it
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT, service_code TEXT NOT NULL,
        status TEXT NOT NULL, external_status_code TEXT NOT NULL, status_notes TEXT,
        description TEXT, lat REAL, long REAL, address_string TEXT, address_id TEXT,
        media_url TEXT, attributes TEXT NOT NULL DEFAULT '{}',
        requested_datetime TEXT NOT NULL, updated_datetime TEXT NOT NULL, rating INTEGER)""",
    """CREATE TABLE IF NOT EXISTS updates (
        update_id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id INTEGER NOT NULL REFERENCES requests(id), status TEXT NOT NULL,
        external_status_code TEXT NOT NULL, description TEXT NOT NULL, media_url TEXT,
        updated_datetime TEXT NOT NULL,
        pushed_at TEXT, push_attempts INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS updates_by_time ON updates(updated_datetime)",
    "CREATE INDEX IF NOT EXISTS requests_by_time ON requests(requested_datetime)",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        key TEXT PRIMARY KEY, payload_hash TEXT NOT NULL,
        request_id INTEGER NOT NULL REFERENCES requests(id), created_datetime TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS media (
        request_id INTEGER PRIMARY KEY REFERENCES requests(id), content_type TEXT NOT NULL,
        data BLOB NOT NULL)""",
)
# Databases from before webhook pushes: add the outbox columns; their old updates count as pushed.
_MIGRATIONS = (
    "ALTER TABLE updates ADD COLUMN pushed_at TEXT",
    "ALTER TABLE updates ADD COLUMN push_attempts INTEGER NOT NULL DEFAULT 0",
    "UPDATE updates SET pushed_at = updated_datetime",
)
_UNPUSHED_INDEX = (
    "CREATE INDEX IF NOT EXISTS updates_unpushed ON updates(update_id) WHERE pushed_at IS NULL"
)
_SEED_IDS = """INSERT INTO sqlite_sequence (name, seq) SELECT 'requests', ?
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'requests')"""


def _now() -> str:
    return format_ts(datetime.now(UTC))


def _request(row: sqlite3.Row) -> StoredRequest:
    data: dict[str, Any] = dict(row)
    data["attributes"] = json.loads(data["attributes"])
    return StoredRequest.model_validate(data)


class SandboxStore:
    """The sandbox CRM's database file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
        with self._write() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(updates)")}
            if "pushed_at" not in columns:
                for statement in _MIGRATIONS:
                    db.execute(statement)
            db.execute(_UNPUSHED_INDEX)
            db.execute(_SEED_IDS, (FIRST_REQUEST_ID - 1,))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: safe against crashes, fast commits
        return db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _get(db: sqlite3.Connection, request_id: int) -> StoredRequest:
        row = db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise UnknownRequest(f"unknown service request {request_id}")
        return _request(row)

    def create_request(
        self,
        fields: NewRequest,
        idempotency_key: str | None = None,
        payload_hash: str | None = None,
        media: tuple[bytes, str] | None = None,
        media_url_template: str | None = None,
    ) -> tuple[StoredRequest, bool]:
        """Store a new request; with a known key, return the original one (``replayed``).

        ``media`` is a photo uploaded with the request, ``(bytes, content type)``: it is kept
        here and the request's ``media_url`` becomes ``media_url_template.format(id=…)``.
        """
        if media is not None and not media_url_template:
            raise ValueError("media needs a media_url_template")
        payload_hash = payload_hash or fields.fingerprint()
        with self._write() as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT payload_hash, request_id FROM idempotency_keys WHERE key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None:
                    if row["payload_hash"] != payload_hash:
                        raise IdempotencyKeyReused("idempotency key reused with another payload")
                    return self._get(db, row["request_id"]), True
            now = _now()
            row_values = {
                **fields.model_dump(exclude={"attributes"}),
                "attributes": json.dumps(fields.attributes, ensure_ascii=False, sort_keys=True),
                "now": now,
            }
            cursor = db.execute(
                """INSERT INTO requests (service_code, status, external_status_code, description,
                    lat, long, address_string, address_id, media_url, attributes,
                    requested_datetime, updated_datetime)
                   VALUES (:service_code, 'open', 'received', :description, :lat, :long,
                    :address_string, :address_id, :media_url, :attributes, :now, :now)""",
                row_values,
            )
            request_id = int(cursor.lastrowid or 0)
            if media is not None and media_url_template:
                db.execute("INSERT INTO media VALUES (?, ?, ?)", (request_id, media[1], media[0]))
                db.execute(
                    "UPDATE requests SET media_url = ? WHERE id = ?",
                    (media_url_template.format(id=request_id), request_id),
                )
            if idempotency_key is not None:
                db.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?)",
                    (idempotency_key, payload_hash, request_id, now),
                )
            return self._get(db, request_id), False

    def get_request(self, request_id: int) -> StoredRequest | None:
        """The request with this id, or ``None``."""
        with self._read() as db:
            row = db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        return None if row is None else _request(row)

    def get_media(self, request_id: int) -> tuple[bytes, str] | None:
        """The photo uploaded with a request and its content type, or ``None``."""
        with self._read() as db:
            row = db.execute(
                "SELECT data, content_type FROM media WHERE request_id = ?", (request_id,)
            ).fetchone()
        return None if row is None else (bytes(row[0]), str(row[1]))

    def list_requests(
        self,
        ids: Sequence[int] | None = None,
        service_code: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        status: Sequence[OpenStatus] | None = None,
        limit: int = 1000,
    ) -> list[StoredRequest]:
        """Requests matching every given filter, newest first (at most ``limit``)."""
        where: list[str] = []
        args: list[Any] = []
        for column, values in (("id", ids), ("status", status)):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        if service_code is not None:
            where.append("service_code = ?")
            args.append(service_code)
        if start_date is not None:
            where.append("requested_datetime >= ?")
            args.append(format_ts(start_date))
        if end_date is not None:
            where.append("requested_datetime <= ?")
            args.append(format_ts(end_date))
        sql = "SELECT * FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._read() as db:
            rows = db.execute(f"{sql} ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_request(row) for row in rows]

    def add_update(
        self,
        request_id: int,
        status_code: ExternalStatus,
        description: str,
        media_url: str | None = None,
    ) -> StoredUpdate:
        """Record a status change by an officer; it becomes visible in the updates feed."""
        status: OpenStatus = "closed" if status_code in CLOSED_STATUSES else "open"
        with self._write() as db:
            self._get(db, request_id)
            # Never let updated_datetime go backwards, even if the clock does.
            last = db.execute("SELECT MAX(updated_datetime) FROM updates").fetchone()[0]
            now = max(_now(), last or "")
            cursor = db.execute(
                """INSERT INTO updates (request_id, status, external_status_code, description,
                    media_url, updated_datetime) VALUES (?, ?, ?, ?, ?, ?)""",
                (request_id, status, status_code, description, media_url, now),
            )
            db.execute(
                """UPDATE requests SET status = ?, external_status_code = ?, status_notes = ?,
                    updated_datetime = ? WHERE id = ?""",
                (status, status_code, description, now, request_id),
            )
            row = db.execute(
                "SELECT * FROM updates WHERE update_id = ?", (cursor.lastrowid,)
            ).fetchone()
        return StoredUpdate.model_validate(dict(row))

    def list_updates(
        self,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        request_id: int | None = None,
    ) -> list[StoredUpdate]:
        """Status updates in the time window, in ``update_id`` order."""
        sql = "SELECT * FROM updates WHERE updated_datetime >= ? AND updated_datetime <= ?"
        args: list[Any] = [
            format_ts(start_date) if start_date else "",
            format_ts(end_date) if end_date else "~",
        ]
        if request_id is not None:
            sql += " AND request_id = ?"
            args.append(request_id)
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY update_id", args).fetchall()
        return [StoredUpdate.model_validate(dict(row)) for row in rows]

    def pending_pushes(
        self, since: datetime, max_attempts: int, limit: int = 20
    ) -> list[StoredUpdate]:
        """Updates recorded since ``since`` and not yet pushed (nor given up), oldest first."""
        with self._read() as db:
            rows = db.execute(
                """SELECT * FROM updates WHERE pushed_at IS NULL AND push_attempts < ?
                   AND updated_datetime >= ? ORDER BY update_id LIMIT ?""",
                (max_attempts, format_ts(since), limit),
            ).fetchall()
        return [StoredUpdate.model_validate(dict(row)) for row in rows]

    def mark_pushed(self, update_id: int) -> None:
        """The webhook accepted this update."""
        with self._write() as db:
            db.execute("UPDATE updates SET pushed_at = ? WHERE update_id = ?", (_now(), update_id))

    def note_push_failure(self, update_id: int, *, give_up_at: int | None = None) -> int:
        """Count a failed push (``give_up_at``: jump to that count); returns the count."""
        with self._write() as db:
            if give_up_at is None:
                db.execute(
                    "UPDATE updates SET push_attempts = push_attempts + 1 WHERE update_id = ?",
                    (update_id,),
                )
            else:
                db.execute(
                    "UPDATE updates SET push_attempts = ? WHERE update_id = ?",
                    (give_up_at, update_id),
                )
            row = db.execute(
                "SELECT push_attempts FROM updates WHERE update_id = ?", (update_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    @property
    def media_dir(self) -> Path:
        """Where proof photos are kept: ``<db stem>-media/`` next to the database."""
        return self.path.with_name(f"{self.path.stem}-media")

    def save_photo(self, raw: bytes) -> str:
        """Keep an officer's proof photo (metadata stripped); its id, a content hash.

        Raises :class:`~kanal.errors.NotAnImage` for anything Pillow cannot decode.
        """
        image = clean_image(raw)
        self.media_dir.mkdir(parents=True, exist_ok=True)
        path = self.media_dir / f"{image.media_id}.jpg"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(image.data)
            tmp.replace(path)
        return image.media_id

    def photo_path(self, media_id: str) -> Path | None:
        """The file of a saved photo, or ``None``."""
        if not _MEDIA_ID.fullmatch(media_id):
            return None
        path = self.media_dir / f"{media_id}.jpg"
        return path if path.is_file() else None

    def set_rating(self, request_id: int, rating: int) -> StoredRequest:
        """Record the reporter's satisfaction rating (1–5)."""
        if not 1 <= rating <= 5:
            raise ValueError("rating must be between 1 and 5")
        with self._write() as db:
            self._get(db, request_id)
            db.execute("UPDATE requests SET rating = ? WHERE id = ?", (rating, request_id))
            return self._get(db, request_id)

    def note_personal_fields(self) -> None:
        """Count one submission that carried personal fields (their values are discarded)."""
        with self._write() as db:
            db.execute(
                """INSERT INTO counters VALUES ('personal_fields_received', 1)
                   ON CONFLICT(name) DO UPDATE SET value = value + 1"""
            )

    @property
    def personal_fields_received(self) -> int:
        """How many submissions carried email/name/phone/device/account fields."""
        with self._read() as db:
            row = db.execute(
                "SELECT value FROM counters WHERE name = 'personal_fields_received'"
            ).fetchone()
        return int(row[0]) if row else 0


__all__ = ["FIRST_REQUEST_ID", "SandboxStore"]
