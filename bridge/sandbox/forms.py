"""Parsing, validation and rendering for the sandbox's Open311 endpoints."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import AsyncGenerator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from bridge.sandbox.catalog import BY_CODE, PERSONAL_FIELDS, SERVICE_NOTICE
from bridge.sandbox.models import NewRequest, StoredRequest, StoredUpdate, format_ts
from kanal.errors import NotAnImage
from kanal.media import FORMATS, clean_image
from kanal.media import MAX_BYTES as MAX_MEDIA_BYTES

MAX_BODY_BYTES = 64 * 1024
MAX_MULTIPART_BYTES = MAX_BODY_BYTES + MAX_MEDIA_BYTES
MEDIA_FIELD = "media"
MAX_DESCRIPTION = 4000
_ATTRIBUTE = re.compile(r"attribute\[([^\]]+)\](\[\])?")


class Open311Failure(Exception):
    """Ends a request with an Open311 error body ``[{"code": …, "description": …}]``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def request_json(item: StoredRequest) -> dict[str, Any]:
    """An Open311 ``request`` object (plus ``external_status_code``)."""
    category = BY_CODE.get(item.service_code)
    return {
        "service_request_id": str(item.id),
        "status": item.status,
        "status_notes": item.status_notes,
        "service_name": category.label if category else None,
        "service_code": item.service_code,
        "description": item.description,
        "agency_responsible": None,
        "service_notice": SERVICE_NOTICE,
        "requested_datetime": format_ts(item.requested_datetime),
        "updated_datetime": format_ts(item.updated_datetime),
        "expected_datetime": None,
        "address": item.address_string,
        "address_id": item.address_id,
        "zipcode": None,
        "lat": item.lat,
        "long": item.long,
        "media_url": item.media_url,
        "external_status_code": item.external_status_code,
    }


def update_json(update: StoredUpdate, *, string_ids: bool = False) -> dict[str, Any]:
    """A FixMyStreet-style ``servicerequestupdates`` entry (``string_ids``: ``"61-3"``)."""
    update_id = f"{update.request_id}-{update.update_id}" if string_ids else str(update.update_id)
    return {
        "update_id": update_id,
        "service_request_id": str(update.request_id),
        "status": update.status,
        "description": update.description,
        "updated_datetime": format_ts(update.updated_datetime),
        "media_url": update.media_url,
        "external_status_code": update.external_status_code,
    }


def json_only(request: Request) -> None:
    """Refuse any response format but JSON (``.xml`` included) with a 400."""
    if request.path_params.get("fmt") != "json":
        raise Open311Failure(400, "Only the JSON format is supported: use the .json extension")


def date_param(params: dict[str, str], name: str) -> datetime | None:
    """An ISO 8601 query parameter; an unencoded ``+00:00`` arrives as `` 00:00``."""
    value = params.get(name)
    if not value:
        return None
    if len(value) > 6 and value[-6] == " ":
        value = f"{value[:-6]}+{value[-5:]}"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Open311Failure(400, f"{name} must be an ISO 8601 date-time") from None


def coordinate(value: str | None, name: str, limit: float) -> float | None:
    """A finite number within ±``limit``, or ``None`` when absent."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > limit:
        raise Open311Failure(400, f"{name} must be a number between -{limit:g} and {limit:g}")
    return number


def http_url(value: str | None, name: str) -> str | None:
    """An absolute http(s) URL, or ``None`` when absent."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Open311Failure(400, f"{name} must be an absolute http(s) URL")
    return value


def request_id_param(request: Request) -> int:
    """The ``{id}`` path parameter; ids are whole numbers, anything else is unknown."""
    raw = str(request.path_params["id"])
    if not raw.isdigit():
        raise Open311Failure(404, "Service request not found")
    return int(raw)


def new_request(
    items: list[tuple[str, str]], known: Callable[[str], bool] = BY_CODE.__contains__
) -> NewRequest:
    """Validate a submitted form; ``attribute[k]=v`` pairs become attributes."""
    fields: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for name, value in items:
        match = _ATTRIBUTE.fullmatch(name)
        if match is None:
            fields[name] = value
        elif match.group(1) not in PERSONAL_FIELDS:
            key = match.group(1)
            multi = match.group(2) and key in attributes
            attributes[key] = f"{attributes[key]},{value}" if multi else value
    code = fields.get("service_code", "").strip()
    if not code:
        raise Open311Failure(400, "service_code is required")
    if not known(code):
        raise Open311Failure(400, "service_code is not a known service, see /services.json")
    lat = coordinate(fields.get("lat"), "lat", 90)
    long = coordinate(fields.get("long"), "long", 180)
    if (lat is None) != (long is None):
        raise Open311Failure(400, "lat and long must be given together")
    address = fields.get("address_string", "").strip() or None
    address_id = fields.get("address_id", "").strip() or None
    if lat is None and address is None and address_id is None:
        raise Open311Failure(
            400, "A location is required: lat and long, address_string or address_id"
        )
    description = fields.get("description") or None
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise Open311Failure(400, f"description is longer than {MAX_DESCRIPTION} characters")
    return NewRequest(
        service_code=code,
        lat=lat,
        long=long,
        address_string=address,
        address_id=address_id,
        description=description,
        media_url=http_url(fields.get("media_url"), "media_url"),
        attributes=attributes,
    )


def has_personal_fields(items: list[tuple[str, str]]) -> bool:
    """Whether any field (or ``attribute[...]``) names personal data."""
    for name, _ in items:
        match = _ATTRIBUTE.fullmatch(name)
        if (match.group(1) if match else name) in PERSONAL_FIELDS:
            return True
    return False


def payload_hash(items: list[tuple[str, str]]) -> str:
    """Fingerprint of the submitted fields (order-insensitive, without ``api_key``)."""
    payload = sorted(item for item in items if item[0] != "api_key")
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Open311Failure(413, "Request body too large")
    return bytes(body)


async def read_form(request: Request) -> list[tuple[str, str]]:
    """Query parameters (where swagger.json declares them) followed by the form body."""
    items = list(request.query_params.multi_items())
    body = await read_body(request)
    if body:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise Open311Failure(400, "Send the form as application/x-www-form-urlencoded")
        try:
            items += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Open311Failure(400, "The form must be UTF-8") from None
    return items


async def _once(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def read_submission(request: Request) -> tuple[list[tuple[str, str]], bytes | None]:
    """A new request's fields, and the photo when it came as ``multipart/form-data``.

    The multipart form has the same fields as the urlencoded one plus at most one file part,
    ``media``; the body may then be up to ``MAX_MULTIPART_BYTES``.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await read_form(request), None
    items = list(request.query_params.multi_items())
    body = await read_body(request, MAX_MULTIPART_BYTES)
    parser = MultiPartParser(
        request.headers, _once(body), max_files=1, max_fields=200, max_part_size=MAX_BODY_BYTES
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        raise Open311Failure(400, "Malformed multipart/form-data body") from None
    media: bytes | None = None
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != MEDIA_FIELD:
                    raise Open311Failure(400, f"The only file part accepted is {MEDIA_FIELD!r}")
                media = await value.read()
            else:
                items.append((name, value))
    finally:
        await form.close()
    return items, media


def check_image(data: bytes) -> str:
    """The media type of ``data``; 400 unless it is an image Pillow decodes within limits."""
    try:
        clean_image(data)
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            return Image.MIME.get(img.format or "", "application/octet-stream")
    except (NotAnImage, OSError):
        raise Open311Failure(400, "media must be a JPEG, PNG, GIF or WebP image") from None


def media_hash(data: bytes) -> tuple[str, str]:
    """A pseudo-field for the payload fingerprint, so a replay must carry the same photo."""
    return ("\x00media_sha256", hashlib.sha256(data).hexdigest())


__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DESCRIPTION",
    "MAX_MULTIPART_BYTES",
    "MEDIA_FIELD",
    "Open311Failure",
    "check_image",
    "coordinate",
    "date_param",
    "has_personal_fields",
    "http_url",
    "json_only",
    "media_hash",
    "new_request",
    "payload_hash",
    "read_body",
    "read_form",
    "read_submission",
    "request_id_param",
    "request_json",
    "update_json",
]
