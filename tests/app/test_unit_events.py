"""The one reader of a unit's events: its own and those of every parcel it was packed in."""

import sqlalchemy as sa
from shapely import wkb

from app.events.models import Event, ParcelItem
from app.events.unit_events import events_of, parcel_events, unit_events, units_events
from tests.app.test_events_api import pack, ship

FIRST, SECOND = "SF1111111111", "SF2222222222"


def _as_read_before(session, serial):
    """(id, type, serial, waybill, lat, lon) of the unit's events as the histories read them
    before the reader: ``serial = … OR waybill IN (its parcels)``, in (occurred_at, id) order,
    the point decoded from well-known binary."""
    waybills = sa.select(ParcelItem.waybill).where(ParcelItem.serial == serial)
    rows = session.execute(
        sa.select(
            Event.id,
            Event.type,
            Event.serial,
            Event.waybill,
            sa.func.ST_AsBinary(Event.location),
        )
        .where(sa.or_(Event.serial == serial, Event.waybill.in_(waybills)))
        .order_by(Event.occurred_at, Event.id)
    )
    out = []
    for id_, kind, own, waybill, raw in rows:
        point = wkb.loads(bytes(raw))
        out.append((id_, kind, own, waybill, point.y, point.x))
    return out


def _unit_in_two_parcels(world):
    """Unit 0 shelved, sold, shipped in FIRST (signed), then packed again into SECOND and
    picked up; unit 1 shelved and packed into SECOND beside it."""
    serial, other = world["serials"][0], world["serials"][1]
    ship(world, FIRST)
    shelf, hh = world["shelf"], world["handheld"]
    shelf.post(shelf.event("shelved", 5, code=other))
    pack(world, SECOND, [serial, other], minutes=300)
    hh.post(hh.event("picked_up", 330, waybill=SECOND, lat=31.7, lon=119.9))
    return serial, other


def test_a_unit_reads_its_own_events_and_both_parcels(world, session):
    """Does the reader give a unit's own events and those of its two parcels, each once, in
    time order, with the same points, as the statement it replaces?"""
    serial, _ = _unit_in_two_parcels(world)
    before = _as_read_before(session, serial)
    assert {w for *_, w, _, _ in before} == {None, FIRST, SECOND}
    assert len(before) == 9  # 2 own, 5 of FIRST, 2 of SECOND

    for names in (False, True):
        read = unit_events(session, serial, names=names)
        assert [(e.id, e.type, e.serial, e.waybill, e.lat, e.lon) for e in read] == before


def test_several_units_read_together_get_the_same_events(world, session):
    """Do units read together (the batch trace) each get what they get read alone, and does
    every reader of events agree on the rows?"""
    serial, other = _unit_in_two_parcels(world)
    together = units_events(session, [serial, other], names=True)
    for unit in (serial, other):
        assert together.by_unit[unit] == unit_events(session, unit, names=True)
        assert [e.id for e in together.by_unit[unit]] == [
            row[0] for row in _as_read_before(session, unit)
        ]
    assert sorted(together.items) == sorted([(FIRST, serial), (SECOND, serial), (SECOND, other)])
    assert events_of(session, [serial], [FIRST, SECOND]) == unit_events(session, serial)
    assert parcel_events(session, SECOND) == [
        e for e in unit_events(session, other) if e.waybill == SECOND
    ]


def test_events_read_with_names_carry_their_parties(world, session):
    """Does a merchant's event carry its name, and a courier's the courier and company?"""
    serial, _ = _unit_in_two_parcels(world)
    read = unit_events(session, serial, names=True)
    merchant = session.execute(
        sa.text("SELECT name FROM merchants WHERE id = :id"), {"id": world["merchant"]}
    ).scalar()
    company = session.execute(
        sa.text("SELECT name FROM logistics_companies WHERE id = :id"), {"id": world["company"]}
    ).scalar()
    shelved = next(e for e in read if e.type == "shelved")
    picked = next(e for e in read if e.type == "picked_up")
    assert (shelved.party_type, shelved.party_name, shelved.company_id) == (
        "merchant",
        merchant,
        None,
    )
    assert (picked.party_type, picked.company_id, picked.company_name) == (
        "courier",
        world["company"],
        company,
    )
    assert picked.party_name is not None
    assert all(e.party_name is None for e in unit_events(session, serial))
    assert all(e.data is None for e in unit_events(session, serial, data=False))
