"""The ingest run's bulk writes, one function per write, with every dialect branch in here.

PostgreSQL gets one statement per batch (binary ``COPY`` for events, ``unnest`` arrays for
updates by key, row locks in key order); SQLite, with one writer at a time, gets plain
executemany statements and needs no locks. The pipeline modules (ingest, replay,
sequences) call these and never ask which database they run on.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.db import Keys, among, is_postgresql, point
from app.events.models import Device, Event, RejectionTally

# -- events: binary COPY --------------------------------------------------------------------

#: The columns of an ingested event row, in the order of :data:`_COPY_EVENTS`.
_EVENT_COLUMNS = (
    "event_id",
    "device_id",
    "seq",
    "type",
    "serial",
    "waybill",
    "occurred_at",
    "utc_offset_min",
    "received_at",
    "location",
    "accuracy_m",
    "party_type",
    "party_id",
    "data",
    "violation",
    "flag",
)
_COPY_EVENTS = f"COPY events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
#: How each column is sent in the binary COPY: what the column type's receive function
#: reads. Strings (varchar) and the JSON text as text, the point as EWKB (bytea: its bytes
#: as they are), timestamps as microseconds (no text to write, nor for the server to parse:
#: ``datetime.isoformat`` alone cost about 5 % of ingest).
_COPY_TYPES = (
    "text",  # event_id
    "text",  # device_id
    "int8",  # seq
    "text",  # type
    "text",  # serial
    "text",  # waybill
    "timestamptz",  # occurred_at
    "int2",  # utc_offset_min
    "timestamptz",  # received_at
    "bytea",  # location: EWKB
    "float8",  # accuracy_m
    "text",  # party_type
    "int4",  # party_id
    "text",  # data: JSON text
    "text",  # violation
    "text",  # flag
)
#: A point as little-endian EWKB: byte order, type (point, with SRID), SRID, x (lon), y (lat)
_EWKB_POINT = struct.Struct("<BIIdd")
_EWKB_POINT_SRID = 0x20000001


def insert_events(session: Session, rows: list[dict]) -> None:
    """Insert event rows (as built by ingest) in one statement.

    On PostgreSQL a binary ``COPY … FROM STDIN`` in the session's transaction: psycopg
    formats the rows in C and the server takes them in one statement, where an executemany
    is one statement per row (pipelined, but still parsed, planned and executed one by one) and an
    ``INSERT … SELECT FROM unnest(arrays)`` spends as long in psycopg's Python array dumper.
    Elsewhere the ORM's bulk insert (an executemany)."""
    if not rows:
        return
    if not is_postgresql(session):
        session.execute(
            sa.insert(Event),
            [r | {"location": r["location"] and point(*r["location"])} for r in rows],
        )
        return
    dumps = orjson.dumps  # the same JSON the column type would store, written faster
    ewkb = _EWKB_POINT.pack
    dbapi = session.connection().connection.driver_connection
    try:
        with dbapi.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
            copy.set_types(_COPY_TYPES)
            for r in rows:
                location = r["location"]
                copy.write_row(
                    (
                        r["event_id"],
                        r["device_id"],
                        r["seq"],
                        r["type"],
                        r["serial"],
                        r["waybill"],
                        r["occurred_at"],
                        r["utc_offset_min"],
                        r["received_at"],
                        None
                        if location is None
                        else ewkb(1, _EWKB_POINT_SRID, 4326, location[1], location[0]),
                        r["accuracy_m"],
                        r["party_type"],
                        r["party_id"],
                        dumps(r["data"]).decode(),
                        r["violation"],
                        r["flag"],
                    )
                )
    except psycopg.Error as exc:
        # What SQLAlchemy would have raised (IntegrityError, OperationalError...): the ingest
        # worker decides on retries by these.
        raise sa.exc.DBAPIError.instance(_COPY_EVENTS, None, exc, psycopg.Error) from exc


# -- updates by key: unnest on PostgreSQL, executemany elsewhere ----------------------------

#: One statement per batch on PostgreSQL: (key, value) pairs as two arrays, joined by key.
_UPDATE_VIOLATIONS = sa.text(
    "UPDATE events SET violation = v.violation "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:values AS text[])) AS v(id, violation) "
    "WHERE events.id = v.id"
)


def set_violations(session: Session, changed: list[tuple[int, str | None]]) -> None:
    """Store new violation marks, (event row id, mark or None), given in id order."""
    if not changed:
        return
    if is_postgresql(session):
        session.execute(
            _UPDATE_VIOLATIONS,
            {"ids": [id_ for id_, _ in changed], "values": [v for _, v in changed]},
        )
        return
    table = Event.__table__  # Core executemany, not the ORM's bulk update by key
    session.connection().execute(
        table.update()
        .where(table.c.id == sa.bindparam("b_id"))
        .values(violation=sa.bindparam("b_violation")),
        [{"b_id": id_, "b_violation": v} for id_, v in changed],
    )


_UPDATE_STATES = {
    (table, key): sa.text(
        f"UPDATE {table} SET state = v.state "
        "FROM unnest(CAST(:keys AS text[]), CAST(:states AS text[])) AS v(key, state) "
        f"WHERE {table}.{key} = v.key AND {table}.state <> v.state"
    )
    for table, key in (("trace_codes", "serial"), ("parcels", "waybill"))
}


def set_states(session: Session, model, key, states: dict[str, str]) -> None:
    """Store the derived lifecycle states of units (``TraceCode``, by serial) or parcels
    (``Parcel``, by waybill); rows already in their state are left alone."""
    if not states:
        return
    # In key order, so that concurrent workers take row locks in the same order.
    ordered = sorted(states.items())
    if is_postgresql(session):
        # One statement; rows already in that state are left alone (no new row version).
        session.execute(
            _UPDATE_STATES[(model.__tablename__, key.key)],
            {"keys": Keys(k for k, _ in ordered), "states": Keys(v for _, v in ordered)},
        )
        return
    current = dict(
        session.execute(sa.select(key, model.state).where(among(session, key, states))).all()
    )
    changed = [{"b_key": k, "b_state": v} for k, v in ordered if current.get(k) != v]
    if changed:
        table = model.__table__
        session.connection().execute(
            table.update()
            .where(table.c[key.key] == sa.bindparam("b_key"))
            .values(state=sa.bindparam("b_state")),
            changed,
        )


#: One statement per batch on PostgreSQL, as for the violations.
_UPDATE_MAX_SEQS = sa.text(
    "UPDATE devices SET max_seq = v.max_seq "
    "FROM unnest(CAST(:ids AS text[]), CAST(:max_seqs AS bigint[])) AS v(id, max_seq) "
    "WHERE devices.id = v.id"
)


def set_max_seqs(session: Session, max_seqs: dict[str, int]) -> None:
    """Store the devices' new highest sequence numbers (in id order: the rows are locked)."""
    if not max_seqs:
        return
    ordered = sorted(max_seqs.items())
    if is_postgresql(session):
        session.execute(
            _UPDATE_MAX_SEQS,
            {"ids": Keys(k for k, _ in ordered), "max_seqs": Keys(v for _, v in ordered)},
        )
    else:
        table = Device.__table__
        session.connection().execute(
            table.update()
            .where(table.c.id == sa.bindparam("b_id"))
            .values(max_seq=sa.bindparam("b_max_seq")),
            [{"b_id": k, "b_max_seq": v} for k, v in ordered],
        )
    # Device objects this session holds (a caller's, or the counterfeit rule's) must not
    # keep the old number: set it as loaded, not as a change to flush.
    for device_id, max_seq in ordered:
        device = session.identity_map.get(identity_key(Device, device_id))
        if device is not None:
            set_committed_value(device, "max_seq", max_seq)


_UPDATE_HEARD = sa.text(
    "UPDATE devices SET last_heard_at = v.heard, synced_through = v.synced "
    "FROM unnest(CAST(:ids AS text[]), CAST(:heard AS timestamptz[]), "
    "CAST(:synced AS timestamptz[])) AS v(id, heard, synced) "
    "WHERE devices.id = v.id"
)


def set_heard(session: Session, heard: dict[str, tuple]) -> None:
    """Store when devices were last heard from and how far they have synced, device id ->
    (last_heard_at, synced_through), in id order (the rows are locked)."""
    if not heard:
        return
    ordered = sorted(heard.items())
    if is_postgresql(session):
        session.execute(
            _UPDATE_HEARD,
            {
                "ids": Keys(k for k, _ in ordered),
                "heard": [v[0] for _, v in ordered],
                "synced": [v[1] for _, v in ordered],
            },
        )
        return
    table = Device.__table__
    session.connection().execute(
        table.update()
        .where(table.c.id == sa.bindparam("b_id"))
        .values(last_heard_at=sa.bindparam("b_heard"), synced_through=sa.bindparam("b_synced")),
        [{"b_id": k, "b_heard": h, "b_synced": s} for k, (h, s) in ordered],
    )


# -- row locks ------------------------------------------------------------------------------

_LOCK = {
    table: sa.text(
        f"SELECT 1 FROM {table} WHERE {key} = ANY(CAST(:keys AS text[])) "
        f"ORDER BY {key} FOR NO KEY UPDATE"
    )
    for table, key in (("trace_codes", "serial"), ("parcels", "waybill"))
}


def lock(session: Session, table: str, keys: Iterable[str]) -> None:
    """Lock these units (or parcels) until the commit, in key order, before reading what
    their replay reads: units first, then their parcels (PostgreSQL; SQLite has one writer
    at a time anyway).

    Workers store in parallel: without this, two batches holding events of the same unit
    (its shelving in one, its sale in the other) could each replay it without the other's
    uncommitted event, and the later commit leave a state and violation marks derived from
    half its history. With it, the second waits for the first's commit, then reads both. A
    batch that packs a unit locks it too, so its parcel is seen by whoever locks it next.
    ``FOR NO KEY UPDATE`` does not block the foreign-key checks of other batches' inserts."""
    keys = sorted(keys)
    if keys and is_postgresql(session):
        session.execute(_LOCK[table], {"keys": Keys(keys)})


# -- rejection tallies: one upsert ------------------------------------------------------------


def add_to_tallies(session: Session, rows: list[dict]) -> None:
    """Add each row's count to its tally (window, address, device id, reason), opening the
    tally if it is new: one ``INSERT ... ON CONFLICT DO UPDATE`` on both databases. Two
    workers adding to the same tallies lock them in the same (key) order: ``rows`` come
    sorted by key, and no key twice."""
    if not rows:
        return
    insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    statement = insert(RejectionTally).values(rows)
    new, tally = statement.excluded, RejectionTally
    statement = statement.on_conflict_do_update(
        index_elements=["window_start", "address", "device_id", "reason"],
        set_={
            "count": tally.count + new["count"],
            "first_seen_at": sa.case(
                (new.first_seen_at < tally.first_seen_at, new.first_seen_at),
                else_=tally.first_seen_at,
            ),
            "last_seen_at": sa.case(
                (new.last_seen_at > tally.last_seen_at, new.last_seen_at),
                else_=tally.last_seen_at,
            ),
        },
    )
    session.execute(statement)


# -- a consumer's check: first of its client, or a later one ---------------------------------


def insert_first_or_later(session: Session, table: sa.Table, values: dict, key: list[str]) -> bool:
    """Insert ``values`` as the first of its ``key`` (``new_client`` true) unless the partial
    unique index on ``key`` where ``new_client`` already holds one, else as a later one; returns
    whether it was the first. One statement decides, so two concurrent first checks of one
    client cannot both be first (reading before inserting let the second fail the index)."""
    dialect = postgresql if is_postgresql(session) else sqlite
    first = (
        dialect.insert(table)
        .values(**values, new_client=True)
        .on_conflict_do_nothing(index_elements=key, index_where=sa.text("new_client"))
    )
    if session.execute(first).rowcount:
        return True
    session.execute(sa.insert(table).values(**values, new_client=False))
    return False
