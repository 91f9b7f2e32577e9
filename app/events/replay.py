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

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.codes.models import TraceCode
from app.db import among
from app.events import writers
from app.events.models import Parcel, ParcelItem
from app.events.unit_events import ReplayedEvent, read_events
from tracecore import lifecycle


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
    # A courier's event on a parcel its company is not entrusted with keeps its mark (set at
    # ingest: app.events.entrusted) and is left out: it moves neither state nor custody.
    violations: dict[str, str] = {}
    not_entrusted = lifecycle.NOT_ENTRUSTED
    for event in events:
        if event.violation and event.violation.startswith(not_entrusted):
            violations[event.event_id] = event.violation
            continue
        step = Step(event.event_id, event.type, event.occurred_at, event.id)
        if event.waybill:
            parcel_event_ids.add(event.event_id)
            steps_of_parcel[event.waybill].append(step)
            for unit in units_of[event.waybill]:
                steps_of_unit[unit].append(step)
        else:
            steps_of_unit[event.serial].append(step)

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
