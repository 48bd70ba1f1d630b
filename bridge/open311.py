"""Async client for the CRM's Open311 GeoReport v2 API (plus the FixMyStreet updates feed).

This is the only code that talks to the CRM. What it sends carries no personal data:
:class:`NewServiceRequest` has no field for a name, contact, device or account, and refuses
attributes named like one. Failures map onto Kanal's error tree: 5xx, timeouts, refused
connections, 408/409/425/429 raise :class:`TemporaryPeerError` (retry with the same
idempotency key); other 4xx raise :class:`PermanentPeerError`.

Logs carry only endpoints, ids, HTTP statuses and timings — never bodies, descriptions,
coordinates or URLs with query strings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from kanal import metrics
from kanal.errors import PermanentPeerError, TemporaryPeerError

log = structlog.get_logger(__name__)

# Open311 fields (and attribute names) that would identify the reporter; Kanal never sends them.
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {"email", "first_name", "last_name", "phone", "device_id", "account_id", "name"}
)
_TEMPORARY_4XX = frozenset({408, 409, 425, 429})


def _as_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


OpenId = Annotated[str, BeforeValidator(_as_text)]  # some CRMs send ids as JSON numbers


class _Peer(BaseModel):
    """Something the CRM sent: unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


_PeerT = TypeVar("_PeerT", bound=_Peer)


class Service(_Peer):
    """One Open311 service (for Kanal: one complaint category)."""

    service_code: str
    service_name: str
    description: str | None = None
    metadata: bool = False
    type: str = "realtime"
    keywords: str | None = None
    group: str | None = None


class ServiceRequest(_Peer):
    """A service request as the CRM reports it."""

    service_request_id: OpenId
    status: Literal["open", "closed"]
    service_code: str
    requested_datetime: datetime
    status_notes: str | None = None
    service_name: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    updated_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None
    external_status_code: str | None = None


class ServiceRequestUpdate(_Peer):
    """One entry of the FixMyStreet-style ``servicerequestupdates`` feed."""

    update_id: OpenId
    service_request_id: OpenId
    status: Literal["open", "closed"]
    updated_datetime: datetime
    description: str | None = None
    media_url: str | None = None
    external_status_code: str | None = None


class NewServiceRequest(BaseModel):
    """A complaint to file. Location: ``lat``+``long`` or ``address_string``. No personal data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_code: str = Field(min_length=1)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address_string: str | None = None
    description: str | None = Field(default=None, max_length=4000)
    media_url: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long must be given together")
        if self.lat is None and not self.address_string:
            raise ValueError("a location is required: lat and long, or address_string")
        personal = sorted(PERSONAL_FIELDS.intersection(self.attributes))
        if personal:
            raise ValueError(f"attributes must not carry personal data: {personal}")
        return self

    def form(self) -> dict[str, str]:
        """The Open311 form fields (without ``api_key``/``jurisdiction_id``)."""
        fields: dict[str, str] = {"service_code": self.service_code}
        if self.lat is not None and self.long is not None:
            fields["lat"], fields["long"] = repr(self.lat), repr(self.long)
        for name in ("address_string", "description", "media_url"):
            value = getattr(self, name)
            if value:
                fields[name] = value
        for key, value in self.attributes.items():
            fields[f"attribute[{key}]"] = value
        return fields


def error_code(response: httpx.Response) -> str | None:
    """The ``code`` of a GeoReport error body ``[{"code", "description"}]``, if it is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    first = body[0] if isinstance(body, list) and body else body
    code = first.get("code") if isinstance(first, dict) else None
    return str(code)[:32] if isinstance(code, int | str) and str(code).strip() else None


@dataclass(frozen=True)
class Created:
    """What ``POST requests.json`` answered: the id, or a token to poll (a queueing CRM), or,
    from a CRM that answered 2xx with neither, nothing (the request exists: look it up)."""

    service_request_id: str | None = None
    token: str | None = None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


class Open311Client:
    """``async with Open311Client(url) as crm: await crm.create_request(...)``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        jurisdiction_id: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key or None
        self._jurisdiction = {"jurisdiction_id": jurisdiction_id} if jurisdiction_id else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "kanal-bridge"},
        )

    async def _call(
        self, method: str, path: str, endpoint: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send one request; ``None`` for 404, peer errors for failures."""
        started = time.perf_counter()
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # timeouts, refused connections, broken streams
            error = type(exc).__name__
            log.warning("open311.unreachable", endpoint=endpoint, error=error, ms=_ms(started))
            raise TemporaryPeerError(f"Open311 {endpoint}: {error}") from exc
        status = response.status_code
        if status < 300 or (status == 404 and method == "GET"):
            log.info("open311.call", endpoint=endpoint, status=status, ms=_ms(started))
            return None if status == 404 else response
        code = error_code(response)
        # The GeoReport error's code, never its description (it may quote what we sent).
        log.warning("open311.error", endpoint=endpoint, status=status, code=code, ms=_ms(started))
        metrics.CRM_ERROR_CODES.labels(endpoint, code or str(status)).inc()
        message = f"Open311 {endpoint}: HTTP {status}" + (f" (code {code})" if code else "")
        if status >= 500 or status in _TEMPORARY_4XX:
            raise TemporaryPeerError(message, status=status)
        raise PermanentPeerError(message, status=status, reason=f"crm_{code or status}")

    @staticmethod
    def _json(response: httpx.Response, endpoint: str) -> Any:
        try:
            return response.json()
        except ValueError:
            status = response.status_code
            raise TemporaryPeerError(f"Open311 {endpoint}: not JSON", status=status) from None

    async def _get_json(self, path: str, endpoint: str, params: dict[str, str]) -> Any:
        response = await self._call("GET", path, endpoint, params={**self._jurisdiction, **params})
        if response is None:
            raise PermanentPeerError(f"Open311 {endpoint}: HTTP 404", status=404)
        return self._json(response, endpoint)

    def _signed(self, fields: dict[str, str]) -> dict[str, str]:
        extra = {"api_key": self._api_key} if self._api_key else {}
        return {**fields, **self._jurisdiction, **extra}

    async def services(self) -> list[Service]:
        """The service list (``GET services.json``)."""
        body = await self._get_json("services.json", "services.json", {})
        return _parse_list(Service, body, "services.json")

    async def create_request(
        self, req: NewServiceRequest, *, idempotency_key: str, media: bytes | None = None
    ) -> Created:
        """File ``req``: the CRM's ``service_request_id`` (the tracking number) or a ``token``.

        With ``media`` (a stripped JPEG, for a CRM that takes no public URL) the form goes
        as ``multipart/form-data`` with the photo as the file part ``media``.
        """
        endpoint = "POST requests.json"
        headers = {"Idempotency-Key": idempotency_key}
        form = self._signed(req.form())
        files = {"media": ("photo.jpg", media, "image/jpeg")} if media is not None else None
        response = await self._call(
            "POST", "requests.json", endpoint, data=form, files=files, headers=headers
        )
        assert response is not None
        try:
            body = response.json()
        except ValueError:
            body = None
        first = body[0] if isinstance(body, list) and body else body
        first = first if isinstance(first, dict) else {}
        request_id, token = first.get("service_request_id"), first.get("token")
        if request_id not in (None, ""):
            log.info("open311.created", service_request_id=str(request_id))
            return Created(service_request_id=str(_as_text(request_id)))
        if token not in (None, ""):
            log.info("open311.queued")
            return Created(token=str(_as_text(token)))
        log.warning("open311.created_without_id", status=response.status_code)
        return Created()

    async def token(self, token: str) -> str | None:
        """The id a queued request got (``GET tokens/{token}.json``), ``None`` while it has none."""
        endpoint = "tokens/{token}.json"
        path = f"tokens/{quote(token, safe='')}.json"
        response = await self._call("GET", path, endpoint, params=self._jurisdiction)
        if response is None:
            return None
        body = self._json(response, endpoint)
        first = body[0] if isinstance(body, list) and body else body
        request_id = first.get("service_request_id") if isinstance(first, dict) else None
        return None if request_id in (None, "") else str(_as_text(request_id))

    async def find_requests(
        self, *, service_code: str, start_date: datetime, end_date: datetime
    ) -> list[ServiceRequest]:
        """Requests of one service filed in a time window (``GET requests.json``)."""
        endpoint = "GET requests.json"
        params = {
            "service_code": service_code,
            "start_date": _iso(start_date),
            "end_date": _iso(end_date),
        }
        body = await self._get_json("requests.json", endpoint, params)
        good, _ = parse_each(ServiceRequest, body, endpoint, id_field="service_request_id")
        return good

    async def get_request(self, service_request_id: str) -> ServiceRequest | None:
        """One request (``GET requests/{id}.json``), or ``None`` if the CRM does not know it."""
        endpoint = "requests/{id}.json"
        path = f"requests/{quote(service_request_id, safe='')}.json"
        response = await self._call("GET", path, endpoint, params=self._jurisdiction)
        if response is None:
            return None
        found = _parse_list(ServiceRequest, self._json(response, endpoint), endpoint)
        return found[0] if found else None

    async def updates(
        self, start_date: datetime, end_date: datetime | None = None
    ) -> tuple[list[ServiceRequestUpdate], int]:
        """Status updates recorded in ``[start_date, end_date]``, in the CRM's order, and how
        many items were skipped because they did not parse (each is logged by its id)."""
        params = {"start_date": _iso(start_date)}
        if end_date is not None:
            params["end_date"] = _iso(end_date)
        endpoint = "servicerequestupdates.json"
        body = await self._get_json(endpoint, endpoint, params)
        return parse_each(ServiceRequestUpdate, body, endpoint, id_field="update_id")

    async def post_rating(self, service_request_id: str, rating: int) -> None:
        """Pass on the reporter's satisfaction rating (1–5) for a request."""
        if not 1 <= rating <= 5:
            raise ValueError("rating must be between 1 and 5")
        path = f"requests/{quote(service_request_id, safe='')}/rating.json"
        await self._call(
            "POST",
            path,
            "POST requests/{id}/rating.json",
            data=self._signed({"rating": str(rating)}),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def parse_each(
    model: type[_PeerT], body: Any, endpoint: str, *, id_field: str
) -> tuple[list[_PeerT], int]:
    """Every item that parses, and the number that did not: one bad record never stops a
    feed. A skipped item is logged by its id (when it has one) and the fields that failed."""
    if not isinstance(body, list):
        raise PermanentPeerError(f"Open311 {endpoint}: expected a JSON array")
    good: list[_PeerT] = []
    bad = 0
    for item in body:
        try:
            good.append(model.model_validate(item))
        except ValidationError as exc:
            bad += 1
            fields = sorted({".".join(map(str, error["loc"])) for error in exc.errors()})
            raw_id = item.get(id_field) if isinstance(item, dict) else None
            log.warning(
                "open311.bad_record",
                endpoint=endpoint,
                record_id=str(raw_id)[:64] if raw_id is not None else None,
                fields=fields,
            )
            metrics.CRM_BAD_RECORDS.labels(endpoint).inc()
    return good, bad


def _parse_list(model: type[_PeerT], body: Any, endpoint: str) -> list[_PeerT]:
    if not isinstance(body, list):
        raise PermanentPeerError(f"Open311 {endpoint}: expected a JSON array")
    try:
        return [model.model_validate(item) for item in body]
    except ValidationError as exc:
        # The error names fields and types only, never the values received.
        fields = sorted({".".join(map(str, error["loc"])) for error in exc.errors()})
        raise PermanentPeerError(f"Open311 {endpoint}: malformed item ({fields})") from None


__all__ = [
    "PERSONAL_FIELDS",
    "Created",
    "NewServiceRequest",
    "Open311Client",
    "Service",
    "ServiceRequest",
    "ServiceRequestUpdate",
    "error_code",
    "parse_each",
]
