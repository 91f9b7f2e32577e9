"""Events over HTTP: the same ingestion as MQTT, and the histories it builds."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.factories import EventFactory

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Handset:
    """A device that signs and numbers its events like real firmware."""

    def __init__(self, client, device_id, secret):
        self.client, self.device_id, self.secret = client, device_id, secret
        self.events = EventFactory(secret)

    def event(self, type_, minutes=0, **fields):
        return self.events(type_, T0 + timedelta(minutes=minutes), **fields)

    def post(self, *events, raw=None):
        payload = (
            raw
            if raw is not None
            else (events[0] if len(events) == 1 else {"events": list(events)})
        )
        resp = self.client.post(
            "/api/v1/events", json=payload, headers={"X-Device-Id": self.device_id}
        )
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()


@pytest.fixture
def world(client, make, monkeypatch):
    """A merchant with a shelf and a POS scanner, a courier with a handheld, 3 units."""
    import devices.protocol as protocol

    monkeypatch.setattr(protocol, "check_event", _fixed_now(protocol.check_event))
    merchant = make.merchant()
    company = make.company()
    courier = make.courier(company)
    batch = make.batch(make.product(merchant))
    serials = make.codes(batch, 3)
    return {
        "merchant": merchant,
        "company": company,
        "courier": courier,
        "batch": batch,
        "serials": serials,
        "shelf": Handset(client, *make.device("shelf_scanner", merchant)),
        "pos": Handset(client, *make.device("pos_scanner", merchant)),
        "handheld": Handset(client, *make.device("courier_handheld", courier)),
    }


def _fixed_now(check):
    def at_t0_plus_a_day(event, now, **kw):
        return check(event, T0 + timedelta(days=1), **kw)

    return at_t0_plus_a_day


def pack(world, waybill, serials, minutes=0, **data):
    """The shop packs ``serials`` into a parcel for a consignee in Tianning district."""
    shelf = world["shelf"]
    return shelf.post(
        shelf.event(
            "packed",
            minutes,
            waybill=waybill,
            codes=serials,
            data={
                "consignee": {"lat": 31.78, "lon": 119.95},
                "consignee_region_code": "320411",
                "logistics_company_id": world["company"],
                **data,
            },
        )
    )


def ship(world, waybill="SF1234567890", start=0):
    """Shelve, sell, pack and deliver unit 0 in a parcel."""
    s, pos, hh = world["shelf"], world["pos"], world["handheld"]
    serial = world["serials"][0]
    acks = [
        s.post(s.event("shelved", start, code=serial)),
        pos.post(pos.event("sold", start + 10, code=serial, data={"order_id": "O-1"})),
        s.post(
            s.event(
                "packed",
                start + 20,
                waybill=waybill,
                codes=[serial],
                data={
                    "consignee": {"lat": 31.80, "lon": 119.98},
                    "consignee_region_code": "320411",
                    "logistics_company_id": world["company"],
                },
            )
        ),
        hh.post(hh.event("picked_up", start + 60, waybill=waybill)),
        hh.post(hh.event("in_transit", start + 120, waybill=waybill)),
        hh.post(hh.event("out_for_delivery", start + 180, waybill=waybill)),
        hh.post(
            hh.event(
                "signed",
                start + 200,
                waybill=waybill,
                data={"signer": "self"},
                lat=31.78123,
                lon=119.94567,
            )
        ),
    ]
    return [a["acks"][0] for a in acks]


def test_a_units_journey_is_stored_and_its_history_told(client, make, world):
    """Does a full shelf-to-signature journey give the right state, events and custody?"""
    acks = ship(world)
    assert [a["status"] for a in acks] == ["accepted"] * 7, acks
    serial = world["serials"][0]
    history = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator"))
    assert history.status_code == 200, history.get_json()
    body = history.get_json()
    assert body["state"] == "signed"
    assert [e["type"] for e in body["events"]] == [
        "shelved",
        "sold",
        "packed",
        "picked_up",
        "in_transit",
        "out_for_delivery",
        "signed",
    ]
    holders = [c["party"]["type"] for c in body["custody"]]
    assert holders == ["merchant", "courier", "consignee"]
    assert body["custody"][1]["from"] == "2026-11-20T10:00:00Z"
    assert body["custody"][1]["party"]["company"]["id"] == world["company"]


def statuses(answer):
    return [(a["status"], a.get("reason")) for a in answer["acks"]]


def test_the_same_event_twice_is_stored_once(world, session):
    """Is a redelivered event answered `duplicate` and stored only once?"""
    shelf = world["shelf"]
    event = shelf.event("shelved", code=world["serials"][0])
    assert statuses(shelf.post(event)) == [("accepted", None)]
    assert statuses(shelf.post(event)) == [("duplicate", None)]
    assert statuses(shelf.post(event, event)) == [("duplicate", None), ("duplicate", None)]
    assert session.scalar(sa.text("SELECT count(*) FROM events")) == 1


def test_a_handheld_offline_for_a_day_delivers_late_and_out_of_order(client, make, world):
    """When a handheld sends yesterday's scans late and in reverse, is the history in event
    order and the state right?"""
    serial, shelf, hh = world["serials"][1], world["shelf"], world["handheld"]
    shelf.post(
        shelf.event(
            "packed",
            0,
            waybill="YT0000000001",
            codes=[serial],
            data={
                "consignee": {"lat": 31.8, "lon": 119.98},
                "consignee_region_code": "320411",
                "logistics_company_id": world["company"],
            },
        )
    )
    buffered = [
        hh.event("picked_up", 60, waybill="YT0000000001"),
        hh.event("out_for_delivery", 120, waybill="YT0000000001"),
        hh.event("signed", 180, waybill="YT0000000001", data={"signer": "locker"}),
    ]
    answer = hh.post(*reversed(buffered))
    assert [a["status"] for a in answer["acks"]] == ["accepted"] * 3
    body = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator")).json
    assert [e["type"] for e in body["events"]] == [
        "packed",
        "picked_up",
        "out_for_delivery",
        "signed",
    ]
    assert body["state"] == "signed"
    assert all(e["violation"] is None for e in body["events"])


def test_an_unknown_code_is_rejected_and_kept_for_regulators(client, make, world):
    """Is a scan of a never-issued code (a counterfeit) rejected, with the valid events of the
    same message still accepted, and the reject visible to a regulator?"""
    shelf = world["shelf"]
    fake = shelf.event("shelved", code="AAAAAAAAAAAAAAAA")
    real = shelf.event("shelved", code=world["serials"][0])
    assert statuses(shelf.post(fake, real)) == [("rejected", "unknown_code"), ("accepted", None)]
    rejected = client.get("/api/v1/rejected-events", headers=make.auth("regulator")).json
    assert rejected["items"][0]["reason"] == "unknown_code"
    assert rejected["items"][0]["event_id"] == fake["event_id"]
    assert (
        client.get(
            "/api/v1/rejected-events", headers=make.auth("merchant", world["merchant"])
        ).status_code
        == 403
    )


def test_a_genuine_serial_under_another_products_link_is_a_counterfeit(world, make):
    """Is a Digital Link naming a real serial under a different GTIN rejected?"""
    shelf = world["shelf"]
    forged = f"https://id.example.cn/01/04006381333931/21/{world['serials'][0]}"
    assert statuses(shelf.post(shelf.event("shelved", code=forged))) == [
        ("rejected", "unknown_code")
    ]


def test_a_code_given_as_its_digital_link_is_accepted(world, client):
    """Can a scanner send the full URI it read from the QR code?"""
    serial = world["serials"][0]
    uri = client.get(f"/api/v1/codes/{serial}").json["uri"]
    shelf = world["shelf"]
    assert statuses(shelf.post(shelf.event("shelved", code=uri))) == [("accepted", None)]


def test_forged_and_foreign_events_are_rejected(client, make, world):
    """Are a bad signature, an unknown device, a disabled device, a device reporting what its
    kind may not, and a parcel event for an unknown waybill each rejected with their reason?"""
    shelf, pos, hh = world["shelf"], world["pos"], world["handheld"]
    tampered = shelf.event("shelved", code=world["serials"][0])
    tampered["code"] = world["serials"][1]
    assert statuses(shelf.post(tampered)) == [("rejected", "bad_signature")]
    assert statuses(pos.post(pos.event("picked_up", waybill="SF1234567890"))) == [
        ("rejected", "not_allowed")
    ]
    stranger = Handset(client, "0123456789ABCDEF", "guess")
    assert statuses(stranger.post(stranger.event("shelved", code=world["serials"][0]))) == [
        ("rejected", "unknown_device")
    ]
    resp = client.post(
        f"/api/v1/devices/{hh.device_id}/disable", headers=make.auth("logistics", world["company"])
    )
    assert resp.status_code == 200 and resp.json["disabled"] is True
    assert statuses(hh.post(hh.event("picked_up", waybill="SF1234567890"))) == [
        ("rejected", "disabled_device")
    ]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
def test_a_time_without_a_utc_moment_costs_its_neighbours_nothing(client, make, world, when):
    """Is an event whose time parses but overflows in UTC (before its signature is checked)
    rejected alone, with its signed neighbours stored, and not a 500?"""
    from tests.factories import resigned

    shelf, serials = world["shelf"], world["serials"]
    first = shelf.event("shelved", 0, code=serials[0])
    poisoned = resigned(shelf.event("shelved", 1, code=serials[1]), shelf.secret, time=when)
    unsigned = dict(poisoned, sig="0" * 64)  # an attacker's: not signed at all
    last = shelf.event("shelved", 2, code=serials[2])
    answer = shelf.post(first, poisoned, unsigned, last)
    assert statuses(answer) == [
        ("accepted", None),
        ("rejected", "invalid_field"),
        ("rejected", "invalid_field"),
        ("accepted", None),
    ]
    history = client.get(f"/api/v1/codes/{serials[2]}/history", headers=make.auth("regulator"))
    assert [e["type"] for e in history.json["events"]] == ["shelved"]


def test_unreadable_http_messages_get_one_rejected_ack(world):
    """Does a message that is not an event get a single ack that says why?"""
    answer = world["shelf"].post(raw={"events": "nope"})
    assert statuses(answer) == [("rejected", "malformed")]
    assert answer["acks"][0]["event_id"] is None


def test_http_needs_json_and_a_device_id(client):
    """Are requests without a JSON body or without a device id refused in the error shape?"""
    assert client.post("/api/v1/events", data="x", headers={"X-Device-Id": "A"}).status_code == 415
    resp = client.post("/api/v1/events", json={"event_id": "x"})
    assert resp.status_code == 422 and resp.json["error"]["details"]["field"] == "X-Device-Id"


def test_a_second_sale_is_kept_as_evidence_and_marked(client, make, world):
    """Is a unit sold twice stored twice, the second sale marked as a lifecycle violation?"""
    pos, serial = world["pos"], world["serials"][2]
    pos.post(pos.event("sold", 0, code=serial, data={"order_id": "A"}))
    answer = pos.post(pos.event("sold", 30, code=serial, data={"order_id": "B"}))
    assert statuses(answer) == [("accepted", None)]
    events = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator")).json[
        "events"
    ]
    assert [e["violation"] for e in events] == [None, "sold is not allowed after sold"]


# The test's session ends its transaction to read what each request committed since.
@pytest.mark.committed
def test_a_sequence_gap_is_detected_and_closed_by_a_resend(world, session):
    """When seq jumps from 2 to 5, is the gap recorded and a resend asked, and does sending 3
    and 4 close it?"""
    shelf, serial = world["shelf"], world["serials"][0]
    events = [shelf.event("shelved", i, code=serial) for i in range(5)]
    shelf.post(events[0], events[1])
    answer = shelf.post(events[4])
    assert answer["commands"] == [{"command": "resend", "from_seq": 3, "to_seq": 4}]
    gaps = session.execute(sa.text("SELECT first_seq, last_seq FROM sequence_gaps")).all()
    assert gaps == [(3, 4)]
    shelf.post(events[3])
    session.rollback()
    assert session.execute(sa.text("SELECT first_seq, last_seq FROM sequence_gaps")).all() == [
        (3, 3)
    ]
    shelf.post(events[2])
    session.rollback()
    assert session.scalar(sa.text("SELECT count(*) FROM sequence_gaps")) == 0


def test_only_authorities_see_exact_delivery_points_and_the_consignee(client, make, world):
    """Does the shipping merchant see the signature place only to about a kilometre, and no
    consignee point, while a regulator sees both exactly?"""
    ship(world, waybill="SF2000000001")
    serial = world["serials"][0]
    merchant = client.get(
        f"/api/v1/codes/{serial}/history", headers=make.auth("merchant", world["merchant"])
    ).json
    regulator = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator")).json
    signed_m = next(e for e in merchant["events"] if e["type"] == "signed")
    signed_r = next(e for e in regulator["events"] if e["type"] == "signed")
    assert (signed_r["lat"], signed_r["lon"]) == (31.78123, 119.94567)
    assert (signed_m["lat"], signed_m["lon"]) == (31.78, 119.95)
    courier_m = merchant["custody"][1]["party"]["name"]
    assert courier_m.endswith("*") and courier_m != regulator["custody"][1]["party"]["name"]
    parcel_m = client.get(
        "/api/v1/parcels/SF2000000001/history", headers=make.auth("merchant", world["merchant"])
    ).json
    parcel_r = client.get(
        "/api/v1/parcels/SF2000000001/history", headers=make.auth("regulator")
    ).json
    assert "consignee" not in parcel_m and parcel_r["consignee"] == {"lat": 31.8, "lon": 119.98}
    assert parcel_r["state"] == "signed" and parcel_r["units"] == [serial]


def test_history_is_closed_to_others(client, make, world):
    """May another merchant, an unrelated carrier or an anonymous caller read the history?"""
    ship(world, waybill="SF3000000001")
    serial = world["serials"][0]
    url = f"/api/v1/codes/{serial}/history"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=make.auth("merchant", make.merchant())).status_code == 403
    other_company = make.company()
    resp = client.get(
        "/api/v1/parcels/SF3000000001/history", headers=make.auth("logistics", other_company)
    )
    assert resp.status_code == 403
    assert (
        client.get(
            "/api/v1/parcels/SF3000000001/history", headers=make.auth("logistics", world["company"])
        ).status_code
        == 200
    )


def test_forward_trace_says_where_every_unit_is(client, make, world):
    """Does the batch trace give each unit's state and custodian, page by page?"""
    ship(world, waybill="SF4000000001")
    shelf = world["shelf"]
    shelf.post(shelf.event("shelved", 5, code=world["serials"][1]))
    headers = make.auth("regulator")
    first = client.get(f"/api/v1/batches/{world['batch']}/trace?limit=2", headers=headers).json
    second = client.get(
        f"/api/v1/batches/{world['batch']}/trace?limit=2&after={first['next_after']}",
        headers=headers,
    ).json
    units = {u["serial"]: u for u in first["units"] + second["units"]}
    assert second["next_after"] is None and len(units) == 3
    assert units[world["serials"][0]]["state"] == "signed"
    assert units[world["serials"][0]]["custodian"] == {"type": "consignee"}
    assert units[world["serials"][1]]["state"] == "shelved"
    assert units[world["serials"][1]]["custodian"]["type"] == "merchant"
    assert units[world["serials"][2]]["state"] == "issued"
    assert units[world["serials"][2]]["last_event"] is None


def test_device_registration_follows_ownership(client, make):
    """Who may register which device, and is the secret shown only at registration?"""
    merchant, other = make.merchant(), make.merchant()
    company = make.company()
    courier = make.courier(company)
    own = client.post(
        "/api/v1/devices",
        json={"kind": "pos_scanner", "owner_type": "merchant", "owner_id": merchant},
        headers=make.auth("merchant", merchant),
    )
    assert own.status_code == 201 and len(own.json["secret"]) == 64
    assert own.json["topics"]["events"] == f"trace/v1/devices/{own.json['device_id']}/events"
    again = client.get(
        f"/api/v1/devices/{own.json['device_id']}", headers=make.auth("merchant", merchant)
    )
    assert "secret" not in again.json
    assert (
        client.post(
            "/api/v1/devices",
            json={"kind": "pos_scanner", "owner_type": "merchant", "owner_id": other},
            headers=make.auth("merchant", merchant),
        ).status_code
        == 403
    )
    mismatch = client.post(
        "/api/v1/devices",
        json={"kind": "courier_handheld", "owner_type": "merchant", "owner_id": merchant},
        headers=make.auth("admin"),
    )
    assert mismatch.status_code == 422
    handheld = client.post(
        "/api/v1/devices",
        json={"kind": "courier_handheld", "owner_type": "courier", "owner_id": courier},
        headers=make.auth("logistics", company),
    )
    assert handheld.status_code == 201
    assert (
        client.post(
            "/api/v1/devices",
            json={"kind": "courier_handheld", "owner_type": "courier", "owner_id": courier},
            headers=make.auth("logistics", make.company()),
        ).status_code
        == 403
    )


def test_personal_data_slipped_into_data_is_not_stored(client, make, world, session):
    """If a scanner puts a consignee's name and phone into data, are they kept out of the trace?"""
    pos, serial = world["pos"], world["serials"][0]
    pos.post(
        pos.event(
            "sold",
            code=serial,
            data={"order_id": "O-9", "price": 12.5, "buyer_name": "李四", "phone": "13912345678"},
        )
    )
    stored = session.scalar(sa.text("SELECT data FROM events"))
    text = stored if isinstance(stored, str) else str(stored)
    assert "李四" not in text and "13912345678" not in text
    events = client.get(f"/api/v1/codes/{serial}/history", headers=make.auth("regulator")).json
    assert events["events"][0]["data"] == {"order_id": "O-9", "price": 12.5}


def test_a_scan_that_overtakes_its_packing_is_applied_when_the_packing_arrives(
    client, make, world, session
):
    """When the courier's pickup reaches the service before the shop's packing (devices send
    on their own connections), is it kept and applied once the packing arrives?"""
    hh, serial = world["handheld"], world["serials"][0]
    pickup = hh.event("picked_up", 30, waybill="SF4400000001")
    assert statuses(hh.post(pickup)) == [("accepted", "parked")]
    assert statuses(hh.post(pickup)) == [("duplicate", None)]  # a resend while it waits
    pack(world, "SF4400000001", [serial], 0)
    assert session.scalar(sa.text("SELECT count(*) FROM parked_events")) == 0
    parcel = client.get("/api/v1/parcels/SF4400000001/history", headers=make.auth("regulator")).json
    assert [e["type"] for e in parcel["events"]] == ["packed", "picked_up"]
    assert parcel["state"] == "picked_up"
    again = hh.post(hh.event("in_transit", 60, waybill="SF4400000001"))
    assert statuses(again) == [("accepted", None)]


def test_a_parked_scan_whose_packing_never_comes_is_rejected_by_the_sweep(
    client, make, world, app, session
):
    """Is a parcel event for a waybill nobody packs rejected (unknown_waybill) once it has
    waited a day, and readable by regulators?"""
    from app.anomalies.sweep import run_sweep

    hh = world["handheld"]
    hh.post(hh.event("picked_up", waybill="SF0000000404"))
    with app.extensions["trace"].sessionmaker() as s:
        assert (
            run_sweep(
                s, app.extensions["trace"].config, now=datetime.now(UTC) + timedelta(hours=25)
            )[1]
            == 1
        )
        s.commit()
    rejected = client.get(
        "/api/v1/rejected-events",
        query_string={"reason": "unknown_waybill"},
        headers=make.auth("regulator"),
    ).json["items"]
    assert len(rejected) == 1 and "SF0000000404" in rejected[0]["message"]
    assert session.scalar(sa.text("SELECT count(*) FROM parked_events")) == 0


def test_parcel_history_speaks_kuaidi100_and_aftership(client, make, world):
    """Does the parcel history give the parcel's state and each event in both courier status
    models, a failed attempt included?"""
    pack(world, "SF5000000001", [world["serials"][1]], minutes=0)
    hh = world["handheld"]
    hh.post(hh.event("picked_up", 30, waybill="SF5000000001"))
    hh.post(hh.event("out_for_delivery", 60, waybill="SF5000000001"))
    hh.post(hh.event("delivery_failed", 70, waybill="SF5000000001"))
    body = client.get(
        "/api/v1/parcels/SF5000000001/history", headers=make.auth("merchant", world["merchant"])
    ).json
    assert body["state"] == "delivery_failed"
    assert body["kuaidi100"] == {
        "state": "2",
        "name": "疑难",
        "sub_state": "204",
        "sub_name": "派件异常",
    }
    assert body["aftership"] == {
        "tag": "AttemptFail",
        "subtag": "AttemptFail_001",
        "subtag_message": "Failed Attempt",
    }
    codes = [(e["type"], e["kuaidi100"]["state"], e["aftership"]["subtag"]) for e in body["events"]]
    assert codes == [
        ("packed", "1", "InfoReceived_001"),
        ("picked_up", "1", "InTransit_002"),
        ("out_for_delivery", "5", "OutForDelivery_001"),
        ("delivery_failed", "2", "AttemptFail_001"),
    ]
