"""The lifecycle replay: re-derive the state of units and parcels, and the violation marks of
their events, from all their events in time order.

The replay reads every event of the units an ingest batch touched (and of their parcels),
and hands what it read on as :class:`ReplayedEvent` rows, so the anomaly rules judge the
same events without reading them again. The rules read the rows by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.codes.models import TraceCode
from app.db import among
from app.events import writers
from app.events.models import Event, Parcel, ParcelItem
from tracecore import lifecycle


class ReplayedEvent(NamedTuple):
    """One stored event as the replay and the anomaly rules read it (a named tuple: one is
    built per event read, and its fields are read in the rules' hot loop). The fields with
    a default are read only when the rules will run (None of these rules reads ``data``)."""

    id: int
    event_id: str
    type: str
    occurred_at: datetime
    serial: str | None
    waybill: str | None
    #: The violation mark as stored before this replay.
    violation: str | None
    party_type: str | None = None
    party_id: int | None = None
    lat: float | None = None
    lon: float | None = None


#: Where each field of :class:`ReplayedEvent` is read from.
_COLUMN_OF = {
    "id": Event.id,
    "event_id": Event.event_id,
    "type": Event.type,
    "occurred_at": Event.occurred_at,
    "serial": Event.serial,
    "waybill": Event.waybill,
    "violation": Event.violation,
    "party_type": Event.party_type,
    "party_id": Event.party_id,
    "lat": sa.func.ST_Y(Event.location).label("lat"),
    "lon": sa.func.ST_X(Event.location).label("lon"),
}
#: Every field of a :class:`ReplayedEvent`, as selected columns (built from the field names,
#: so the two cannot disagree). Other queries of the rules select these and more by name.
EVENT_COLUMNS = tuple(_COLUMN_OF[name] for name in ReplayedEvent._fields)
#: What the lifecycle alone needs: the fields without a default.
_LIFECYCLE_COLUMNS = tuple(
    _COLUMN_OF[name] for name in ReplayedEvent._fields if name not in ReplayedEvent._field_defaults
)


@dataclass
class Replayed:
    """What :func:`replay_subjects` read and derived, for the anomaly rules to reuse."""

    #: The units replayed.
    serials: set[str]
    #: (waybill, serial) of every parcel those units are in.
    items: list[tuple[str, str]]
    #: Every event of those units and parcels (every field read when replayed with scans).
    events: list[ReplayedEvent]
    #: event_id -> why the lifecycle does not allow it, as now stored (absent: lawful).
    violations: dict[str, str]


def read_events(
    session: Session, serials: Iterable[str], waybills: Iterable[str], *, scans: bool = True
) -> list[ReplayedEvent]:
    """Every event naming one of these codes or waybills, each once. Without ``scans``,
    only the fields the lifecycle needs are read."""
    columns = EVENT_COLUMNS if scans else _LIFECYCLE_COLUMNS
    query = sa.select(*columns).where(among(session, Event.serial, serials))
    if waybills:  # two index scans; an OR of two arrays can get a table scan as cached plan
        # UNION ALL: the JSON column has no equality operator. An event names either a code
        # or a waybill; the ids seen guard anyway.
        query = sa.union_all(
            query, sa.select(*columns).where(among(session, Event.waybill, waybills))
        )
    # Core, not the ORM: plain rows, without the ORM's per-row loading.
    events, seen = [], set()
    make = ReplayedEvent
    for row in session.connection().execute(query).all():  # fetchall: one call, not per row
        event = make(*row)
        if event.id not in seen:
            seen.add(event.id)
            events.append(event)
    return events


def replay_subjects(
    session: Session, serials: Iterable[str], *, scans: bool = False
) -> Replayed | None:
    """Re-derive the state of these units, of their parcels, and the violation marks of
    their events, from all their events in time order; store what changed. With ``scans``,
    also read what the anomaly rules need of those events. Returns what was read."""
    serials = set(serials)
    if not serials:
        return None
    db = session.connection()
    writers.lock(session, "trace_codes", serials)  # before reading their parcels: see lock
    items = db.execute(
        sa.select(ParcelItem.waybill, ParcelItem.serial).where(
            among(session, ParcelItem.serial, serials)
        )
    ).all()
    units_of: dict[str, set[str]] = defaultdict(set)
    for waybill, serial in items:
        units_of[waybill].add(serial)
    writers.lock(session, "parcels", units_of)
    events = read_events(session, serials, units_of, scans=scans)

    steps_of_parcel: dict[str, list[lifecycle.Step]] = defaultdict(list)
    steps_of_unit: dict[str, list[lifecycle.Step]] = defaultdict(list)
    parcel_event_ids = set()
    Step = lifecycle.Step
    for event in events:
        step = Step(event.event_id, event.type, event.occurred_at, event.id)
        if event.waybill:
            parcel_event_ids.add(event.event_id)
            steps_of_parcel[event.waybill].append(step)
            for unit in units_of[event.waybill]:
                steps_of_unit[unit].append(step)
        else:
            steps_of_unit[event.serial].append(step)

    violations: dict[str, str] = {}
    parcel_states = {}
    for waybill, steps in steps_of_parcel.items():
        result = lifecycle.replay(steps)
        parcel_states[waybill] = result.state
        violations.update(result.violations)
    unit_states = {}
    for serial in serials:
        result = lifecycle.replay(steps_of_unit.get(serial, []))
        unit_states[serial] = result.state
        for event_id, reason in result.violations.items():
            # A parcel event can be lawful for the parcel yet not for one unit in it.
            where = f" (unit {serial})" if event_id in parcel_event_ids else ""
            violations.setdefault(event_id, reason + where)

    # (id, violation) of the events whose mark changes, in id order
    writers.set_violations(
        session,
        sorted(
            (e.id, violations.get(e.event_id))
            for e in events
            if violations.get(e.event_id) != e.violation
        ),
    )
    writers.set_states(session, TraceCode, TraceCode.serial, unit_states)
    writers.set_states(session, Parcel, Parcel.waybill, parcel_states)
    return Replayed(serials, items, events, violations)
