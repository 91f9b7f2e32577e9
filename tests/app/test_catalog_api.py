"""The product and batch endpoints."""

import pytest

from tests.conftest import gtin13

STABILO = "4006381333931"  # printed on a STABILO pen; the classic GS1 example


def test_merchant_registers_its_product_as_gtin14(client, make):
    """Is a GTIN-13 stored and returned in its 14-digit form?"""
    merchant = make.merchant()
    resp = client.post(
        "/api/v1/products",
        json={"gtin": STABILO, "name": "荧光笔", "category": "other", "merchant_id": merchant},
        headers=make.auth("merchant", merchant),
    )
    assert resp.status_code == 201
    assert resp.get_json()["gtin"] == "0" + STABILO


@pytest.mark.parametrize("gtin", ["4006381333932", "400638133393", "40063813339a1", "0"])
def test_bad_gtin_is_rejected(client, make, gtin):
    """Are GTINs with a wrong check digit, length or character refused, naming the field?"""
    merchant = make.merchant()
    resp = client.post(
        "/api/v1/products",
        json={"gtin": gtin, "name": "x", "category": "food", "merchant_id": merchant},
        headers=make.auth("admin"),
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "gtin"


def test_merchant_cannot_register_products_for_another_merchant(client, make):
    """May merchant A register a product under merchant B?"""
    a, b = make.merchant(), make.merchant()
    resp = client.post(
        "/api/v1/products",
        json={"gtin": gtin13(5), "name": "x", "category": "food", "merchant_id": b},
        headers=make.auth("merchant", a),
    )
    assert resp.status_code == 403


def batch_body(product_id, **kw):
    return {
        "product_id": product_id,
        "lot": "2026-11A",
        "produced_on": "2026-11-01",
        "expires_on": "2027-05-01",
        "origin": {"name": "溧阳市", "lat": 31.42, "lon": 119.48},
        "quantity": 500,
        "certificates": [
            {
                "issuer": "常州市质检所",
                "number": "CZ-1",
                "result": "passed",
                "issued_on": "2026-11-03",
                "report_sha256": "ab" * 32,
            }
        ],
    } | kw


def test_batch_with_certificate_round_trips(client, make):
    """Does a batch keep its dates, origin point and inspection certificate?"""
    product = make.product()
    resp = client.post("/api/v1/batches", json=batch_body(product), headers=make.auth("admin"))
    assert resp.status_code == 201, resp.get_json()
    got = client.get(f"/api/v1/batches/{resp.get_json()['id']}").get_json()
    assert got["lot"] == "2026-11A" and got["expires_on"] == "2027-05-01"
    assert got["origin"] == {"name": "溧阳市", "lat": 31.42, "lon": 119.48}
    assert got["certificates"][0]["report_sha256"] == "ab" * 32
    assert got["status"] == "active" and got["issued_count"] == 0


def test_expiry_before_production_is_rejected(client, make):
    """Can a batch expire before it was produced?"""
    resp = client.post(
        "/api/v1/batches",
        json=batch_body(make.product(), expires_on="2026-10-01"),
        headers=make.auth("admin"),
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "expires_on"


@pytest.mark.parametrize("lot", ["LOT#1", "批号1", "A" * 21, "LOT 1"])
def test_lot_outside_gs1_character_set_is_rejected(client, make, lot):
    """Are lots with characters outside GS1 AI 10's set, or too long, refused?"""
    resp = client.post(
        "/api/v1/batches", json=batch_body(make.product(), lot=lot), headers=make.auth("admin")
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "lot"


@pytest.mark.parametrize("date_value", ["2026/11/01", "01-11-2026", 20261101, "2026-02-30"])
def test_dates_must_be_iso(client, make, date_value):
    """Is a date in any form but YYYY-MM-DD refused?"""
    resp = client.post(
        "/api/v1/batches",
        json=batch_body(make.product(), produced_on=date_value),
        headers=make.auth("admin"),
    )
    assert resp.status_code == 422


def test_batch_of_unknown_product_is_not_found(client, make):
    """Does an unknown product id give a 404 naming the field?"""
    resp = client.post("/api/v1/batches", json=batch_body(424242), headers=make.auth("admin"))
    assert resp.status_code == 404
    assert resp.get_json()["error"]["details"]["field"] == "product_id"


def test_merchant_cannot_register_batches_of_another_merchants_product(client, make):
    """May merchant A add a batch to merchant B's product?"""
    a = make.merchant()
    resp = client.post(
        "/api/v1/batches", json=batch_body(make.product()), headers=make.auth("merchant", a)
    )
    assert resp.status_code == 403


def test_bad_report_digest_is_rejected(client, make):
    """Is a certificate with a digest that is not SHA-256 hex refused?"""
    body = batch_body(make.product())
    body["certificates"][0]["report_sha256"] = "not-a-digest"
    resp = client.post("/api/v1/batches", json=body, headers=make.auth("admin"))
    assert resp.status_code == 422
