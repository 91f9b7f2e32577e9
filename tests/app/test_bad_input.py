"""Bad input of every kind is a 4xx in the one error shape, never a 500: integers out of the
databases' range or of a parameter's bounds in queries and bodies, times UTC cannot hold,
header breaks in redirect targets (issue 18, item 7)."""

import pytest
import sqlalchemy as sa

from tests.app.conftest import post_sign_in
from tests.app.test_errors import assert_error
from tests.conftest import gtin13

BIG = [str(2**31), str(2**63), "9" * 30, "²", "-1", "1.5"]


@pytest.mark.parametrize(
    "name,value",
    [("offset", v) for v in BIG] + [("limit", v) for v in [*BIG, "0", "100001"]],
)
def test_a_label_sheet_page_out_of_bounds_is_422_naming_it(client, make, name, value):
    """``labels.pdf?offset=2^63`` was a 500 (SQLite cannot hold it; PostgreSQL refuses it);
    ``limit`` is 1 to MAX_LABELS_PER_SHEET (100,000)."""
    batch = make.batch()
    resp = client.get(
        f"/api/v1/batches/{batch}/labels.pdf?{name}={value}", headers=make.auth("admin")
    )
    assert_error(resp, 422, "validation_failed")
    assert resp.get_json()["error"]["details"]["field"] == name


@pytest.mark.parametrize("value", [*BIG, "0"])
@pytest.mark.parametrize("name", ["limit", "party_id", "before"])
def test_an_anomaly_filter_number_out_of_bounds_is_422_naming_it(client, make, name, value):
    resp = client.get(f"/api/v1/anomalies?{name}={value}", headers=make.auth("admin"))
    assert_error(resp, 422, "validation_failed")
    assert resp.get_json()["error"]["details"]["field"] == name


def test_an_anomaly_page_above_the_maximum_is_refused_not_cut(client, make):
    """A ``limit`` above the maximum page (500) is refused, as the contract states, rather
    than quietly answered with fewer."""
    resp = client.get("/api/v1/anomalies?limit=501", headers=make.auth("admin"))
    assert_error(resp, 422, "validation_failed")
    assert client.get("/api/v1/anomalies?limit=500", headers=make.auth("admin")).status_code == 200


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00", "2026-11-22T08:00:00"]
)
def test_a_time_utc_cannot_hold_is_422(client, make, value):
    """A time that overflows when turned into UTC was a 500 (OverflowError)."""
    resp = client.get(
        "/api/v1/anomalies", query_string={"since": value}, headers=make.auth("admin")
    )
    assert_error(resp, 422, "validation_failed")
    assert resp.get_json()["error"]["details"]["field"] == "since"


@pytest.mark.parametrize("value", BIG[:4])
def test_a_trace_page_out_of_bounds_is_422(client, make, value):
    resp = client.get(
        f"/api/v1/batches/{make.batch()}/trace?limit={value}", headers=make.auth("admin")
    )
    assert_error(resp, 422, "validation_failed")


def test_a_rejected_events_filter_longer_than_its_column_is_422(client, make):
    resp = client.get(
        "/api/v1/rejected-events", query_string={"device_id": "d" * 65}, headers=make.auth("admin")
    )
    assert_error(resp, 422, "validation_failed")


@pytest.mark.parametrize("number", [2**31, 2**63, 10**30, 0, -1])
@pytest.mark.parametrize(
    "path,field,body",
    [
        (
            "/api/v1/products",
            "merchant_id",
            {"gtin": gtin13(99), "name": "x", "category": "food"},
        ),
        (
            "/api/v1/couriers",
            "company_id",
            {"name": "张三", "id_number": "x", "phone": "1", "region_code": "320411"},
        ),
        ("/api/v1/devices", "owner_id", {"kind": "shelf_scanner", "owner_type": "merchant"}),
        ("/api/v1/batches/{batch}/codes", "count", {}),
    ],
)
def test_a_body_integer_out_of_bounds_is_422_naming_it(client, make, path, field, body, number):
    """Ids in bodies are row ids (1 to 2**31 - 1); ``count`` is at least 1 and at most the
    API's maximum. Above 2**31 - 1 was a 500 on PostgreSQL, above 2**63 on both."""
    if field == "count" and number == 2**31:
        number = 1_000_001  # above the API's maximum
    resp = client.post(
        path.format(batch=make.batch()), json={**body, field: number}, headers=make.auth("admin")
    )
    assert_error(resp, 422, "validation_failed")
    assert resp.get_json()["error"]["details"]["field"] == field


def test_a_batch_with_a_product_id_out_of_range_is_422(client, make):
    body = {
        "product_id": 2**63,
        "lot": "L1",
        "produced_on": "2026-10-01",
        "expires_on": "2027-10-01",
        "origin": {"name": "常州", "lat": 31.8, "lon": 119.9},
        "quantity": 10,
    }
    resp = client.post("/api/v1/batches", json=body, headers=make.auth("admin"))
    assert_error(resp, 422, "validation_failed")
    assert resp.get_json()["error"]["details"]["field"] == "product_id"


# -- the workspace and the consumer's forms ----------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/workspace/anomalies\r\nSet-Cookie: x=1",
        "/workspace/%0d%0a",  # encoded: harmless, but no decoded break gets through either
        "/workspace\\\\evil.example",
        "/workspace/\x00",
        "/workspaces-elsewhere",
        "https://evil.example/workspace",
        "/\\evil.example",
    ],
)
def test_sign_in_redirects_only_to_a_clean_path_of_the_workspace(client, make, target):
    """A ``next=`` with CR/LF reached the Location header (a 500: werkzeug refuses it); a
    backslash or a look-alike prefix could leave the site. Such targets go home instead."""
    username, password = make.user("regulator")
    resp = post_sign_in(
        client,
        {"username": username, "password": password},
        path="/workspace/sign-in",
        query_string={"next": target},
    )
    assert resp.status_code in (302, 422)
    if resp.status_code == 302:
        location = resp.headers["Location"]
        assert "\r" not in location and "\n" not in location and "\\" not in location
        assert location.endswith("/workspace/") or location == target == "/workspace/%0d%0a"


def test_sign_in_keeps_a_clean_workspace_target(client, make):
    username, password = make.user("regulator")
    resp = post_sign_in(
        client,
        {"username": username, "password": password},
        path="/workspace/sign-in?next=/workspace/anomalies%3Fstatus%3Dopen",
    )
    assert resp.headers["Location"] == "/workspace/anomalies?status=open"


@pytest.mark.parametrize(
    "query", ["before=²", f"before={2**63}", "since=0001-01-01T00:00:00%2B00:01"]
)
def test_the_anomaly_queue_refuses_bad_numbers_and_times(client, make, query):
    from tests.app.test_workspace import HTML, sign_in

    sign_in(client, *make.user("regulator", jurisdiction="3204"))
    resp = client.get(f"/workspace/anomalies?{query}", headers=HTML)
    assert resp.status_code == 422


def test_the_map_takes_a_superscript_day_count_as_the_default(client, make):
    """``days=²``: ``str.isdigit`` took it and ``int`` refused it (a 500)."""
    from tests.app.test_workspace import HTML, sign_in

    sign_in(client, *make.user("regulator", jurisdiction="3204"))
    assert client.get("/workspace/map?days=²", headers=HTML).status_code == 200


@pytest.mark.committed("postgresql")  # the scan page reads through its own connection there
def test_a_review_form_with_a_superscript_rating_is_refused(client, world, session):
    from app.feedback.models import Review
    from tests.app.test_consumer_pages import page, token_of

    serial = world["serials"][0]
    token = token_of(page(client, serial).get_data(as_text=True))
    resp = client.post(
        f"/t/{serial}/review",
        data={"rating": "²", "csrf_token": token},
        headers={"Accept": "text/html"},
    )
    assert 400 <= resp.status_code < 500
    assert session.scalar(sa.select(sa.func.count(Review.id))) == 0


DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's JSON parser goes


def test_json_nested_too_deeply_is_422_not_500(client, make, world):
    """GeoJSON in a query and in a body, nested deeper than the parser goes: a 4xx naming it,
    not a crash (both were 500s)."""
    admin = make.auth("admin")
    resp = client.get(f"/api/v1/anomalies?within={DEEP}", headers=admin)
    assert_error(resp, 422, "validation_failed")
    assert "nested too deeply" in resp.get_json()["error"]["message"]
    area = f"/api/v1/couriers/{world['courier']}/service-area"
    body = '{"type": "Polygon", "coordinates": ' + DEEP + "}"
    resp = client.put(area, data=body, content_type="application/json", headers=admin)
    assert_error(resp, 422, "validation_failed")


def test_a_number_no_float_holds_is_refused_in_geojson(client, make, world):
    """1e400 is valid JSON text but no float holds it (it would come back out as Infinity)."""
    area = f"/api/v1/couriers/{world['courier']}/service-area"
    body = '{"type": "Polygon", "coordinates": [[[1e400, 1], [2, 2], [3, 1], [1e400, 1]]]}'
    resp = client.put(area, data=body, content_type="application/json", headers=make.auth("admin"))
    assert_error(resp, 422, "validation_failed")
    assert "out of range" in resp.get_json()["error"]["message"]
