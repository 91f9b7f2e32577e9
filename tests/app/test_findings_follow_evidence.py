"""Findings follow the evidence: later events that clear a finding withdraw it (or, once a
regulator confirmed it, flag it for review), with its points taken back and an audit entry;
the time-based rules judge only what the service can know (issue 14, items 1 and 2)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.anomalies import detect
from tests.app.test_credit_api import anomalies
from tests.app.test_events_api import T0, Handset, pack

DAY = 24 * 60


@pytest.fixture
def sweep(app):
    """The sweep at a moment of the test's own clock (T0 + ``minutes``)."""

    def run(minutes: float | datetime) -> int:
        ext = app.extensions["trace"]
        at = minutes if isinstance(minutes, datetime) else T0 + timedelta(minutes=minutes)
        with ext.sessionmaker() as s:
            found = detect.sweep(s, ext.config.thresholds, ext.config.policy, at)
            s.commit()
        return found

    return run


def account(client, party_type, party_id, headers=None) -> dict:
    """The party's credit account; with ``headers`` (the party's or a regulator's token)
    its risk indicator and every record too."""
    return client.get(f"/api/v1/credit/{party_type}/{party_id}", headers=headers).get_json()


def audit_actions(session, anomaly_id) -> list[tuple[str, str]]:
    return [
        tuple(row)
        for row in session.execute(
            sa.text(
                "SELECT actor_role, action FROM audit_entries "
                "WHERE target_type = 'anomaly' AND target_id = :id ORDER BY id"
            ),
            {"id": str(anomaly_id)},
        )
    ]


def late_parcel(world, waybill="SF8100000001"):
    """A parcel packed three days before T0, promised 12 h later, picked up at once; then the
    handheld picks up another parcel at T0: it has synced past the promise."""
    hh = world["handheld"]
    pack(world, waybill, [world["serials"][0]], -3 * DAY, promised_by=_at(-3 * DAY + 12 * 60))
    hh.post(hh.event("picked_up", -3 * DAY + 10, waybill=waybill))
    pack(world, "SF8100000009", [world["serials"][2]], -10)
    hh.post(hh.event("picked_up", 0, waybill="SF8100000009"))
    return waybill


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def test_a_late_signature_withdraws_late_delivery(client, make, world, sweep, session):
    """A parcel unsigned past its promise is late; its signature, dated before the promise
    but delivered after the sweep, withdraws the finding: status withdrawn, the signature
    named, the points taken back by a reversal, an audit entry by the system, and the
    company's risk indicator as if nothing had been found (its public score never moved: an
    open finding is a risk signal)."""
    company = world["company"]
    own_token = make.auth("logistics", company)
    before = account(client, "logistics_company", company)["score"]
    waybill = late_parcel(world)
    sweep(60)
    (late,) = anomalies(client, make, type="late_delivery")
    assert late["status"] == "open" and late["evidence"]["signed_at"] is None
    assert account(client, "logistics_company", company, own_token)["risk"]["points"] < 0
    assert account(client, "logistics_company", company)["score"] == before

    hh = world["handheld"]
    signed = hh.event("signed", -3 * DAY + 5 * 60, waybill=waybill, data={"signer": "self"})
    hh.post(hh.event("out_for_delivery", -3 * DAY + 4 * 60, waybill=waybill), signed)
    sweep(120)

    (late,) = anomalies(client, make, type="late_delivery")
    assert late["status"] == "withdrawn"
    assert late["withdrawal"]["event_ids"] == [signed["event_id"]]
    assert "within the promised time" in late["withdrawal"]["reason"]
    # the company sees it too, and its account
    own = anomalies_as(client, make, "logistics", company, type="late_delivery")
    assert [a["status"] for a in own] == ["withdrawn"]
    after = account(client, "logistics_company", company, own_token)
    assert after["score"] == before and after["risk"]["open_findings"] == 0
    kinds = [(r["kind"], r["points"]) for r in after["records"] if r["anomaly_id"] == late["id"]]
    assert kinds == [("anomaly", -10), ("reversal", 10)]
    assert audit_actions(session, late["id"]) == [("system", "anomaly.withdraw")]


def anomalies_as(client, make, role, party_id, **filters):
    resp = client.get("/api/v1/anomalies", query_string=filters, headers=make.auth(role, party_id))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def test_a_late_transit_scan_withdraws_stalled_parcel(client, make, world, sweep):
    """Picked up three days before T0 by one courier, whose handheld has synced since: the
    parcel is stalled. Then another courier's handheld delivers its transit scans of those
    days (a hand-over it scanned offline): no stretch over 48 h, the finding is withdrawn."""
    hh, waybill = world["handheld"], late_parcel(world)
    sweep(60)
    (stalled,) = anomalies(client, make, type="stalled_parcel")
    assert stalled["status"] == "open"
    other = Handset(client, *make.device("courier_handheld", make.courier(world["company"])))
    scans = [
        other.event("in_transit", -3 * DAY + 40 * 60, waybill=waybill),
        other.event("in_transit", -DAY, waybill=waybill),
        other.event("in_transit", -60, waybill=waybill),
    ]
    other.post(*scans)
    sweep(120)
    (stalled,) = anomalies(client, make, type="stalled_parcel")
    assert stalled["status"] == "withdrawn"
    assert set(stalled["withdrawal"]["event_ids"]) == {e["event_id"] for e in scans}
    assert hh  # the first courier's handheld did nothing more


def test_a_confirmed_finding_contradicted_later_is_flagged_not_withdrawn(
    client, make, world, sweep, session
):
    """A regulator confirmed the late delivery; the signature in time arrives afterwards:
    the finding stays confirmed, flagged for review with the signature named, and its
    points stay."""
    waybill = late_parcel(world)
    sweep(60)
    (late,) = anomalies(client, make, type="late_delivery")
    resp = client.post(
        f"/api/v1/anomalies/{late['id']}/decision",
        json={"decision": "confirm", "reason": "no signature by the promise"},
        headers=make.auth("regulator"),
    )
    assert resp.status_code == 200, resp.get_json()
    hh = world["handheld"]
    signed = hh.event("signed", -3 * DAY + 5 * 60, waybill=waybill, data={"signer": "self"})
    hh.post(hh.event("out_for_delivery", -3 * DAY + 4 * 60, waybill=waybill), signed)
    sweep(120)
    (late,) = anomalies(client, make, type="late_delivery")
    assert late["status"] == "confirmed" and late["withdrawal"] is None
    assert late["review_flag"]["event_ids"] == [signed["event_id"]]
    own = make.auth("logistics", world["company"])  # every record, final or not yet
    records = account(client, "logistics_company", world["company"], own)["records"]
    assert [r["kind"] for r in records if r["anomaly_id"] == late["id"]] == ["anomaly"]
    assert audit_actions(session, late["id"])[-1] == ("system", "anomaly.flag")
    # flagged once: a second sweep adds nothing
    sweep(180)
    assert audit_actions(session, late["id"])[-1] == ("system", "anomaly.flag")
    assert len(audit_actions(session, late["id"])) == 2


def test_an_earlier_pickup_arriving_later_withdraws_the_signature_findings(client, make, world):
    """A signature that arrives before its pickup (another batch, out of order) is a
    lifecycle violation and an empty parcel; when the pickup and transit scans arrive, the
    rules judge the parcel again and withdraw both."""
    hh, waybill = world["handheld"], "SF8200000001"
    pack(world, waybill, [world["serials"][0]], 0)
    pickup = hh.event("picked_up", 10, waybill=waybill)
    transit = hh.event("in_transit", 30, waybill=waybill)
    hh.post(hh.event("signed", 60, waybill=waybill, data={"signer": "self"}))
    found = {a["type"]: a for a in anomalies(client, make) if a["status"] == "open"}
    assert {"lifecycle_violation", "empty_parcel"} <= set(found)
    hh.post(pickup, transit)
    after = {a["type"]: a for a in anomalies(client, make)}
    for kind in ("lifecycle_violation", "empty_parcel"):
        assert after[kind]["status"] == "withdrawn", kind
        assert pickup["event_id"] in after[kind]["withdrawal"]["event_ids"]


def test_a_parcel_awaiting_its_handhelds_sync_is_not_late(client, make, world, sweep):
    """Unsigned past its promise while its handheld has delivered nothing dated after the
    promise: awaiting sync, no finding (late or stalled); a silent spell of over 24 h is one
    device_silent finding for the company, not an accusation per parcel."""
    hh, waybill = world["handheld"], "SF8300000001"
    pack(world, waybill, [world["serials"][0]], -3 * DAY, promised_by=_at(-3 * DAY + 12 * 60))
    hh.post(hh.event("picked_up", -3 * DAY + 10, waybill=waybill))
    sweep(60)
    assert anomalies(client, make, type="late_delivery") == []
    assert anomalies(client, make, type="stalled_parcel") == []
    # Two days after it was last heard from (the service's clock), still holding it.
    (silent,) = [] if sweep(datetime.now(UTC) + timedelta(days=2)) != 1 else anomalies(client, make)
    assert silent["type"] == "device_silent"
    assert silent["party"] == {
        "type": "logistics_company",
        "id": world["company"],
        "role": "responsible",
    }
    assert silent["evidence"]["waybills"] == [waybill]
    assert silent["subject"]["device_spell"].startswith(hh.device_id + "@")
