"""Anomalies found from ingested events, written into credit records, and what follows."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.anomalies import decisions
from app.credit import operations as credit_ops
from tests.app.test_events_api import pack
from tracecore.access import Principal, Role

REGULATOR = Principal(Role.REGULATOR)


def in_session(app, fn):
    """Run ``fn(session)`` in a session of the app's and commit (the test's transaction)."""
    with app.extensions["trace"].sessionmaker() as s:
        result = fn(s)
        s.commit()
        return result


def confirmed_at(app, anomaly_id: int, when: datetime, decision: str = "confirm"):
    """A regulator's decision on the anomaly as if made at ``when`` (time driven through
    the use case's ``now``): made long enough ago, its response period is over."""
    cfg = app.extensions["trace"].config
    return in_session(
        app,
        lambda s: (
            decisions.decide(
                s, REGULATOR, anomaly_id, decision, "核实无误", cfg.response_period, now=when
            ).id
        ),
    )


def sanctioned(app, party_type: str, party_id: int, *, n: int = 1, days_ago: int = 30):
    """``n`` sanctions imposed ``days_ago`` days ago: final now, their period long over."""
    cfg = app.extensions["trace"].config
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return in_session(
        app,
        lambda s: [
            credit_ops.add_record(
                s,
                REGULATOR,
                party_type,
                party_id,
                "sanction",
                "严重失信",
                cfg.policy,
                cfg.response_period,
                now=when,
            ).id
            for _ in range(n)
        ],
    )


def anomalies(client, make, **filters):
    resp = client.get("/api/v1/anomalies", query_string=filters, headers=make.auth("regulator"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def types(items):
    return sorted(a["type"] for a in items)


def test_a_second_sale_is_a_duplicate_sale_against_the_second_merchant(client, make, world):
    """Does a code sold twice raise duplicate_sale against the merchant of the second sale?"""
    pos, serial = world["pos"], world["serials"][0]
    pos.post(pos.event("sold", 0, code=serial, data={"order_id": "A"}))
    pos.post(pos.event("sold", 30, code=serial, data={"order_id": "B"}))
    (found,) = anomalies(client, make, type="duplicate_sale")
    assert found["party"] == {"type": "merchant", "id": world["merchant"], "role": "responsible"}
    assert found["subject"] == {"code": serial} and found["severity"] == "serious"
    assert found["status"] == "open"


def test_signed_with_no_pickup_is_an_empty_parcel_against_merchant_and_courier(client, make, world):
    """Is a parcel signed without a pickup scan flagged for the merchant and the courier?"""
    hh, serial = world["handheld"], world["serials"][0]
    pack(world, "SF5000000001", [serial], 0)
    hh.post(hh.event("signed", 60, waybill="SF5000000001", data={"signer": "self"}))
    found = anomalies(client, make, type="empty_parcel")
    assert sorted((a["party"]["type"], a["party"]["id"]) for a in found) == [
        ("courier", world["courier"]),
        ("merchant", world["merchant"]),
    ]
    assert "lifecycle_violation" in types(anomalies(client, make))


def test_remote_sign_and_impossible_travel(client, make, world):
    """Is a signature 30 km from the consignee flagged, and a jump of 1,000 km in minutes?"""
    hh, serial = world["handheld"], world["serials"][1]
    pack(world, "SF6000000001", [serial], 0)
    hh.post(hh.event("picked_up", 10, waybill="SF6000000001"))
    hh.post(hh.event("in_transit", 20, waybill="SF6000000001", lat=23.05, lon=112.47))
    hh.post(hh.event("out_for_delivery", 600, waybill="SF6000000001"))
    hh.post(
        hh.event(
            "signed", 620, waybill="SF6000000001", data={"signer": "self"}, lat=32.05, lon=119.95
        )
    )
    found = types(anomalies(client, make))
    assert "remote_sign" in found and "impossible_travel" in found


def test_a_scan_of_a_never_issued_code_is_a_counterfeit_finding(client, make, world):
    """Does scanning an unknown code raise unknown_code against the scanning device's owner?"""
    shelf = world["shelf"]
    shelf.post(shelf.event("shelved", code="ZZZZZZZZZZZZZZZZ"))
    (found,) = anomalies(client, make, type="unknown_code")
    assert found["party"] == {"type": "merchant", "id": world["merchant"], "role": "responsible"}


def test_selling_a_recalled_or_expired_batch(client, make, world, session):
    """After a recall, does a sale raise recalled_sale; does a sale after expiry raise
    expired_sale?"""
    resp = client.post(
        f"/api/v1/batches/{world['batch']}/recall",
        json={"reason": "污染"},
        headers=make.auth("regulator"),
    )
    assert resp.status_code == 200 and resp.json["status"] == "recalled"
    session.execute(  # recalled before the devices' day
        sa.text("UPDATE batches SET recalled_at = :t WHERE id = :b"),
        {"t": datetime(2026, 11, 20, 8, 0, tzinfo=UTC), "b": world["batch"]},
    )
    session.commit()
    pos = world["pos"]
    pos.post(pos.event("sold", 30, code=world["serials"][0], data={"order_id": "R"}))
    assert types(anomalies(client, make, type="recalled_sale")) == ["recalled_sale"]

    expired_batch = make.batch(
        make.product(world["merchant"]), produced_on=date(2026, 1, 1), expires_on=date(2026, 11, 1)
    )
    (old,) = make.codes(expired_batch, 1)
    pos.post(pos.event("sold", 0, code=old, data={"order_id": "E"}))
    (found,) = anomalies(client, make, type="expired_sale")
    assert found["subject"] == {"code": old}


def test_out_of_area_uses_the_courier_service_area(client, make, world):
    """With a service area set, is a courier's scan outside it flagged, and one inside not?"""
    area = {
        "type": "Polygon",
        "coordinates": [
            [[119.8, 31.6], [120.1, 31.6], [120.1, 31.9], [119.8, 31.9], [119.8, 31.6]]
        ],
    }
    resp = client.put(
        f"/api/v1/couriers/{world['courier']}/service-area",
        json=area,
        headers=make.auth("logistics", world["company"]),
    )
    assert resp.status_code == 200, resp.get_json()
    hh, serial = world["handheld"], world["serials"][2]
    pack(world, "SF7000000001", [serial], 0)
    hh.post(hh.event("picked_up", 10, waybill="SF7000000001"))  # inside
    hh.post(hh.event("in_transit", 200, waybill="SF7000000001", lat=32.06, lon=118.80))
    (found,) = anomalies(client, make, type="out_of_area")
    assert found["party"] == {"type": "courier", "id": world["courier"], "role": "responsible"}


@pytest.mark.parametrize(
    "shape",
    [
        {"type": "Point", "coordinates": [1, 2]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
        {"type": "Polygon", "coordinates": "x"},
    ],
)
def test_bad_service_areas_are_refused(client, make, world, shape):
    """Is anything but a valid polygon refused with a 422?"""
    resp = client.put(
        f"/api/v1/couriers/{world['courier']}/service-area", json=shape, headers=make.auth("admin")
    )
    assert resp.status_code == 422


def test_decisions_change_credit_and_leave_an_audit_trail(client, make, world, session):
    """Does a serious finding stay out of the public standing (a risk signal the merchant
    sees), does confirming it tell the merchant until when it may respond without changing
    any public answer yet, and is the decision audited and final?"""
    pos, serial = world["pos"], world["serials"][0]
    pos.post(pos.event("sold", 0, code=serial, data={"order_id": "A"}))
    pos.post(pos.event("sold", 30, code=serial, data={"order_id": "B"}))
    (dup,) = anomalies(client, make, type="duplicate_sale")
    url = f"/api/v1/credit/merchant/{world['merchant']}"
    before = client.get(url).json
    assert (before["score"], before["list"], before["records"]) == (800, None, [])
    own = client.get(url, headers=make.auth("merchant", world["merchant"])).json
    assert own["risk"] == {
        "open_findings": 1,
        "points": -120,
        "by_severity": {"minor": 0, "major": 0, "serious": 1},
    }
    assert own["score"] == 800 and own["pending_decisions"] == []
    regulator = make.auth("regulator")
    bad = client.post(
        f"/api/v1/anomalies/{dup['id']}/decision",
        json={"decision": "confirm", "reason": ""},
        headers=regulator,
    )
    assert bad.status_code == 422
    resp = client.post(
        f"/api/v1/anomalies/{dup['id']}/decision",
        json={"decision": "confirm", "reason": "两笔订单均已核实"},
        headers=regulator,
    )
    assert resp.status_code == 200 and resp.json["status"] == "confirmed"
    assert resp.json["final_at"] > resp.json["decided_at"]
    after = client.get(url).json
    assert (after["score"], after["list"]) == (800, None)
    assert client.get("/api/v1/credit/lists/black").json["items"] == []
    assert client.get("/api/v1/credit/notices").json["items"] == []
    told = client.get(url, headers=make.auth("merchant", world["merchant"])).json
    (pending,) = told["pending_decisions"]
    assert pending["anomaly_id"] == dup["id"] and pending["final_at"] == resp.json["final_at"]
    assert told["outlook"]["list"] == "black" and told["risk"]["open_findings"] == 0
    again = client.post(
        f"/api/v1/anomalies/{dup['id']}/decision",
        json={"decision": "dismiss", "reason": "x"},
        headers=regulator,
    )
    assert again.status_code == 409
    audit = session.execute(sa.text("SELECT action, reason FROM audit_entries")).all()
    assert ("anomaly.confirm", "两笔订单均已核实") in [tuple(r) for r in audit]


def test_an_upheld_appeal_restores_the_score(client, make, world):
    """Can the named party appeal (once), others not, and does upholding clear the risk
    signal and void the record?"""
    shelf = world["shelf"]
    shelf.post(shelf.event("shelved", code="ZZZZZZZZZZZZZZZZ"))
    (found,) = anomalies(client, make, type="unknown_code")
    merchant = make.auth("merchant", world["merchant"])
    url = f"/api/v1/anomalies/{found['id']}/appeal"
    assert (
        client.post(
            url, json={"statement": "x"}, headers=make.auth("merchant", make.merchant())
        ).status_code
        == 403
    )
    first = client.post(url, json={"statement": "扫描枪误读了外箱条码"}, headers=merchant)
    assert first.status_code == 201
    assert client.post(url, json={"statement": "again"}, headers=merchant).status_code == 409
    account_url = f"/api/v1/credit/merchant/{world['merchant']}"
    assert client.get(account_url, headers=merchant).json["risk"]["open_findings"] == 1
    decided = client.post(
        f"/api/v1/appeals/{first.json['id']}/decision",
        json={"decision": "uphold", "reason": "误读属实"},
        headers=make.auth("regulator"),
    )
    assert decided.status_code == 200 and decided.json["status"] == "upheld"
    account = client.get(account_url, headers=merchant).json
    assert account["score"] == 800 and account["risk"]["open_findings"] == 0
    assert [(r["kind"], r["standing"]) for r in account["records"]] == [
        ("anomaly", "void"),
        ("reversal", "void"),
    ]
    assert anomalies(client, make, type="unknown_code")[0]["status"] == "dismissed"


def test_a_merchant_sees_only_its_own_anomalies(client, make, world):
    """May a merchant list another merchant's anomalies?"""
    shelf = world["shelf"]
    shelf.post(shelf.event("shelved", code="ZZZZZZZZZZZZZZZZ"))
    own = client.get("/api/v1/anomalies", headers=make.auth("merchant", world["merchant"]))
    other = client.get("/api/v1/anomalies", headers=make.auth("merchant", make.merchant()))
    assert len(own.json["items"]) == 1 and other.json["items"] == []
    assert client.get("/api/v1/anomalies").status_code == 401


def test_anomaly_filters_and_pages(client, make, world):
    """Do the type, region, area and paging filters work, and are bad ones refused?"""
    shelf = world["shelf"]
    for i in range(3):
        shelf.post(
            shelf.event("shelved", i, code=f"ZZZZZZZZZZZZZZZ{i}", lat=31.78 + i / 100, lon=119.95)
        )
    page = client.get("/api/v1/anomalies?limit=2", headers=make.auth("regulator")).json
    assert len(page["items"]) == 2 and page["next"]
    rest = client.get(page["next"], headers=make.auth("regulator")).json
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert len(anomalies(client, make, region_code="320411")) == 3
    assert anomalies(client, make, region_code="440300") == []
    box = (
        '{"type":"Polygon","coordinates":[[[119.9,31.77],[120.0,31.77],[120.0,31.795],'
        "[119.9,31.795],[119.9,31.77]]]}"
    )
    assert len(anomalies(client, make, within=box)) == 2
    for bad in ({"within": "{}"}, {"since": "yesterday"}, {"colour": "red"}):
        resp = client.get("/api/v1/anomalies", query_string=bad, headers=make.auth("regulator"))
        assert resp.status_code == 422


def test_red_list_needs_grade_a_and_a_signed_commitment(client, make, world):
    """Does a commended merchant reach the red list only after signing the commitment?"""
    regulator = make.auth("regulator")
    for _ in range(2):
        client.post(
            f"/api/v1/credit/merchant/{world['merchant']}/records",
            json={"kind": "commendation", "reason": "诚信经营示范"},
            headers=regulator,
        )
    assert client.get("/api/v1/credit/lists/red").json["items"] == []
    text = client.get("/api/v1/credit/commitment-text").json
    assert "承诺" in text["text"]
    signed = client.post(
        f"/api/v1/credit/merchant/{world['merchant']}/commitment",
        headers=make.auth("merchant", world["merchant"]),
    )
    assert signed.status_code == 201
    red = client.get("/api/v1/credit/lists/red").json["items"]
    assert [(p["type"], p["id"], p["grade"]) for p in red] == [("merchant", world["merchant"], "A")]
    assert (
        client.post(
            f"/api/v1/credit/merchant/{world['merchant']}/commitment",
            headers=make.auth("merchant", make.merchant()),
        ).status_code
        == 403
    )


def test_public_lists_mask_couriers(client, make, world):
    """Does a black-listed courier appear with a masked name and no personal identifiers?"""
    sanctioned(client.application, "courier", world["courier"], n=3)
    (entry,) = client.get("/api/v1/credit/lists/black").json["items"]
    assert entry["since"]
    assert entry["name"].endswith("*") and "uscc" not in entry
    assert entry["company"]["id"] == world["company"]


def test_the_sweep_finds_stalled_and_late_parcels(client, make, world, runner):
    """Does `trace sweep` flag a parcel idle for days in transit and one past its promise,
    once the handheld holding it has delivered its scans of the days after?"""
    hh, serial = world["handheld"], world["serials"][0]
    days = -3 * 24 * 60
    pack(world, "SF8000000001", [serial], days, promised_by="2026-11-17T20:00:00+08:00")
    hh.post(hh.event("picked_up", days + 10, waybill="SF8000000001"))
    # Three days on, the same handheld picks up another parcel: it has synced past both
    # deadlines, and the first parcel is known to be stuck (not awaiting sync).
    pack(world, "SF8000000002", [world["serials"][1]], 0)
    hh.post(hh.event("picked_up", 10, waybill="SF8000000002"))
    result = runner.invoke(args=["trace", "sweep"])
    assert result.exit_code == 0, result.output
    found = anomalies(client, make)
    assert {"stalled_parcel", "late_delivery"} <= set(types(found))
    stalled = next(a for a in found if a["type"] == "stalled_parcel")
    assert stalled["party"] == {
        "type": "logistics_company",
        "id": world["company"],
        "role": "responsible",
    }
    again = runner.invoke(args=["trace", "sweep"])
    assert "0 new anomalies" in again.output


def deliver(world, waybill):
    from tests.app.test_events_api import ship

    ship(world, waybill=waybill)
    return world["serials"][0]


def test_consignee_and_merchant_each_rate_a_signed_parcel_once(client, make, world):
    """Can the consignee (by the unit's code) and the merchant each rate once, moving the
    courier's and the company's credit?"""
    serial = deliver(world, "SF9000000001")
    first = client.post(
        f"/api/v1/codes/{serial}/delivery-rating",
        json={"courier": 1, "company": 2, "tags": ["late", "rude"]},
    )
    assert first.status_code == 201, first.get_json()
    again = client.post(
        f"/api/v1/codes/{serial}/delivery-rating", json={"courier": 5, "company": 5}
    )
    assert again.status_code == 409
    merchant = client.post(
        "/api/v1/parcels/SF9000000001/rating",
        json={"courier": 5, "company": 5},
        headers=make.auth("merchant", world["merchant"]),
    )
    assert merchant.status_code == 201
    courier = client.get(f"/api/v1/credit/courier/{world['courier']}").json
    ratings = [r["points"] for r in courier["records"] if r["kind"] == "rating"]
    assert sorted(ratings) == [-8, 8]
    bad_tag = client.post(
        "/api/v1/parcels/SF9000000001/rating",
        json={"courier": 3, "company": 3, "tags": ["smelly"]},
        headers=make.auth("merchant", world["merchant"]),
    )
    assert bad_tag.status_code in (409, 422)


def test_an_undelivered_parcel_cannot_be_rated(client, make, world):
    """Is a rating refused before the parcel is signed, and for another merchant's parcel?"""
    serial = world["serials"][1]
    pack(world, "SF9100000001", [serial], 0)
    assert (
        client.post(
            f"/api/v1/codes/{serial}/delivery-rating", json={"courier": 4, "company": 4}
        ).status_code
        == 403  # the unit is not signed for: no one holds it as its consignee yet
    )
    assert (
        client.post(
            "/api/v1/parcels/SF9100000001/rating",
            json={"courier": 4, "company": 4},
            headers=make.auth("merchant", make.merchant()),
        ).status_code
        == 403
    )


def test_reviews_are_stored_verbatim_and_rate_limited(client, make, world, session):
    """Is markup stored as text (escaped when shown), and the sixth review in an hour refused?"""
    serial = world["serials"][0]
    body = {"rating": 4, "text": "<script>alert(1)</script> 好喝"}
    for _ in range(5):
        assert client.post(f"/api/v1/codes/{serial}/reviews", json=body).status_code == 201
    limited = client.post(f"/api/v1/codes/{serial}/reviews", json=body)
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert session.scalar(sa.text("SELECT text FROM reviews LIMIT 1")) == body["text"]
    assert client.post("/api/v1/codes/AAAAAAAAAAAAAAAA/reviews", json=body).status_code == 404
    assert client.post(f"/api/v1/codes/{serial}/reviews", json={"rating": 6}).status_code == 422


def test_a_complaint_names_the_party_through_custody(client, make, world, session):
    """Does a delivery complaint fall on the courier who delivered, a quality one on the seller,
    each as a consumer_complaint anomaly, with the contact kept from everyone but regulators?"""
    serial = deliver(world, "SF9200000001")
    delivery = client.post(
        f"/api/v1/codes/{serial}/complaints",
        json={"category": "delivery", "text": "包裹被扔在门口", "contact": "13912345678"},
    )
    assert delivery.status_code == 201, delivery.get_json()
    assert delivery.json["responsible"] == {"type": "courier", "id": world["courier"]}
    assert "13912345678" not in delivery.get_data(as_text=True)
    quality = client.post(
        f"/api/v1/codes/{serial}/complaints", json={"category": "quality", "text": "口感异常"}
    )
    assert quality.json["responsible"] == {"type": "merchant", "id": world["merchant"]}
    found = anomalies(client, make, type="consumer_complaint")
    assert sorted(a["party"]["type"] for a in found) == ["courier", "merchant"]
    assert all("13912345678" not in str(a) for a in found)
    for _ in range(2):
        client.post(f"/api/v1/codes/{serial}/complaints", json={"category": "other", "text": "x"})
    assert (
        client.post(
            f"/api/v1/codes/{serial}/complaints", json={"category": "other", "text": "x"}
        ).status_code
        == 429
    )


def blacklist(client, make, party_type, party_id):
    """Three sanctions decided a month ago: their response period over, the party is on
    the black list now."""
    sanctioned(client.application, party_type, party_id, n=3)
    assert client.get(f"/api/v1/credit/{party_type}/{party_id}").json["list"] == "black"


def test_a_black_listed_merchant_cannot_issue_codes(client, make, world):
    """Is issuance refused to a merchant on the black list, and allowed before?"""
    url = f"/api/v1/batches/{world['batch']}/codes"
    headers = make.auth("merchant", world["merchant"])
    assert client.post(url, json={"count": 1}, headers=headers).status_code == 201
    blacklist(client, make, "merchant", world["merchant"])
    refused = client.post(url, json={"count": 1}, headers=headers)
    assert refused.status_code == 403 and "黑名单" in refused.json["error"]["message"]


def test_a_black_listed_couriers_events_are_kept_but_flagged(client, make, world):
    """Are a black-listed courier's scans accepted as evidence and marked as such?"""
    blacklist(client, make, "courier", world["courier"])
    hh, serial = world["handheld"], world["serials"][0]
    pack(world, "SF9300000001", [serial], 0)
    answer = hh.post(hh.event("picked_up", 10, waybill="SF9300000001"))
    assert [a["status"] for a in answer["acks"]] == ["accepted"]
    events = client.get(
        "/api/v1/parcels/SF9300000001/history", headers=make.auth("regulator")
    ).json["events"]
    assert [(e["type"], e["flag"]) for e in events] == [
        ("packed", None),
        ("picked_up", "black_listed_courier"),
    ]


@pytest.mark.committed("postgresql")  # the scan: on PostgreSQL, connections of its own
def test_public_answers_show_the_merchants_credit(client, make, world):
    """Does anyone looking up a code see the merchant's grade, list status and commitment?"""
    serial = world["serials"][0]
    before = client.get(f"/api/v1/codes/{serial}").json["merchant"]["credit"]
    assert before == {"score": 800, "grade": "B", "list": None, "commitment_signed_at": None}
    client.post(
        f"/api/v1/credit/merchant/{world['merchant']}/commitment",
        headers=make.auth("merchant", world["merchant"]),
    )
    blacklist(client, make, "merchant", world["merchant"])
    after = client.get(f"/api/v1/codes/{serial}").json["merchant"]["credit"]
    assert after["list"] == "black" and after["commitment_signed_at"]
    page = client.get(
        client.get(f"/api/v1/codes/{serial}").json["uri"].removeprefix("https://id.example.cn"),
        headers={"Accept": "text/html"},
    ).get_data(as_text=True)
    assert "失信黑名单" in page
