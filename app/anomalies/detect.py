"""Running the anomaly rules: after each ingest batch, and in the periodic sweep.

The batch runner reads only the recent state of what the batch touched (its units, their
parcels, the couriers who scanned, the merchants who packed), in a handful of queries per
batch, never a scan of history. The rules on one subject (a unit, a parcel) judge its
whole recent trace each time a batch touches it, so a later event (out of order, resent
after a gap, parked and then applied) may equally raise a finding or clear one: what the
rules no longer find is withdrawn (:func:`app.anomalies.findings.reconsider`). The sweep
covers the rules about time passing (:mod:`app.anomalies.deadlines`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.deadlines import sweep
from app.anomalies.findings import reconsider, record_findings
from app.catalog.models import Batch
from app.codes.models import TraceCode
from app.db import among, lat_lon_of
from app.events.models import Device, Event, Parcel, ParcelItem
from app.events.replay import Replayed
from app.events.unit_events import EVENT_COLUMNS, ReplayedEvent, read_events
from app.parties.models import Courier
from tracecore import anomalies as rules
from tracecore.anomalies import NO_DATA, Finding, Order, Scan, Thresholds
from tracecore.credit import Policy
from tracecore.lifecycle import NOT_ENTRUSTED
from tracecore.vocabulary import EventType

__all__ = ["SUBJECT_RULES", "after_ingest", "sweep"]

#: The events that tell brushing: orders packed, and parcels signed for.
_ORDER_EVENTS = (EventType.PACKED, EventType.SIGNED)
#: Every column of an event a rule reads (by name): a replayed event's, and its data.
SCAN_COLUMNS = (*EVENT_COLUMNS, Event.data)
#: The rules judged on one unit or parcel at a time: judged again whenever a batch touches
#: the subject, and their findings withdrawn when they no longer hold.
SUBJECT_RULES = (
    "lifecycle_violation",
    "duplicate_sale",
    "impossible_travel",
    "expired_sale",
    "recalled_sale",
    "empty_parcel",
    "remote_sign",
)


def _scans(session: Session, condition) -> list:
    return list(session.connection().execute(sa.select(*SCAN_COLUMNS).where(condition)))


def _scan(row, violation: str | None, data: dict | None = None) -> Scan:
    return Scan(
        row.event_id,
        row.type,
        row.occurred_at,
        (row.party_type, row.party_id),
        row.lat,
        row.lon,
        violation,
        data or NO_DATA,
        row.accuracy_m,
    )


def after_ingest(
    session: Session,
    accepted: list[dict],
    counterfeits: list[tuple],
    thresholds: Thresholds,
    policy: Policy,
    now: datetime,
    replayed: Replayed | None = None,
) -> int:
    """Run the rules on what one ingest batch touched (``accepted``: its event rows, with
    ``event_id``, ``type``, ``serial``, ``waybill`` and ``party_type``); returns the number
    of new anomalies. ``replayed``: what the batch's lifecycle replay read (with scans) of
    the same units and parcels, so as not to read it twice. The findings on the units and
    parcels judged that the rules no longer find are withdrawn (or, decided, flagged)."""
    findings: list[Finding] = []
    judged: dict[tuple[str, str], list[str]] = {}
    holding: list[Finding] = []
    if accepted:
        holding, judged = _subject_rules(session, accepted, thresholds, replayed)
        findings += holding
        findings += _out_of_area(
            session, [r["event_id"] for r in accepted if r["party_type"] == "courier"]
        )
        findings += _brushing(
            session,
            [r["event_id"] for r in accepted if r["type"] in _ORDER_EVENTS],
            thresholds,
        )
    findings += _counterfeits(session, counterfeits)
    new = len(record_findings(session, findings, policy, now))
    reconsider(session, judged, SUBJECT_RULES, holding, now)
    return new


def _subject_rules(
    session: Session, accepted: list[dict], t: Thresholds, replayed: Replayed | None
) -> tuple[list[Finding], dict[tuple[str, str], list[str]]]:
    """The findings of the rules on every unit and parcel the batch touched, and those
    subjects, (subject type, subject) -> the batch's events that touched them."""
    waybills = {r["waybill"] for r in accepted if r["waybill"]}
    read: list[tuple[ReplayedEvent, str | None]]
    if replayed is not None:
        serials, items = replayed.serials, replayed.items
        violations = replayed.violations
        # with the violations as the replay just stored them
        read = [(e, violations.get(e.event_id)) for e in replayed.events]
        packed = {w for w, _ in items}
        waybills |= packed
        missing = waybills - packed  # parcels with no units: not replayed (none in practice)
        if missing:
            read += [(e, e.violation) for e in read_events(session, (), missing)]
    else:
        serials = {r["serial"] for r in accepted if r["serial"]}
        if waybills:
            serials |= set(
                session.connection().scalars(
                    sa.select(ParcelItem.serial).where(among(session, ParcelItem.waybill, waybills))
                )
            )
        items = (
            session.connection()
            .execute(
                sa.select(ParcelItem.waybill, ParcelItem.serial).where(
                    among(session, ParcelItem.serial, serials)
                )
            )
            .all()
            if serials
            else []
        )
        waybills |= {w for w, _ in items}
        read = [(e, e.violation) for e in read_events(session, serials, waybills)]
    by_serial, by_waybill = defaultdict(list), defaultdict(list)
    parcels_of = defaultdict(set)
    for waybill, serial in items:
        parcels_of[serial].add(waybill)
    # A scan per event of every unit and parcel the batch touched: the hot loop of the rules.
    for e, violation in read:
        scan = Scan(
            e.event_id,
            e.type,
            e.occurred_at,
            (e.party_type, e.party_id),
            e.lat,
            e.lon,
            violation,
            NO_DATA,
            e.accuracy_m,
        )
        if e.waybill:
            by_waybill[e.waybill].append(scan)
        else:
            by_serial[e.serial].append(scan)
    parcels = {
        waybill: (merchant_id, (lat, lon))
        for waybill, merchant_id, lat, lon in (
            session.connection()
            .execute(
                sa.select(Parcel.waybill, Parcel.merchant_id, *lat_lon_of(Parcel.consignee)).where(
                    among(session, Parcel.waybill, waybills)
                )
            )
            .all()
            if waybills
            else ()
        )
    }
    batches = {
        serial: (expires_on, recalled_at)
        for serial, expires_on, recalled_at in session.connection()
        .execute(
            sa.select(TraceCode.serial, Batch.expires_on, Batch.recalled_at)
            .join(Batch, TraceCode.batch_id == Batch.id)
            .where(among(session, TraceCode.serial, serials))
        )
        .all()
    }

    findings: list[Finding] = []
    for serial in serials:
        own = by_serial.get(serial, [])
        mine = parcels_of.get(serial)
        if mine:
            everything = own + [s for w in mine for s in by_waybill[w]]
            merchant_of = {
                s.event_id: parcels[w][0] for w in mine for s in by_waybill[w] if w in parcels
            }
        else:
            everything, merchant_of = own, {}
        findings += rules.lifecycle_violations(("code", serial), own)
        findings += rules.duplicate_sale(serial, own)
        findings += rules.impossible_travel(("code", serial), own, t)
        batch = batches.get(serial)
        if batch is not None:
            expires_on, recalled_at = batch
            findings += rules.expired_sale(serial, own, expires_on)
            if recalled_at is not None:
                findings += rules.recalled_sale(serial, everything, recalled_at, merchant_of)
    for waybill, scans in by_waybill.items():
        parcel = parcels.get(waybill)
        if parcel is None:
            continue
        merchant_id, consignee = parcel
        findings += rules.lifecycle_violations(("waybill", waybill), scans)
        # A courier's scan on a parcel its company was not entrusted with is that courier's
        # violation alone: the parcel's own rules judge the others' scans.
        scans = [s for s in scans if not (s.violation or "").startswith(NOT_ENTRUSTED)]
        findings += rules.impossible_travel(("waybill", waybill), scans, t)
        findings += rules.empty_parcel(waybill, merchant_id, scans, t)
        findings += rules.remote_sign(waybill, scans, consignee, t)
    return findings, _judged(accepted, serials, by_waybill.keys() & parcels.keys(), items)


def _judged(
    accepted: list[dict], serials: set[str], waybills: set[str], items
) -> dict[tuple[str, str], list[str]]:
    """(subject type, subject) -> ids of the batch's events on it: for a unit its own and
    its parcels', for a parcel its own and its units'."""
    own: dict[str, list[str]] = defaultdict(list)
    for r in accepted:
        own[r["waybill"] or r["serial"]].append(r["event_id"])
    related: dict[str, set[str]] = defaultdict(set)
    for waybill, serial in items:
        related[serial].add(waybill)
        related[waybill].add(serial)
    return {
        (kind, key): own.get(key, []) + [e for other in related.get(key, ()) for e in own[other]]
        for kind, keys in (("code", serials), ("waybill", waybills))
        for key in keys
    }


def _out_of_area(session: Session, event_ids: list[str]) -> list[Finding]:
    """Courier scans of this batch outside the courier's service area (a spatial query)."""
    if not event_ids:
        return []
    rows = session.execute(
        sa.select(*SCAN_COLUMNS)
        .join(Courier, sa.and_(Event.party_type == "courier", Event.party_id == Courier.id))
        .where(
            among(session, Event.event_id, event_ids),
            Event.location.is_not(None),
            Courier.service_area.is_not(None),
            sa.func.ST_Within(Event.location, Courier.service_area).is_(sa.false()),
        )
    ).all()
    return [
        rules.out_of_area(
            ("waybill", row.waybill) if row.waybill else ("code", row.serial),
            _scan(row, row.violation, row.data),
        )
        for row in rows
    ]


def _brushing(session: Session, event_ids: list[str], t: Thresholds) -> list[Finding]:
    """Brushing for the merchants whose parcels this batch packed or signed."""
    if not event_ids:
        return []
    touched = session.execute(
        sa.select(
            Parcel.merchant_id, sa.func.min(Event.occurred_at), sa.func.max(Event.occurred_at)
        )
        .join(Parcel, Event.waybill == Parcel.waybill)
        .where(among(session, Event.event_id, event_ids), Event.type.in_(_ORDER_EVENTS))
        .group_by(Parcel.merchant_id)
    ).all()
    findings = []
    for merchant_id, first, last in touched:
        since, until = first - timedelta(hours=24), last + timedelta(hours=1)
        orders = [
            Order(w, at, lat, lon)
            for w, at, lat, lon in session.execute(
                sa.select(
                    Parcel.waybill,
                    Parcel.packed_at,
                    *lat_lon_of(Parcel.consignee),
                ).where(Parcel.merchant_id == merchant_id, Parcel.packed_at.between(since, until))
            )
        ]
        signed = [
            _scan(r, r.violation, r.data)
            for r in _scans(
                session,
                sa.and_(
                    Event.type == EventType.SIGNED,
                    Event.occurred_at.between(since, until),
                    # Parcels signed in the window were packed at most a week before it; the
                    # (merchant_id, packed_at) index makes this a range, not the history.
                    Event.waybill.in_(
                        sa.select(Parcel.waybill).where(
                            Parcel.merchant_id == merchant_id,
                            Parcel.packed_at.between(since - timedelta(days=7), until),
                        )
                    ),
                ),
            )
        ]
        findings += rules.brushing(merchant_id, orders, signed, t)
    return findings


def _counterfeits(session: Session, counterfeits: list[tuple]) -> list[Finding]:
    """Scans of never-issued codes, (device id, codes, event id, place), by known devices."""
    if not counterfeits:
        return []
    owners = {
        d.id: (d.owner_type, d.owner_id)
        for d in session.scalars(
            sa.select(Device).where(among(session, Device.id, {c[0] for c in counterfeits}))
        )
    }
    return [
        rules.unknown_code(owners[device], code, event_id, place)
        for device, codes, event_id, place in counterfeits
        if device in owners
        for code in codes
    ]
