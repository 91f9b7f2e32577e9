"""Bad requests of every kind get one JSON error shape, a 4xx, and write nothing."""

import pytest
import sqlalchemy as sa


def merchant_body():
    return {"name": "x", "uscc": "914403001922038216", "kind": "shop", "region_code": "440300"}


def assert_error(resp, status, code):
    assert resp.status_code == status
    body = resp.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in resp.get_data(as_text=True)


def test_missing_token_is_401_with_a_challenge(client):
    """Does a write without a token get 401 and a WWW-Authenticate header?"""
    resp = client.post("/api/v1/merchants", json=merchant_body())
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer trc_notarealtoken", "Basic dXNlcjpwYXNz", "Bearer "])
def test_wrong_token_is_401(client, app, header):
    """Are unknown tokens and other auth schemes refused?"""
    resp = client.post("/api/v1/merchants", json=merchant_body(), headers={"Authorization": header})
    assert_error(resp, 401, "unauthorized")


def test_wrong_content_type_is_415(client, make):
    """Is a form-encoded body refused with a hint to send JSON?"""
    resp = client.post("/api/v1/merchants", data=merchant_body(), headers=make.auth("admin"))
    assert_error(resp, 415, "unsupported_media_type")


def test_malformed_json_is_400(client, make):
    """Is a body that is not JSON refused as such?"""
    resp = client.post(
        "/api/v1/merchants",
        data='{"name": ',
        content_type="application/json",
        headers=make.auth("admin"),
    )
    assert_error(resp, 400, "invalid_json")


def test_unknown_fields_are_refused(client, make):
    """Is a body with a field the API does not know refused, naming it?"""
    resp = client.post(
        "/api/v1/merchants", json=merchant_body() | {"is_admin": True}, headers=make.auth("admin")
    )
    assert_error(resp, 422, "validation_failed")
    assert resp.get_json()["error"]["details"]["fields"][0]["field"] == "is_admin"


def test_oversize_body_is_413(client, make, session):
    """Is a body above the configured maximum refused before it is parsed?"""
    huge = merchant_body() | {"name": "x" * (2 * 1024 * 1024)}
    resp = client.post("/api/v1/merchants", json=huge, headers=make.auth("admin"))
    assert_error(resp, 413, "request_entity_too_large")
    assert session.scalar(sa.text("SELECT count(*) FROM merchants")) == 0


def test_json_array_body_is_refused(client, make):
    """Is a JSON value of the wrong shape (an array) refused with 422?"""
    resp = client.post("/api/v1/merchants", json=[merchant_body()], headers=make.auth("admin"))
    assert_error(resp, 422, "validation_failed")


def test_unknown_route_is_json_404(client):
    """Does an unknown URL answer in the same error shape?"""
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405(client):
    """Does an unsupported method answer in the same error shape, with the methods the URL
    does allow (RFC 9110: a 405 carries Allow)?"""
    resp = client.delete("/api/v1/merchants")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"].split(", ")


def test_unexpected_failure_is_a_bare_500(app, client, make, monkeypatch):
    """When something unforeseen breaks, is a 500 returned without internals, and nothing kept?"""
    from app.parties import operations

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(operations, "register_merchant", boom)
    resp = client.post("/api/v1/merchants", json=merchant_body(), headers=make.auth("admin"))
    assert_error(resp, 500, "internal_error")
    assert "secret internal detail" not in resp.get_data(as_text=True)


def test_security_headers_are_set(client):
    """Do answers carry nosniff and frame-deny headers?"""
    resp = client.get("/api/v1/openapi.json")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("number", ["0", str(2**31), str(2**63), "99999999999999999999999"])
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/merchants/{}"),
        ("GET", "/api/v1/couriers/{}"),
        ("GET", "/api/v1/batches/{}/trace"),
        ("GET", "/api/v1/batches/{}/labels.pdf"),
        ("GET", "/api/v1/anomalies/{}"),
        ("POST", "/api/v1/appeals/{}/decision"),
        ("GET", "/api/v1/credit/merchant/{}"),
    ],
)
def test_an_id_out_of_the_databases_range_is_404_not_500(client, make, method, path, number):
    """A path id the integer key cannot hold (or 0) is no such resource, on both databases."""
    resp = client.open(path.format(number), method=method, headers=make.auth("admin"), json={})
    assert_error(resp, 404, "not_found")


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/merchants", {**merchant_body(), "name": "商\x00店"}),
        ("/api/v1/merchants", {**merchant_body(), "name": "bell\x07"}),
    ],
)
def test_control_characters_in_a_body_are_422(client, make, session, path, body):
    """Is text with NUL (which PostgreSQL refuses) or another control character refused
    with the field named, and nothing written?"""
    resp = client.post(path, json=body, headers=make.auth("admin"))
    assert_error(resp, 422, "validation_failed")
    assert session.scalar(sa.text("SELECT count(*) FROM merchants")) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/anomalies?type=a%00b",
        "/workspace/search?q=%00",
        "/api/v1/rejected-events?reason=%00",
    ],
)
def test_a_nul_in_the_query_is_422(client, make, path):
    resp = client.get(path, headers={**make.auth("admin"), "Accept": "application/json"})
    assert_error(resp, 422, "validation_failed")
