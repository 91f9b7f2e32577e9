"""The party endpoints: merchants, logistics companies, couriers."""

import pytest

from tests.conftest import resident_id, uscc

HUAWEI = "914403001922038216"  # as printed on Huawei Technologies Co., Ltd.'s licence


def merchant_body(**kw):
    return {
        "name": "天目湖茶业",
        "uscc": HUAWEI,
        "kind": "producer",
        "region_code": "320481",
        "lat": 31.43,
        "lon": 119.48,
    } | kw


def test_regulator_registers_a_merchant(client, make):
    """Can a regulator register a merchant, and read it back with its point?"""
    resp = client.post("/api/v1/merchants", json=merchant_body(), headers=make.auth("regulator"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["uscc"] == HUAWEI and body["kind"] == "producer"
    got = client.get(f"/api/v1/merchants/{body['id']}").get_json()
    assert got["location"] == pytest.approx({"lat": 31.43, "lon": 119.48})


def test_lowercase_uscc_is_normalised(client, make):
    """Is a USCC typed in lowercase stored in its canonical uppercase form?"""
    resp = client.post(
        "/api/v1/merchants",
        json=merchant_body(uscc="91330100799655058b"),
        headers=make.auth("admin"),
    )
    assert resp.get_json()["uscc"] == "91330100799655058B"


def test_bad_uscc_check_character_is_rejected_with_the_expected_one(client, make):
    """Does a USCC with a wrong check character get a 422 naming the field and the fix?"""
    resp = client.post(
        "/api/v1/merchants",
        json=merchant_body(uscc="914403001922038217"),
        headers=make.auth("admin"),
    )
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["details"]["field"] == "uscc"
    assert "6" in error["message"]


def test_duplicate_uscc_is_a_conflict(client, make):
    """Can the same company be registered twice?"""
    headers = make.auth("admin")
    assert (
        client.post("/api/v1/merchants", json=merchant_body(), headers=headers).status_code == 201
    )
    resp = client.post("/api/v1/merchants", json=merchant_body(), headers=headers)
    assert resp.status_code == 409 and resp.get_json()["error"]["details"]["field"] == "uscc"


@pytest.mark.parametrize("region", ["000000", "990101", "32041", "32041a"])
def test_bad_region_code_is_rejected(client, make, region):
    """Is a region code that is not a GB/T 2260 code refused?"""
    resp = client.post(
        "/api/v1/merchants", json=merchant_body(region_code=region), headers=make.auth("admin")
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "region_code"


@pytest.mark.parametrize(
    "field,value", [("lat", 91), ("lon", -181), ("kind", "factory"), ("name", ""), ("lat", "31.4")]
)
def test_out_of_range_or_mistyped_fields_are_named(client, make, field, value):
    """Does each malformed field come back named in the error?"""
    resp = client.post(
        "/api/v1/merchants", json=merchant_body(**{field: value}), headers=make.auth("admin")
    )
    assert resp.status_code == 422
    fields = [f["field"] for f in resp.get_json()["error"]["details"]["fields"]]
    assert field in fields


def test_merchant_token_cannot_register_merchants(client, make):
    """May a merchant create other merchants?"""
    resp = client.post(
        "/api/v1/merchants", json=merchant_body(), headers=make.auth("merchant", make.merchant())
    )
    assert resp.status_code == 403


def test_logistics_company_registration(client, make):
    """Can an admin register a logistics company?"""
    resp = client.post(
        "/api/v1/logistics-companies",
        json={"name": "顺丰速运", "uscc": uscc(77), "region_code": "440300"},
        headers=make.auth("admin"),
    )
    assert resp.status_code == 201 and resp.get_json()["id"]


def courier_body(company_id, **kw):
    return {
        "name": "王小明",
        "id_number": resident_id(1),
        "phone": "13800138000",
        "company_id": company_id,
        "region_code": "320411",
    } | kw


def test_courier_personal_data_is_never_returned_in_full(client, make):
    """Are the courier's ID number and phone stored and shown only masked?"""
    company = make.company()
    resp = client.post(
        "/api/v1/couriers", json=courier_body(company), headers=make.auth("logistics", company)
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["id_number"] == resident_id(1)[:6] + "********" + resident_id(1)[-4:]
    assert body["phone"] == "138****8000"
    assert resident_id(1) not in resp.get_data(as_text=True)


def test_courier_id_number_is_stored_only_as_a_keyed_hash(app, client, make, session):
    """Does the database hold neither the ID number nor the phone in clear?"""
    import sqlalchemy as sa

    company = make.company()
    client.post("/api/v1/couriers", json=courier_body(company), headers=make.auth("admin"))
    row = session.execute(sa.text("SELECT * FROM couriers")).mappings().one()
    dump = " ".join(str(v) for v in row.values())
    assert resident_id(1) not in dump and "13800138000" not in dump


def test_same_id_number_cannot_register_twice(client, make):
    """Is a real-name identity bound to one courier record only?"""
    company = make.company()
    headers = make.auth("admin")
    client.post("/api/v1/couriers", json=courier_body(company), headers=headers)
    resp = client.post(
        "/api/v1/couriers", json=courier_body(company, phone="13900139000"), headers=headers
    )
    assert resp.status_code == 409


def test_bad_id_number_check_character_is_rejected(client, make):
    """Is a resident ID number with a wrong check character refused?"""
    good = resident_id(1)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    resp = client.post(
        "/api/v1/couriers",
        json=courier_body(make.company(), id_number=bad),
        headers=make.auth("admin"),
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "id_number"


def test_company_cannot_register_couriers_for_another_company(client, make):
    """May a logistics company enrol couriers under a competitor?"""
    mine, theirs = make.company(), make.company()
    resp = client.post(
        "/api/v1/couriers", json=courier_body(theirs), headers=make.auth("logistics", mine)
    )
    assert resp.status_code == 403


def test_courier_of_unknown_company_is_not_found(client, make):
    """Does an unknown company id give a 404 naming company_id?"""
    resp = client.post("/api/v1/couriers", json=courier_body(9999), headers=make.auth("admin"))
    assert resp.status_code == 404
    assert resp.get_json()["error"]["details"]["field"] == "company_id"


def test_courier_record_is_hidden_from_the_public_and_other_companies(client, make):
    """Who may read a courier's record?"""
    company, other = make.company(), make.company()
    created = client.post(
        "/api/v1/couriers", json=courier_body(company), headers=make.auth("admin")
    ).get_json()
    url = f"/api/v1/couriers/{created['id']}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=make.auth("logistics", other)).status_code == 403
    assert client.get(url, headers=make.auth("logistics", company)).status_code == 200
