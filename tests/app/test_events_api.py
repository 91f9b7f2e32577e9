"""Events over HTTP: the same ingestion as MQTT, and the histories it builds."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from devices.protocol import sign

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Handset:
    """A device that signs and numbers its events like real firmware."""

    def __init__(self, client, device_id, secret):
        self.client, self.device_id, self.secret, self.seq = client, device_id, secret, 0

    def event(self, type_, minutes=0, **fields):
        self.seq += 1
        body = {"event_id": str(uuid.uuid4()), "seq": self.seq, "type": type_,
                "time": (T0 + timedelta(minutes=minutes)).astimezone(
                    __import__("datetime").timezone(timedelta(hours=8))).isoformat(),
                "lat": 31.78, "lon": 119.95} | fields
        body["sig"] = sign(body, self.secret)
        return body

    def post(self, *events, raw=None):
        payload = raw if raw is not None else (
            events[0] if len(events) == 1 else {"events": list(events)})
        resp = self.client.post("/api/v1/events", json=payload,
                                headers={"X-Device-Id": self.device_id})
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
        "merchant": merchant, "company": company, "courier": courier, "batch": batch,
        "serials": serials,
        "shelf": Handset(client, *make.device("shelf_scanner", merchant)),
        "pos": Handset(client, *make.device("pos_scanner", merchant)),
        "handheld": Handset(client, *make.device("courier_handheld", courier)),
    }


def _fixed_now(check):
    def at_t0_plus_a_day(event, now, **kw):
        return check(event, T0 + timedelta(days=1), **kw)
    return at_t0_plus_a_day


def ship(world, waybill="SF1234567890", start=0):
    """Shelve, sell, pack and deliver unit 0 in a parcel."""
    s, pos, hh = world["shelf"], world["pos"], world["handheld"]
    serial = world["serials"][0]
    acks = [
        s.post(s.event("shelved", start, code=serial)),
        pos.post(pos.event("sold", start + 10, code=serial, data={"order_id": "O-1"})),
        s.post(s.event("packed", start + 20, waybill=waybill, codes=[serial], data={
            "consignee": {"lat": 31.80, "lon": 119.98}, "consignee_region_code": "320411",
            "logistics_company_id": world["company"]})),
        hh.post(hh.event("picked_up", start + 60, waybill=waybill)),
        hh.post(hh.event("in_transit", start + 120, waybill=waybill)),
        hh.post(hh.event("out_for_delivery", start + 180, waybill=waybill)),
        hh.post(hh.event("signed", start + 200, waybill=waybill, data={"signer": "self"})),
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
        "shelved", "sold", "packed", "picked_up", "in_transit", "out_for_delivery", "signed"]
    holders = [c["party"]["type"] for c in body["custody"]]
    assert holders == ["merchant", "courier", "consignee"]
    assert body["custody"][1]["from"] == "2026-11-20T10:00:00Z"
    assert body["custody"][1]["party"]["company"]["id"] == world["company"]
