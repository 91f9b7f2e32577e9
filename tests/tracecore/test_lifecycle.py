"""The lifecycle state machine and custody, without app or database."""

from datetime import UTC, datetime, timedelta

import pytest

from tracecore.lifecycle import (
    ALLOWED_AFTER,
    NOT_ENTRUSTED,
    Report,
    Step,
    custody,
    replay,
    unentrusted,
)

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
MERCHANT, COURIER, OTHER_COURIER, CONSIGNEE = ("m", 1), ("c", 7), ("c", 8), ("consignee", 0)


def steps(*types, party=None):
    return [Step(f"e{i}", t, T0 + timedelta(hours=i), i, party) for i, t in enumerate(types)]


def test_a_normal_journey_ends_signed_with_no_violation():
    """Does shelf → sale → packing → pickup → transit → delivery → signature replay cleanly?"""
    result = replay(
        steps("shelved", "sold", "packed", "picked_up", "in_transit", "out_for_delivery", "signed")
    )
    assert result.state == "signed" and result.violations == {}


@pytest.mark.parametrize(
    "types,offender,reason",
    [
        (("sold", "sold"), "e1", "sold is not allowed after sold"),
        (("packed", "signed"), "e1", "signed is not allowed after packed"),
        (("packed", "picked_up", "signed", "shelved"), "e3", "shelved is not allowed after signed"),
        (("picked_up",), "e0", "picked_up is not allowed after issued"),
    ],
)
def test_unlawful_events_are_marked_and_do_not_move_the_state(types, offender, reason):
    """Is an event the lifecycle forbids kept out of the state and marked with why?"""
    all_steps = steps(*types)
    result = replay(all_steps)
    assert result.violations == {offender: reason}
    without = replay([s for s in all_steps if s.event_id != offender])
    assert result.state == without.state


def test_a_sale_after_a_return_is_lawful():
    """Can a returned unit be sold again without a violation?"""
    result = replay(steps("sold", "packed", "picked_up", "returned", "sold"))
    assert result.violations == {} and result.state == "sold"


def test_late_events_are_placed_by_event_time():
    """When a handheld's scans arrive a day late, does the replay still follow event time?"""
    arrived = [
        Step("sign", "signed", T0 + timedelta(hours=5), 1),
        Step("pack", "packed", T0, 2),
        Step("pick", "picked_up", T0 + timedelta(hours=1), 3),
    ]
    result = replay(arrived)
    assert result.state == "signed" and result.violations == {}
    assert [s.event_id for s in result.lawful] == ["pack", "pick", "sign"]


def test_ties_in_time_keep_arrival_order():
    """Do two events with the same time keep the order in which they arrived?"""
    same = [Step("b", "sold", T0, 2), Step("a", "shelved", T0, 1)]
    assert [s.event_id for s in replay(same).lawful] == ["a", "b"]


def test_every_event_type_has_rules():
    """Is there no event type the state machine does not know?"""
    from tracecore.vocabulary import EVENT_TYPES

    assert set(ALLOWED_AFTER) == set(EVENT_TYPES)


def test_custody_passes_from_merchant_to_courier_to_consignee():
    """Does custody change at the pickup scan and at the signature, and only there?"""
    journey = [
        Step("s", "sold", T0, 0, MERCHANT),
        Step("p", "packed", T0, 1, MERCHANT),
        Step("u", "picked_up", T0 + timedelta(hours=1), 2, COURIER),
        Step("t", "in_transit", T0 + timedelta(hours=2), 3, COURIER),
        Step("g", "signed", T0 + timedelta(hours=3), 4, COURIER),
    ]
    periods = custody(replay(journey).lawful, MERCHANT, CONSIGNEE)
    assert [(p.party, p.start, p.end) for p in periods] == [
        (MERCHANT, None, T0 + timedelta(hours=1)),
        (COURIER, T0 + timedelta(hours=1), T0 + timedelta(hours=3)),
        (CONSIGNEE, T0 + timedelta(hours=3), None),
    ]


def test_a_hand_over_between_couriers_changes_custody():
    """When another courier scans the parcel in transit, does custody pass to them?"""
    journey = [
        Step("p", "packed", T0, 0, MERCHANT),
        Step("u", "picked_up", T0 + timedelta(hours=1), 1, COURIER),
        Step("t", "in_transit", T0 + timedelta(hours=2), 2, OTHER_COURIER),
    ]
    periods = custody(replay(journey).lawful, MERCHANT, CONSIGNEE)
    assert [p.party for p in periods] == [MERCHANT, COURIER, OTHER_COURIER]


# -- which companies' couriers may report on a parcel ----------------------------------------

A, B, C = 1, 2, 3  # logistics companies; the parcel is A's


def report(n: int, company: int, handover_to: int | None = None) -> Report:
    return Report(f"r{n}", T0 + timedelta(hours=n), n, company, handover_to)


def test_the_parcels_own_company_is_entrusted_and_no_other():
    """Are A's couriers' scans lawful and B's, with no hand-over, marked?"""
    found = unentrusted(A, [report(0, A), report(1, B), report(2, A)])
    assert list(found) == ["r1"] and found["r1"].startswith(NOT_ENTRUSTED)
    assert "company 2 on a parcel of company 1" in found["r1"]


def test_a_hand_over_entrusts_the_receiving_company_from_its_time():
    """B is entrusted from A's hand-over on, not before it; A still may scan after it."""
    reports = [report(0, A), report(1, B), report(2, A, handover_to=B), report(3, B), report(4, A)]
    assert list(unentrusted(A, reports)) == ["r1"]


def test_hand_overs_chain_and_order_of_arrival_does_not_matter():
    """A → B → C: C is entrusted, whatever order the reports come in."""
    reports = [report(3, C), report(2, B, handover_to=C), report(1, A, handover_to=B)]
    assert unentrusted(A, reports) == {}


def test_a_hand_over_by_a_company_not_entrusted_entrusts_nobody():
    found = unentrusted(A, [report(0, B, handover_to=C), report(1, C)])
    assert sorted(found) == ["r0", "r1"]
