"""The anomaly rules at their boundaries, without app or database."""

from datetime import UTC, date, datetime, timedelta

import pytest

from tracecore import anomalies as rules
from tracecore.anomalies import Order, Scan, Thresholds
from tracecore.geo import distance_km
from tracecore.sync import DeviceSync

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
M, C, C2 = ("merchant", 1), ("courier", 7), ("courier", 8)
TH = Thresholds()
# Changzhou Tianning district and Nanjing: about 135 km apart.
CZ, NJ = (31.78, 119.98), (32.06, 118.80)


def scan(eid, type_, minutes, party=C, at=CZ, **kw):
    return Scan(eid, type_, T0 + timedelta(minutes=minutes), party, at[0], at[1], **kw)


def test_haversine_matches_a_known_distance():
    """Is Changzhou–Nanjing about 115 km in a straight line?"""
    assert distance_km(*CZ, *NJ) == pytest.approx(115, abs=5)


def test_lifecycle_violations_name_the_offending_device_owner():
    """Is each unlawful event a finding against the owner of the device that reported it?"""
    found = rules.lifecycle_violations(
        ("code", "S"),
        [
            scan("a", "shelved", 0, M),
            scan("b", "shelved", 9, M, violation="shelved is not allowed after signed"),
        ],
    )
    assert [(f.type, f.parties, f.evidence["event_ids"]) for f in found] == [
        ("lifecycle_violation", (M,), ["b"])
    ]


def test_a_second_sale_is_a_duplicate_sale_not_a_lifecycle_violation():
    """Is 'sold after sold' its own rule, against the merchant of the second sale?"""
    second = ("merchant", 2)
    scans = [
        scan("a", "sold", 0, M),
        scan("b", "sold", 5, second, violation="sold is not allowed after sold"),
    ]
    assert rules.lifecycle_violations(("code", "S"), scans) == []
    (finding,) = rules.duplicate_sale("S", scans)
    assert finding.parties == (second,) and finding.severity == "serious"


def test_impossible_travel_boundary():
    """Is Changzhou–Nanjing at 901 km/h flagged against the later scan's owner, and at 899 not?"""
    km = distance_km(*CZ, *NJ)
    fast = [scan("a", "sold", 0, M), scan("b", "sold", km / 901 * 60, C2, NJ)]
    slow = [scan("a", "sold", 0, M), scan("b", "sold", km / 899 * 60, C2, NJ)]
    (found,) = rules.impossible_travel(("code", "S"), fast, TH)
    assert found.parties == (C2,) and found.evidence["kmh"] == 901
    assert rules.impossible_travel(("code", "S"), slow, TH) == []


def test_signed_with_no_pickup_is_an_empty_parcel():
    """Is a parcel signed without any pickup scan flagged against merchant and courier?"""
    (found,) = rules.empty_parcel("W", 1, [scan("p", "packed", 0, M), scan("s", "signed", 60)], TH)
    assert found.type == "empty_parcel" and found.parties == (M, C)


def test_a_distant_delivery_without_transit_scans_is_an_empty_parcel():
    """Picked up in Changzhou, signed in Nanjing the next day with nothing between: flagged;
    with a transit scan between: not."""
    bare = [scan("p", "picked_up", 0), scan("s", "signed", 60 * 24, at=NJ)]
    assert len(rules.empty_parcel("W", 1, bare, TH)) == 1
    scanned = [*bare, scan("t", "in_transit", 60 * 12, at=(31.9, 119.4))]
    assert rules.empty_parcel("W", 1, scanned, TH) == []


def test_a_nearby_delivery_needs_no_transit_scan():
    """A same-district pickup and signature (under 5 km) is normal."""
    near = (CZ[0] + 0.02, CZ[1])  # about 2.2 km north
    assert (
        rules.empty_parcel(
            "W", 1, [scan("p", "picked_up", 0), scan("s", "signed", 30, at=near)], TH
        )
        == []
    )


def test_carried_faster_than_a_vehicle_is_an_empty_parcel():
    """115 km in 30 minutes (230 km/h) by road: flagged even with a transit scan between."""
    scans = [
        scan("p", "picked_up", 0),
        scan("t", "in_transit", 10, at=(31.9, 119.4)),
        scan("s", "signed", 30, at=NJ),
    ]
    (found,) = rules.empty_parcel("W", 1, scans, TH)
    assert "km/h" in found.evidence["why"]


@pytest.mark.parametrize("north_km,flagged", [(1.9, False), (2.1, True)])
def test_remote_sign_boundary(north_km, flagged):
    """Is a signature 2.1 km from the consignee flagged and 1.9 km not (threshold 2 km)?"""
    at = (CZ[0] + north_km / 111.2, CZ[1])
    found = rules.remote_sign("W", [scan("s", "signed", 0, at=at)], CZ, TH)
    assert bool(found) is flagged
    if found:
        assert found[0].parties == (C,)


@pytest.mark.parametrize(
    "hours,state,flagged",
    [
        (47.9, "in_transit", False),
        (48.1, "in_transit", True),
        (100, "signed", False),
        (100, "packed", False),
        (49, "delivery_failed", True),
    ],
)
def test_stalled_parcel_boundary(hours, state, flagged):
    """Is a parcel idle over 48 h in the courier's hands flagged, and only then?"""
    found = rules.stalled_parcel("W", 3, state, T0, T0 + timedelta(hours=hours), TH)
    assert bool(found) is flagged
    if found:
        assert found[0].parties == (("logistics_company", 3),)


@pytest.mark.parametrize(
    "signed_after,now_after,flagged",
    [(-1, 10, False), (0, 10, False), (1, 10, True), (None, -1, False), (None, 1, True)],
)
def test_late_delivery_boundary(signed_after, now_after, flagged):
    """Signed after the promise, or still unsigned once it passed: late; otherwise not."""
    promised = T0
    signed = None if signed_after is None else T0 + timedelta(minutes=signed_after)
    found = rules.late_delivery("W", 3, promised, signed, T0 + timedelta(minutes=now_after))
    assert bool(found) is flagged


def test_expired_sale_boundary():
    """Sold on the expiry date: fine; the day after: flagged."""
    on_day = [scan("a", "sold", 0, M)]
    assert rules.expired_sale("S", on_day, T0.date()) == []
    assert len(rules.expired_sale("S", on_day, T0.date() - timedelta(days=1))) == 1
    assert rules.expired_sale("S", on_day, date(2030, 1, 1)) == []


def test_recalled_sale_names_the_merchant_even_for_a_courier_scan():
    """After a recall, are sale, packing and pickup flagged against the merchant involved?"""
    scans = [scan("a", "sold", -5, M), scan("b", "packed", 5, M), scan("c", "picked_up", 10, C)]
    found = rules.recalled_sale("S", scans, T0, merchant_of={"c": 1})
    assert [(f.evidence["event"], f.parties) for f in found] == [
        ("packed", (M,)),
        ("picked_up", (M,)),
    ]


def test_brushing_many_orders_to_one_point_in_an_hour():
    """Six orders in an hour to two addresses (ratio 3): flagged; to six addresses: not."""
    few = [
        Order(f"W{i}", T0 + timedelta(minutes=i * 10), *((31.8, 119.9) if i % 2 else (31.7, 119.8)))
        for i in range(6)
    ]
    (found,) = rules.brushing(1, few, [], TH)
    assert found.evidence["orders"] == 6 and found.evidence["points"] == 2
    spread = [
        Order(f"W{i}", T0 + timedelta(minutes=i * 10), 31.7 + i / 100, 119.8) for i in range(6)
    ]
    assert rules.brushing(1, spread, [], TH) == []


def test_brushing_needs_the_minimum_order_count():
    """Five orders to one point is under the minimum of six: not flagged."""
    orders = [Order(f"W{i}", T0 + timedelta(minutes=i), 31.8, 119.9) for i in range(5)]
    assert rules.brushing(1, orders, [], TH) == []


def test_brushing_orders_spread_over_more_than_an_hour_do_not_count():
    """Six orders to one point, one every 15 minutes (75 min in all): no window holds six."""
    orders = [Order(f"W{i}", T0 + timedelta(minutes=15 * i), 31.8, 119.9) for i in range(6)]
    assert rules.brushing(1, orders, [], TH) == []


def test_many_parcels_signed_at_one_point_is_brushing_unless_a_locker():
    """Five of a merchant's parcels signed at one spot in a day: flagged; at a locker: not."""
    signed = [scan(f"s{i}", "signed", i * 30, data={"signer": "self"}) for i in range(5)]
    assert len(rules.brushing(1, [], signed, TH)) == 1
    lockers = [scan(f"s{i}", "signed", i * 30, data={"signer": "locker"}) for i in range(5)]
    assert rules.brushing(1, [], lockers, TH) == []


def test_a_signature_the_lifecycle_refused_still_makes_an_empty_parcel():
    """Is 'signed with no pickup' an empty parcel even though the signature is itself unlawful?"""
    scans = [
        scan("p", "packed", 0, M),
        scan("s", "signed", 60, violation="signed is not allowed after packed"),
    ]
    (found,) = rules.empty_parcel("W", 1, scans, TH)
    assert found.evidence["why"] == "signed with no pickup scan"


# -- copied_code ----------------------------------------------------------------------------------


def _summary(clients: int, districts: tuple[str, ...], checks: int = 0):
    from tracecore.anomalies import CheckSummary

    first = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    return CheckSummary(
        checks or clients,
        clients,
        len(districts),
        first,
        districts,
        districts[0] if districts else None,
    )


def test_copied_code_needs_many_clients_in_many_districts():
    from tracecore.anomalies import Thresholds, copied_code

    t = Thresholds(copied_code_clients=3, copied_code_districts=2)
    found = copied_code("S", 7, _summary(3, ("320402", "320411")), t)
    assert found.type == "copied_code" and found.parties == (("merchant", 7),)
    assert found.evidence["clients"] == 3 and found.evidence["districts"] == ["320402", "320411"]
    assert found.evidence["first_check_district"] == "320402"
    # one client, many times and places: not spread
    assert copied_code("S", 7, _summary(1, ("320402", "320411"), checks=10), t) is None
    # many clients in one district: a shop's shelf being checked, not a copy
    assert copied_code("S", 7, _summary(6, ("320402",)), t) is None
    # just below either threshold
    assert copied_code("S", 7, _summary(2, ("320402", "320411")), t) is None


def test_a_finding_of_a_type_no_rule_knows_is_refused():
    with pytest.raises(ValueError, match="unknown anomaly type 'brushed'"):
        rules.Finding("brushed", rules.MINOR, ("code", "S1"), (("merchant", 1),), {})
    assert rules.Finding("brushing", rules.MINOR, ("merchant", 1), (), {}).type == "brushing"


# -- accuracy radii -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "north_km,accuracy_m,flagged",
    [(2.5, 800, False), (2.5, 400, True), (2.5, None, True), (3.5, 50_000, True)],
)
def test_an_accuracy_radius_covering_the_consignee_is_no_remote_sign(north_km, accuracy_m, flagged):
    """A fix 2.5 km off whose 800 m radius brings it within 2 km of the consignee point is no
    proof of a remote signature; 400 m is; a claimed 50 km radius counts as 1 km (capped)."""
    at = (CZ[0] + north_km / 111.2, CZ[1])
    signed = scan("s", "signed", 0, at=at, accuracy_m=accuracy_m)
    found = rules.remote_sign("W", [signed], CZ, TH)
    assert bool(found) is flagged
    if found and accuracy_m:
        assert found[0].evidence["accuracy_m"] == accuracy_m


def test_impossible_travel_is_judged_between_the_two_fixes_circles():
    """Two fixes 3 km apart ten seconds apart: impossible as points, possible when each is
    a cell fix with a 1.5 km radius (capped at 1 km each: 1 km apart at least, no more)."""
    a = (CZ[0], CZ[1])
    b = (CZ[0] + 2.99 / 111.2, CZ[1])
    sharp = [scan("a", "in_transit", 0, at=a), scan("b", "in_transit", 1 / 6, at=b)]
    assert len(rules.impossible_travel(("waybill", "W"), sharp, TH)) == 1
    blurred = [
        scan("a", "in_transit", 0, at=a, accuracy_m=1500),
        scan("b", "in_transit", 1 / 6, at=b, accuracy_m=1500),
    ]
    assert rules.impossible_travel(("waybill", "W"), blurred, TH) == []


def test_an_empty_parcel_distance_allows_for_the_pickup_fixs_radius():
    """Picked up with a poor fix (800 m) and signed 5.5 km away with no transit scan: within
    the 5 km allowed once the radius is counted; with a sharp fix it is an empty parcel."""
    far = (CZ[0] + 5.5 / 111.2, CZ[1])
    for accuracy, expected in ((800, 0), (5, 1)):
        scans = [
            scan("p", "picked_up", 0, accuracy_m=accuracy),
            scan("s", "signed", 60, at=far, accuracy_m=5),
        ]
        assert len(rules.empty_parcel("W", 1, scans, TH)) == expected


# -- what the service can know: sync ---------------------------------------------------------


def sync(heard_h=None, synced_h=None, gaps=False):
    at = lambda h: None if h is None else T0 + timedelta(hours=h)  # noqa: E731
    return DeviceSync("D1", at(heard_h), at(synced_h), gaps)


def test_a_parcel_whose_handheld_has_not_synced_past_the_promise_is_awaiting_sync():
    """Unsigned 10 h after its promise: late only once the holding handheld has delivered
    an event dated after the promise, with no open gap in its numbers."""
    now = T0 + timedelta(hours=10)
    for holder, late in [
        (sync(9, -1), False),  # heard lately, but only scans from before the promise
        (sync(9, 2), True),
        (sync(9, 2, gaps=True), False),
    ]:
        assert bool(rules.late_delivery("W", 3, T0, None, now, (holder,))) is late
    # a signature after the promise is late whatever the sync
    signed_late = T0 + timedelta(hours=1)
    assert rules.late_delivery("W", 3, T0, signed_late, now, (sync(9, -1),))


def test_a_stall_is_judged_only_once_the_holder_synced_past_the_idle_limit():
    """Idle 60 h after its last scan: stalled when the handheld delivered events dated after
    the 48 h mark, awaiting sync when it did not."""
    now = T0 + timedelta(hours=60)
    assert rules.stalled_parcel("W", 3, "in_transit", T0, now, TH, (sync(59, 49),))
    assert not rules.stalled_parcel("W", 3, "in_transit", T0, now, TH, (sync(59, 47),))


def test_a_late_transit_scan_clears_a_stall():
    """Found stalled at 50 h after a pickup at 0; a transit scan dated 20 h arrives later: no
    stretch over 48 h up to the finding, so it no longer holds. One dated 49 h would leave
    0–49 h idle: it still holds."""
    at = T0 + timedelta(hours=50)
    assert rules.stall_held([T0], at, TH)
    assert not rules.stall_held([T0, T0 + timedelta(hours=20)], at, TH)
    assert rules.stall_held([T0, T0 + timedelta(hours=49)], at, TH)


def test_a_silent_handheld_holding_parcels_is_one_finding_for_its_company():
    """Silent 30 h while holding three parcels: one device_silent finding against the
    company, naming the spell; silent 20 h, or holding nothing: none."""
    now = T0 + timedelta(hours=30)
    (found,) = rules.device_silent(sync(0, 0), 3, 7, ["W1", "W2", "W3"], now, TH)
    assert found.type == "device_silent" and found.parties == (("logistics_company", 3),)
    assert found.subject == ("device", "D1@20261122T080000Z")
    assert found.evidence["parcels"] == 3
    assert rules.device_silent(sync(10, 10), 3, 7, ["W1"], now, TH) == []
    assert rules.device_silent(sync(0, 0), 3, 7, [], now, TH) == []
