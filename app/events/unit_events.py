"""Reading a unit's events: its own and those of the parcels it was packed in.

Every reader of a unit's events (the histories, the workspace, the consumer's page, the
lifecycle replay and the anomaly rules) reads them here, as :class:`UnitEvent` rows: deduplicated
by id and in event-time order (``occurred_at``, then ``id``). Points arrive as two numbers,
latitude and longitude, read by the database (:func:`app.db.lat_lon_of`), never as WKB to parse.

An event names either a code or a waybill. A unit's events are two index lookups (by serial,
and by the waybills of its parcels) joined by ``UNION ALL``: an ``OR`` of the two made
PostgreSQL read the whole events table, and ``UNION`` would need an equality operator for the
JSON column. The ids seen guard against an event read twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import among, lat_lon_of
from app.events.models import Event, ParcelItem
from app.parties.models import Courier, LogisticsCompany, Merchant


class UnitEvent(NamedTuple):
    """One stored event as the readers of a unit's events see it."""

    id: int
    event_id: str
    type: str
    occurred_at: datetime
    utc_offset_min: int
    received_at: datetime
    device_id: str
    party_type: str
    party_id: int
    serial: str | None  #: the unit's serial, for an event of the unit itself
    waybill: str | None  #: the parcel's waybill, for an event of a parcel
    data: dict | None  #: None when read with ``data=False``
    violation: str | None
    flag: str | None
    lat: float | None
    lon: float | None
    #: The party's name as stored (a merchant's or a courier's), read with ``names=True``.
    party_name: str | None = None
    #: A courier's logistics company (id and name), read with ``names=True``.
    company_id: int | None = None
    company_name: str | None = None


def _columns(data: bool) -> tuple:
    return (
        Event.id,
        Event.event_id,
        Event.type,
        Event.occurred_at,
        Event.utc_offset_min,
        Event.received_at,
        Event.device_id,
        Event.party_type,
        Event.party_id,
        Event.serial,
        Event.waybill,
        Event.data if data else sa.null().label("data"),
        Event.violation,
        Event.flag,
        *lat_lon_of(Event.location),
    )


def _with_names(events: sa.Subquery) -> sa.Select:
    """``events`` with the names of their merchants, couriers and couriers' companies."""
    return (
        sa.select(
            events,
            sa.func.coalesce(Merchant.name, Courier.name).label("party_name"),
            LogisticsCompany.id.label("company_id"),
            LogisticsCompany.name.label("company_name"),
        )
        .select_from(events)
        .outerjoin(
            Merchant, sa.and_(events.c.party_type == "merchant", Merchant.id == events.c.party_id)
        )
        .outerjoin(
            Courier, sa.and_(events.c.party_type == "courier", Courier.id == events.c.party_id)
        )
        .outerjoin(LogisticsCompany, LogisticsCompany.id == Courier.company_id)
    )


def _unit_statement(data: bool, names: bool) -> sa.Select | sa.CompoundSelect:
    serial = sa.bindparam("serial")
    own = sa.select(*_columns(data)).where(Event.serial == serial)
    of_parcels = sa.select(*_columns(data)).where(
        Event.waybill.in_(sa.select(ParcelItem.waybill).where(ParcelItem.serial == serial))
    )
    both = sa.union_all(own, of_parcels)
    return _with_names(both.subquery("e")) if names else both


def _parcel_statement(data: bool, names: bool) -> sa.Select:
    query = sa.select(*_columns(data)).where(Event.waybill == sa.bindparam("waybill"))
    return _with_names(query.subquery("e")) if names else query


# Statements built once (building and keying them on every read cost more than running
# them), by (data, names).
_FLAGS = [(d, n) for d in (True, False) for n in (True, False)]
_UNIT = {flags: _unit_statement(*flags) for flags in _FLAGS}
_PARCEL = {flags: _parcel_statement(*flags) for flags in _FLAGS}


def _in_time(rows: Iterable) -> list[UnitEvent]:
    """Rows as :class:`UnitEvent`, each id once, in event-time order."""
    seen: set[int] = set()
    out = [UnitEvent(*row) for row in rows if not (row[0] in seen or seen.add(row[0]))]
    out.sort(key=_time_key)
    return out


def _time_key(event: UnitEvent) -> tuple:
    return (event.occurred_at, event.id)


def unit_events(
    session: Session, serial: str, *, data: bool = True, names: bool = False
) -> list[UnitEvent]:
    """A unit's events, its own and its parcels', in event-time order, in one statement.

    With ``names``, each carries the name of its merchant or courier and the courier's company;
    without ``data``, ``data`` is None (the rules and the replay do not read it)."""
    return _in_time(session.connection().execute(_UNIT[data, names], {"serial": serial}))


def parcel_events(
    session: Session, waybill: str, *, data: bool = True, names: bool = False
) -> list[UnitEvent]:
    """A parcel's events in event-time order (``data`` and ``names`` as for :func:`unit_events`)."""
    return _in_time(session.connection().execute(_PARCEL[data, names], {"waybill": waybill}))


def parcels_of(session: Session, serials: Iterable[str]) -> list[tuple[str, str]]:
    """(waybill, serial) of every parcel the units were packed in."""
    serials = list(serials)
    if not serials:
        return []
    query = sa.select(ParcelItem.waybill, ParcelItem.serial).where(
        among(session, ParcelItem.serial, serials)
    )
    return [tuple(row) for row in session.connection().execute(query)]


def events_of(
    session: Session,
    serials: Iterable[str],
    waybills: Iterable[str],
    *,
    data: bool = True,
    names: bool = False,
) -> list[UnitEvent]:
    """The events of these units themselves and of these parcels, each once, in event-time
    order: two index lookups by array (one statement text for any number of keys)."""
    serials, waybills = list(serials), list(waybills)
    parts = [
        sa.select(*_columns(data)).where(among(session, column, keys))
        for column, keys in ((Event.serial, serials), (Event.waybill, waybills))
        if keys
    ]
    if not parts:
        return []
    query = parts[0] if len(parts) == 1 else sa.union_all(*parts)
    if names:
        query = _with_names(query.subquery("e"))
    return _in_time(session.connection().execute(query))


@dataclass
class UnitsEvents:
    """The events of several units (their own and their parcels'), read together."""

    #: Every event read, each once, in event-time order.
    events: list[UnitEvent]
    #: (waybill, serial) of every parcel those units are in.
    items: list[tuple[str, str]]
    #: serial -> its events (its own and its parcels'), in event-time order.
    by_unit: dict[str, list[UnitEvent]] = field(default_factory=dict)


def units_events(
    session: Session, serials: Iterable[str], *, data: bool = True, names: bool = False
) -> UnitsEvents:
    """The events of each of these units, its own and its parcels', in three index lookups
    whatever the number of units (``data`` and ``names`` as for :func:`unit_events`)."""
    serials = list(dict.fromkeys(serials))
    items = parcels_of(session, serials)
    events = events_of(session, serials, {w for w, _ in items}, data=data, names=names)
    units_in: dict[str, list[str]] = defaultdict(list)
    for waybill, serial in items:
        units_in[waybill].append(serial)
    by_unit: dict[str, list[UnitEvent]] = {serial: [] for serial in serials}
    for event in events:  # in time order, so each unit's list is too
        units = units_in.get(event.waybill, ()) if event.waybill else ()
        for serial in units:
            by_unit[serial].append(event)
        if event.serial in by_unit and event.serial not in units:
            by_unit[event.serial].append(event)
    return UnitsEvents(events, items, by_unit)


# -- the ingest run's reader: the replay and the anomaly rules ------------------------------
# They read the events of every unit and parcel an ingest batch touched, after locking them,
# and only the columns they judge by: a slimmer row than UnitEvent, read on the hot path.


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
    #: The fix's reported accuracy radius in metres.
    accuracy_m: float | None = None


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
    "lat": lat_lon_of(Event.location)[0],
    "lon": lat_lon_of(Event.location)[1],
    "accuracy_m": Event.accuracy_m,
}
#: Every field of a :class:`ReplayedEvent`, as selected columns (built from the field names,
#: so the two cannot disagree). Other queries of the rules select these and more by name.
EVENT_COLUMNS = tuple(_COLUMN_OF[name] for name in ReplayedEvent._fields)
#: What the lifecycle alone needs: the fields without a default.
_LIFECYCLE_COLUMNS = tuple(
    _COLUMN_OF[name] for name in ReplayedEvent._fields if name not in ReplayedEvent._field_defaults
)


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
