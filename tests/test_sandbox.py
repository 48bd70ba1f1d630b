"""The sandbox CRM over real HTTP, checked against the Open311 GeoReport v2 spec files."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bridge.sandbox import SandboxServer, SandboxStore
from tests import sandbox_fixtures as fixtures
from tests.sandbox_fixtures import (
    CATEGORY_CODES,
    SlowForm,
    assert_open311_error,
    assert_utc_timestamp,
    assert_valid,
    create,
    keys_in_flight,
    load_spec,
    officer,
    swagger_parameters,
    valid_form,
    wait_until,
)

store, sandbox, secured, http = fixtures.store, fixtures.sandbox, fixtures.secured, fixtures.http


async def test_services_are_the_twelve_categories(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    body = (await http.get("/services.json")).json()
    assert_valid(body, "services.json")
    assert [service["service_code"] for service in body] == CATEGORY_CODES
    assert {(s["type"], s["metadata"]) for s in body} == {("realtime", False)}
    assert body[0]["service_name"] == "Sampah & kebersihan" and all(s["group"] for s in body)


async def test_service_definition_lists_optional_attributes(http: httpx.AsyncClient) -> None:
    body = (await http.get("/services/banjir.json")).json()
    assert_valid(body, "service-definition.json")
    codes = {attribute["code"]: attribute["required"] for attribute in body["attributes"]}
    assert {"kelurahan", "kecamatan", "channel"} <= set(codes) and not any(codes.values())
    assert_open311_error(await http.get("/services/banjir_bandang.json"), 404)


async def test_create_then_get(http: httpx.AsyncClient, store: SandboxStore) -> None:
    first, second = await create(http), await create(http, service_code="banjir")
    assert (first, second) == ("2400001", "2400002")
    response = await http.get(f"/requests/{first}.json")
    assert response.status_code == 200
    body = response.json()
    assert_valid(body, "requests.json")
    (item,) = body
    form = valid_form()
    assert item["service_request_id"] == first and item["service_code"] == "sampah"
    assert (item["lat"], item["long"]) == (float(form["lat"]), float(form["long"]))
    assert item["description"] == form["description"] and item["media_url"] == form["media_url"]
    assert item["address"] == form["address_string"]
    assert (item["status"], item["external_status_code"]) == ("open", "received")
    assert_utc_timestamp(item["requested_datetime"])
    stored = store.get_request(int(first))
    assert stored is not None
    assert stored.attributes == {
        "kelurahan": "Gambir",
        "kecamatan": "Gambir",
        "channel": "telegram",
        "reporter": "p-3f9a1c",
    }


@pytest.mark.parametrize("path", ["/requests/2499999.json", "/requests/abc.json"])
async def test_unknown_request_is_404(http: httpx.AsyncClient, path: str) -> None:
    assert_open311_error(await http.get(path), 404)


async def test_request_filters(http: httpx.AsyncClient) -> None:
    a, b = await create(http), await create(http)
    c = await create(http, service_code="banjir")
    assert (await officer(http, b, status="resolved")).status_code == 201
    hour = timedelta(hours=1)
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({}, {a, b, c}),
        ({"service_code": "sampah"}, {a, b}),
        ({"status": "closed"}, {b}),
        ({"status": "open"}, {a, c}),
        ({"status": "open,closed"}, {a, b, c}),
        ({"service_code": "banjir", "status": "open"}, {c}),
        ({"service_request_id": f"{a},{c}"}, {a, c}),
        ({"service_request_id": c, "service_code": "sampah"}, {c}),  # ids override the rest
        ({"start_date": (datetime.now(UTC) + hour).isoformat()}, set()),
        ({"end_date": (datetime.now(UTC) - hour).isoformat()}, set()),
        ({"start_date": (datetime.now(UTC) - hour).isoformat()}, {a, b, c}),
    ]
    for params, want in cases:
        response = await http.get("/requests.json", params=params)
        assert response.status_code == 200, (params, response.text)
        assert_valid(response.json(), "requests.json")
        assert {item["service_request_id"] for item in response.json()} == want, params
    assert_open311_error(await http.get("/requests.json", params={"status": "pending"}), 400)
    assert_open311_error(await http.get("/requests.json", params={"start_date": "kemarin"}), 400)


@pytest.mark.parametrize(
    ("label", "changes"),
    [
        ("unknown service_code", {"service_code": "banjir_bandang"}),
        ("missing service_code", {"service_code": None}),
        ("no location", {"lat": None, "long": None, "address_string": None}),
        ("lat without long", {"long": None, "address_string": None}),
        ("latitude out of range", {"lat": "91"}),
        ("longitude not a number", {"long": "timur"}),
        ("description too long", {"description": "x" * 4001}),
        ("media_url not a URL", {"media_url": "file:///etc/passwd"}),
    ],
)
async def test_invalid_submissions_are_400(
    http: httpx.AsyncClient, store: SandboxStore, label: str, changes: dict[str, str | None]
) -> None:
    response = await http.post("/requests.json", data=valid_form(**changes))
    assert_open311_error(response, 400)
    assert store.list_requests() == [], label


async def test_boundaries_are_accepted(http: httpx.AsyncClient) -> None:
    await create(http, description="x" * 4000)
    await create(http, lat=None, long=None, address_string=None, address_id="JKT-0101")
    await create(http, lat=None, long=None)  # address_string alone is a location


async def test_api_key_and_jurisdiction(secured: SandboxServer, store: SandboxStore) -> None:
    async with httpx.AsyncClient(base_url=secured.url) as client:
        cases: list[tuple[dict[str, str | None], int]] = [
            ({"api_key": "salah"}, 403),
            ({"api_key": None}, 403),
            ({"jurisdiction_id": "bandung.go.id"}, 400),
        ]
        for changes, status in cases:
            response = await client.post("/requests.json", data=valid_form(**changes))
            assert_open311_error(response, status)
        assert store.list_requests() == []
        assert await create(client) == "2400001"


async def test_required_swagger_parameters_are_enforced(
    secured: SandboxServer, store: SandboxStore
) -> None:
    declared = swagger_parameters("/requests.{response_format}", "post")
    required = [p["name"] for p in declared if p["required"] and p["in"] != "path"]
    assert {"service_code", "jurisdiction_id"} <= set(required)
    async with httpx.AsyncClient(base_url=secured.url) as client:
        for name in required:
            response = await client.post("/requests.json", data=valid_form(**{name: None}))
            assert_open311_error(response, 400)
        assert store.list_requests() == []
        assert await create(client)


async def test_every_swagger_path_is_served(http: httpx.AsyncClient) -> None:
    request_id = await create(http)
    schemas = {"services": "services.json", "request": "requests.json"}
    schemas |= {"requests": "requests.json", "services/{service_code}": "service-definition.json"}
    for path, operations in load_spec("swagger.json")["paths"].items():
        url = path.format(
            response_format="json",
            service_request_id=request_id,
            service_code="pohon",
            token_id="t1",
        )
        stem = path.removeprefix("/").removesuffix(".{response_format}")
        for method in operations:
            form = valid_form() if method == "post" else None
            response = await http.request(method.upper(), url, data=form)
            assert response.status_code != 405, (method, path)
            if stem.startswith("tokens/"):  # every service is realtime: no tokens exist
                assert_open311_error(response, 404)
            elif method == "get":
                assert response.status_code == 200, (path, response.text)
                assert_valid(response.json(), schemas[stem.replace("/{service_request_id}", "")])
            else:
                assert response.status_code == 201, (path, response.text)


async def test_xml_is_refused(http: httpx.AsyncClient, store: SandboxStore) -> None:
    for path in ("/services.xml", "/requests.xml", "/requests/1.xml", "/services/pkl.xml"):
        assert_open311_error(await http.get(path), 400)
    assert_open311_error(await http.post("/requests.xml", data=valid_form()), 400)
    assert store.list_requests() == []


async def test_idempotency_replay_and_conflict(
    http: httpx.AsyncClient, store: SandboxStore
) -> None:
    first = await http.post("/requests.json", data=valid_form(), headers={"Idempotency-Key": "k1"})
    again = await http.post("/requests.json", data=valid_form(), headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    changed = valid_form(description="Laporan lain sama sekali.")
    conflict = await http.post("/requests.json", data=changed, headers={"Idempotency-Key": "k1"})
    assert_open311_error(conflict, 422)
    assert len(store.list_requests()) == 1
    assert await create(http, key="k2") == "2400002"


async def test_concurrent_posts_with_one_key_file_once(
    http: httpx.AsyncClient, store: SandboxStore
) -> None:
    headers = {"Idempotency-Key": "same-key"}
    responses = await asyncio.gather(
        *(http.post("/requests.json", data=valid_form(), headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    ids = {r.json()[0]["service_request_id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    assert [r.id for r in store.list_requests()] == [int(ids.pop())]


async def test_key_in_flight_is_409(http: httpx.AsyncClient, store: SandboxStore) -> None:
    slow = SlowForm(valid_form())
    headers = {"Idempotency-Key": "k-slow", "Content-Type": "application/x-www-form-urlencoded"}
    first = asyncio.create_task(http.post("/requests.json", content=slow, headers=headers))
    await wait_until(lambda: keys_in_flight(http))
    duplicate = await http.post("/requests.json", data=valid_form(), headers=headers)
    assert_open311_error(duplicate, 409)
    slow.release()
    assert (await first).status_code == 201
    assert await create(http, key="k-slow") == (await first).json()[0]["service_request_id"]
    assert len(store.list_requests()) == 1


async def test_updates_feed_order_and_window(http: httpx.AsyncClient) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    a, b = await create(http), await create(http)
    assert (await officer(http, a, status="forwarded")).status_code == 201
    assert (await officer(http, b, status="in_progress", note="Petugas menuju lokasi")).is_success
    photo = "https://crm.example/bukti/1.jpg"
    assert (await officer(http, a, status="resolved", media_url=photo)).status_code == 201
    feed = (
        await http.get("/servicerequestupdates.json", params={"start_date": start.isoformat()})
    ).json()
    assert [(u["service_request_id"], u["external_status_code"], u["status"]) for u in feed] == [
        (a, "forwarded", "open"),
        (b, "in_progress", "open"),
        (a, "resolved", "closed"),
    ]
    assert [int(u["update_id"]) for u in feed] == sorted(int(u["update_id"]) for u in feed)
    times = [assert_utc_timestamp(u["updated_datetime"]) for u in feed]
    assert times == sorted(times)
    assert feed[1]["description"] == "Petugas menuju lokasi" and feed[2]["media_url"] == photo
    assert all(u["description"] for u in feed)
    later = await http.get(
        "/servicerequestupdates.json", params={"start_date": times[1].isoformat()}
    )
    assert [u["update_id"] for u in later.json()] == [u["update_id"] for u in feed[1:]]
    window = {"start_date": start.isoformat(), "end_date": times[0].isoformat()}
    assert len((await http.get("/servicerequestupdates.json", params=window)).json()) == 1
    after = {"start_date": (times[2] + timedelta(seconds=1)).isoformat()}
    assert (await http.get("/servicerequestupdates.json", params=after)).json() == []


async def test_officer_status_change_is_visible(http: httpx.AsyncClient) -> None:
    request_id = await create(http)
    assert_open311_error(await officer(http, request_id, status="rejected"), 400)  # no reason
    assert_open311_error(await officer(http, request_id, status="selesai"), 400)
    assert_open311_error(await officer(http, "2499999", status="forwarded"), 404)
    reason = "Lokasi di luar wilayah DKI Jakarta"
    assert (await officer(http, request_id, status="rejected", note=reason)).status_code == 201
    (item,) = (await http.get(f"/requests/{request_id}.json")).json()
    assert (item["status"], item["external_status_code"]) == ("closed", "rejected")
    assert item["status_notes"] == reason
    assert item["updated_datetime"] >= item["requested_datetime"]


async def test_rating(http: httpx.AsyncClient, store: SandboxStore) -> None:
    request_id = await create(http)
    response = await http.post(f"/requests/{request_id}/rating.json", data={"rating": "4"})
    assert response.status_code == 200
    assert store.get_request(int(request_id)).rating == 4  # type: ignore[union-attr]
    for bad in ("0", "6", "empat", ""):
        rated = await http.post(f"/requests/{request_id}/rating.json", data={"rating": bad})
        assert_open311_error(rated, 400)
    assert_open311_error(
        await http.post("/requests/2499999/rating.json", data={"rating": "5"}), 404
    )
    assert store.get_request(int(request_id)).rating == 4  # type: ignore[union-attr]


async def test_personal_fields_are_counted_never_stored(
    http: httpx.AsyncClient, store: SandboxStore
) -> None:
    await create(http)
    assert store.personal_fields_received == 0
    await create(http, email="budi.santoso@example.com")
    await create(http, **{"attribute[phone]": "081234567890"})
    assert store.personal_fields_received == 2
    assert (await http.get("/sandbox/stats.json")).json()["personal_fields_received"] == 2
    raw = b"".join(path.read_bytes() for path in store.path.parent.glob("crm.sqlite3*"))
    assert b"budi.santoso" not in raw and b"081234567890" not in raw
