"""The sweep's rules about time passing: stalled and late parcels, and silent handhelds.

They judge only what the service can know. A parcel's deadline (its promised time, or the
end of the allowed idle time) is judged once every handheld that may hold it has delivered
its events past the deadline (:mod:`tracecore.sync`): the handheld of the parcel's last
courier scan; for a parcel no courier has scanned yet, every handheld of its company heard
from lately. Until then the parcel is awaiting sync. A handheld holding parcels and silent
for long is one finding for its company, not one per parcel.

The sweep also judges again the time-based findings on file: a ``late_delivery`` whose
parcel turns out signed in time, a ``stalled_parcel`` whose parcel turns out scanned in
time, are withdrawn (or, decided, flagged for review).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import record_findings, withdraw
from app.credit.models import Anomaly
from app.db import among
from app.events.models import Device, Event, Parcel, SequenceGap
from app.parties.models import Courier
from tracecore import anomalies as rules
from tracecore.anomalies import Finding, Thresholds
from tracecore.credit import Policy
from tracecore.sync import DeviceSync
from tracecore.vocabulary import WITH_COURIER, EventType


def sweep(
    session: Session, thresholds: Thresholds, policy: Policy, now: datetime | None = None
) -> int:
    """The rules about time passing, and the time-based findings on file judged again.
    Returns the number of new anomalies."""
    now = now or datetime.now(UTC)
    fleet = _Handhelds(session, now, thresholds)
    findings = _stalled(session, fleet, thresholds, now)
    findings += _late(session, fleet, now)
    findings += _silent(session, fleet, thresholds, now)
    new = len(record_findings(session, findings, policy, now))
    _recheck_late(session, now)
    _recheck_stalled(session, thresholds, now)
    session.flush()
    return new


class _Handhelds:
    """What the service knows of the couriers' handhelds, read once per sweep."""

    def __init__(self, session: Session, now: datetime, t: Thresholds) -> None:
        self.session = session
        # A gap asked for again lately holds judgement back; one that has stayed open for
        # longer than a device may be silent no longer does (its events are lost).
        recent = now - timedelta(hours=t.device_silent_hours)
        gaps = set(
            session.scalars(
                sa.select(SequenceGap.device_id).where(SequenceGap.detected_at >= recent)
            )
        )
        self.sync: dict[str, DeviceSync] = {}
        self.courier_of: dict[str, int] = {}
        self.company_of: dict[str, int] = {}
        self.of_company: dict[int, list[DeviceSync]] = defaultdict(list)
        for device_id, heard, synced, courier_id, company_id in session.execute(
            sa.select(
                Device.id,
                Device.last_heard_at,
                Device.synced_through,
                Courier.id,
                Courier.company_id,
            )
            .join(Courier, sa.and_(Device.owner_type == "courier", Device.owner_id == Courier.id))
            .where(Device.disabled_at.is_(None))
        ):
            sync = DeviceSync(device_id, heard, synced, device_id in gaps)
            self.sync[device_id] = sync
            self.courier_of[device_id], self.company_of[device_id] = courier_id, company_id
            # Handhelds heard from lately may hold a parcel none has scanned yet.
            if heard is not None and not sync.silent(now, t.device_silent_hours):
                self.of_company[company_id].append(sync)

    def holders_of(self, waybills: set[str]) -> dict[str, str]:
        """waybill -> the device of its last courier scan (event time order)."""
        if not waybills:
            return {}
        latest: dict[str, tuple[datetime, int, str]] = {}
        for waybill, device_id, at, row_id in self.session.execute(
            sa.select(Event.waybill, Event.device_id, Event.occurred_at, Event.id).where(
                among(self.session, Event.waybill, waybills), Event.party_type == "courier"
            )
        ):
            if waybill not in latest or (at, row_id) > latest[waybill][:2]:
                latest[waybill] = (at, row_id, device_id)
        return {w: v[2] for w, v in latest.items()}

    def holding(self, waybill: str, holders: dict[str, str], company_id: int):
        """The devices that may hold the parcel now."""
        device = holders.get(waybill)
        if device is None:
            return tuple(self.of_company.get(company_id, ()))
        sync = self.sync.get(device)
        return (sync,) if sync is not None else ()


def _last_scans() -> sa.Subquery:
    return (
        sa.select(Event.waybill, sa.func.max(Event.occurred_at).label("last"))
        .group_by(Event.waybill)
        .subquery()
    )


def _signatures() -> sa.Subquery:
    return (
        sa.select(Event.waybill, sa.func.min(Event.occurred_at).label("at"))
        .where(Event.type == EventType.SIGNED, Event.violation.is_(None))
        .group_by(Event.waybill)
        .subquery()
    )


def _stalled(session: Session, fleet: _Handhelds, t: Thresholds, now: datetime) -> list[Finding]:
    last_scan = _last_scans()
    stale = now - timedelta(hours=t.stalled_hours)
    rows = session.execute(
        sa.select(Parcel.waybill, Parcel.logistics_company_id, Parcel.state, last_scan.c.last)
        .join(last_scan, last_scan.c.waybill == Parcel.waybill)
        .where(Parcel.state.in_(sorted(WITH_COURIER)), last_scan.c.last < stale)
    ).all()
    holders = fleet.holders_of({r.waybill for r in rows})
    findings: list[Finding] = []
    for waybill, company, state, last in rows:
        held = fleet.holding(waybill, holders, company)
        findings += rules.stalled_parcel(waybill, company, state, last, now, t, held)
    return findings


def _late(session: Session, fleet: _Handhelds, now: datetime) -> list[Finding]:
    signed_at = _signatures()
    rows = session.execute(
        sa.select(Parcel.waybill, Parcel.logistics_company_id, Parcel.promised_by, signed_at.c.at)
        .outerjoin(signed_at, signed_at.c.waybill == Parcel.waybill)
        .where(
            Parcel.promised_by.is_not(None),
            Parcel.promised_by < now,
            sa.or_(signed_at.c.at.is_(None), signed_at.c.at > Parcel.promised_by),
        )
    ).all()
    holders = fleet.holders_of({r.waybill for r in rows if r.at is None})
    findings: list[Finding] = []
    for waybill, company, promised, signed in rows:
        held = () if signed is not None else fleet.holding(waybill, holders, company)
        findings += rules.late_delivery(waybill, company, promised, signed, now, held)
    return findings


def _silent(session: Session, fleet: _Handhelds, t: Thresholds, now: datetime) -> list[Finding]:
    """Silent handhelds that hold parcels (their last courier scan is theirs)."""
    silent = {d for d, sync in fleet.sync.items() if sync.silent(now, t.device_silent_hours)}
    if not silent:
        return []
    candidates = set(
        session.scalars(
            sa.select(Event.waybill)
            .join(Parcel, Parcel.waybill == Event.waybill)
            .where(
                among(session, Event.device_id, silent),
                Parcel.state.in_(sorted(WITH_COURIER)),
            )
            .distinct()
        )
    )
    held: dict[str, list[str]] = defaultdict(list)
    for waybill, device in fleet.holders_of(candidates).items():
        if device in silent:
            held[device].append(waybill)
    findings: list[Finding] = []
    for device, waybills in sorted(held.items()):
        findings += rules.device_silent(
            fleet.sync[device],
            fleet.company_of[device],
            fleet.courier_of[device],
            waybills,
            now,
            t,
        )
    return findings


# -- the time-based findings on file, judged again -----------------------------------------


def _on_file(session: Session, type_: str) -> list[Anomaly]:
    return list(
        session.scalars(
            sa.select(Anomaly).where(
                Anomaly.type == type_,
                Anomaly.subject_type == "waybill",
                Anomaly.status.in_(("open", "confirmed")),
            )
        )
    )


def _recheck_late(session: Session, now: datetime) -> None:
    """A late parcel whose signature in time has arrived since: withdrawn."""
    found = {a.subject: a for a in _on_file(session, "late_delivery")}
    if not found:
        return
    for waybill, promised, event_id, signed in session.execute(
        sa.select(Parcel.waybill, Parcel.promised_by, Event.event_id, Event.occurred_at)
        .join(Event, Event.waybill == Parcel.waybill)
        .where(
            among(session, Parcel.waybill, found),
            Event.type == EventType.SIGNED,
            Event.violation.is_(None),
            Event.occurred_at <= Parcel.promised_by,
        )
    ):
        reason = (
            f"signed at {signed.isoformat()}, within the promised time "
            f"({promised.isoformat()}); the signature arrived after the finding"
        )
        withdraw(session, found[waybill], reason, [event_id], now)


def _recheck_stalled(session: Session, t: Thresholds, now: datetime) -> None:
    """A stalled parcel whose scans, as now known, leave no idle stretch longer than
    allowed up to when the finding was made: withdrawn."""
    found = {a.subject: a for a in _on_file(session, "stalled_parcel")}
    if not found:
        return
    scans: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for waybill, at, event_id, type_ in session.execute(
        sa.select(Event.waybill, Event.occurred_at, Event.event_id, Event.type).where(
            among(session, Event.waybill, found), Event.party_type == "courier"
        )
    ):
        scans[waybill].append((at, event_id, type_))
    for waybill, anomaly in found.items():
        # Custody ends with the signature: idle time after it is no stall.
        signed = [at for at, _, type_ in scans[waybill] if type_ == EventType.SIGNED]
        until = min([anomaly.detected_at, *signed])
        times = [at for at, _, _ in scans[waybill]]
        if rules.stall_held(times, until, t):
            continue
        since = datetime.fromisoformat(anomaly.evidence.get("last_scan") or "0001-01-01T00:00Z")
        cleared = sorted((at, e) for at, e, _ in scans[waybill] if since < at <= until)
        reason = (
            f"scanned at {cleared[-1][0].isoformat() if cleared else '?'}: no stretch "
            f"without a scan of more than {t.stalled_hours:g} h before the finding"
        )
        withdraw(session, anomaly, reason, [e for _, e in cleared], now)
