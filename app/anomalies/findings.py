"""Findings stored as anomalies, and the anomaly queue as each viewer may read it.

A finding (from :mod:`tracecore.anomalies`, run by :mod:`app.anomalies.detect` or filed by a
complaint) becomes an open anomaly against each party responsible, with its provisional
credit record; the same finding found again is left as it is (its evidence brought up to
date while open).

Findings follow the evidence: when the rules judge a subject again and no longer find what
an anomaly says, :func:`withdraw` withdraws it (open), with the reason and the events that
cleared it, its points taken back by an appended reversal and an audit entry by the system;
a decided (confirmed) anomaly is never undone by the machine but flagged for review. A
withdrawn finding that the rules find again is reopened.
A finding that names its party as the victim (``VICTIM_TYPES``: counterfeits of its product)
is stored the same way but without a credit record: it is neither a risk signal nor, once
confirmed, a mark.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.credit.models import Anomaly, AuditEntry, CreditRecord
from app.db import among, lat_lon_of, point
from app.events.models import Event
from app.outbox import feed
from app.parties.models import PARTY_MODELS, Courier
from tracecore import credit
from tracecore.access import Principal, Role
from tracecore.anomalies import VICTIM_TYPES, Finding
from tracecore.errors import NotFound


def record_findings(
    session: Session, findings: list[Finding], policy: credit.Policy, now: datetime
) -> list[Anomaly]:
    """Store new findings as open anomalies, one per rule, subject and party, each with its
    provisional credit record (none for a victim's: :data:`VICTIM_TYPES`); findings already
    on file are left as they are, but a withdrawn one found again is reopened (and counted
    as new)."""
    wanted = _by_key(findings)
    if not wanted:
        return []
    subjects = {k[2] for k in wanted}
    existing = {
        tuple(row[:5]): (row.id, row.status)
        for row in session.execute(
            sa.select(
                Anomaly.type,
                Anomaly.subject_type,
                Anomaly.subject,
                Anomaly.party_type,
                Anomaly.party_id,
                Anomaly.id,
                Anomaly.status,
            ).where(Anomaly.subject.in_(subjects))
        )
    }
    new = {k: f for k, f in wanted.items() if k not in existing}
    reopened = [
        _reopen(session, session.get(Anomaly, existing[k][0]), f, now)
        for k, f in sorted(wanted.items())
        if existing.get(k, (None, None))[1] == "withdrawn"
    ]
    if not new:
        if reopened:
            _add_records(session, reopened, policy, now)
            for a in reopened:
                feed.record_anomaly(session, "finding", a)
        return reopened
    regions = _regions(session, {(k[3], k[4]) for k in new})
    places = _places(session, {f.evidence.get("event_ids", [None])[-1] for f in new.values()})
    anomalies = []
    for (type_, subject_type, subject, party_type, party_id), f in sorted(new.items()):
        anomaly = Anomaly(
            type=type_,
            severity=f.severity,
            status="open",
            subject_type=subject_type,
            subject=subject,
            party_type=party_type,
            party_id=party_id,
            region_code=regions.get((party_type, party_id), "000000"),
            location=point(*_place(f, places)),
            evidence=f.evidence,
            detected_at=now,
        )
        session.add(anomaly)
        anomalies.append(anomaly)
    session.flush()
    _add_records(session, anomalies + reopened, policy, now)
    for a in anomalies + reopened:
        feed.record_anomaly(session, "finding", a)
    return anomalies + reopened


def _by_key(findings: list[Finding]) -> dict[tuple, Finding]:
    """Findings by anomaly key: (type, subject type, subject, party type, party id)."""
    wanted: dict[tuple, Finding] = {}
    for f in findings:
        for party in f.parties:
            wanted.setdefault((f.type, f.subject[0], str(f.subject[1]), *party), f)
    return wanted


def _add_records(
    session: Session, anomalies: list[Anomaly], policy: credit.Policy, now: datetime
) -> None:
    """Each anomaly's provisional credit record."""
    session.add_all(
        [
            CreditRecord(
                party_type=a.party_type,
                party_id=a.party_id,
                kind="anomaly",
                points=policy.anomaly_points[a.severity],
                severity=a.severity,
                reason=f"{a.type} ({a.subject_type} {a.subject})",
                anomaly_id=a.id,
                effective_at=now,
                created_at=now,
            )
            for a in anomalies
            if a.type not in VICTIM_TYPES
        ]
    )
    session.flush()


def _reopen(session: Session, anomaly: Anomaly, f: Finding, now: datetime) -> Anomaly:
    """A withdrawn finding that the rules find again: open once more, on the new evidence."""
    _system_audit(
        session,
        "anomaly.reopen",
        anomaly.id,
        "found again on later evidence; withdrawn before: "
        + str((anomaly.withdrawal or {}).get("reason", "")),
        now,
    )
    anomaly.status = "open"
    anomaly.withdrawn_at = None
    anomaly.withdrawal = None
    anomaly.evidence = f.evidence
    anomaly.detected_at = now
    return anomaly


# -- findings the evidence no longer supports ----------------------------------------------


def reconsider(
    session: Session,
    judged: dict[tuple[str, str], list[str]],
    types: tuple[str, ...],
    holding: list[Finding],
    now: datetime,
) -> int:
    """The rules of ``types`` judged these subjects again ((subject type, subject) -> ids
    of the events that made them do so) and found ``holding``: withdraw (or flag) every
    open (or confirmed) anomaly of those types on those subjects that is not among them,
    and bring the evidence of open ones that still hold up to date. Returns how many were
    withdrawn or flagged."""
    if not judged:
        return 0
    holds = _by_key(holding)
    rows = session.scalars(
        sa.select(Anomaly).where(
            among(session, Anomaly.subject, {subject for _, subject in judged}),
            Anomaly.type.in_(types),
            Anomaly.status.in_(("open", "confirmed")),
        )
    ).all()
    changed = 0
    for a in rows:
        events = judged.get((a.subject_type, a.subject))
        if events is None:
            continue
        f = holds.get((a.type, a.subject_type, a.subject, a.party_type, a.party_id))
        if f is None:
            reason = f"judged again on later events: the {a.type} rule no longer finds it"
            changed += withdraw(session, a, reason, events, now)
        elif a.status == "open" and a.evidence != f.evidence:
            a.evidence = f.evidence
    session.flush()
    return changed


def withdraw(
    session: Session, anomaly: Anomaly, reason: str, event_ids: list[str], now: datetime
) -> bool:
    """The evidence no longer supports ``anomaly``: an open one is withdrawn (its points
    taken back by an appended reversal, an audit entry by the system); a confirmed one is
    flagged for a regulator's review instead (once); a dismissed or withdrawn one is left.
    Returns whether anything changed."""
    cleared = {"reason": reason[:300], "event_ids": list(dict.fromkeys(event_ids))[:20]}
    if anomaly.status == "open":
        anomaly.status = "withdrawn"
        anomaly.withdrawn_at = now
        anomaly.withdrawal = cleared
        reverse_points(session, anomaly, "withdrawn", now)
        _system_audit(session, "anomaly.withdraw", anomaly.id, reason, now)
        feed.record_anomaly(session, "decision", anomaly)
        return True
    if anomaly.status == "confirmed" and anomaly.review_flag is None:
        anomaly.flagged_at = now
        anomaly.review_flag = cleared
        _system_audit(session, "anomaly.flag", anomaly.id, reason, now)
        return True
    return False


def reverse_points(session: Session, anomaly: Anomaly, why: str, now: datetime) -> None:
    """Take an anomaly's points back with an appended reversal (records are append-only):
    whatever its records still add up to, dated as its latest record."""
    records = session.scalars(
        sa.select(CreditRecord)
        .where(CreditRecord.anomaly_id == anomaly.id)
        .order_by(CreditRecord.id)
    ).all()
    latest = next((r for r in reversed(records) if r.kind == "anomaly"), None)
    net = sum(r.points for r in records if r.kind in ("anomaly", "reversal"))
    if latest is None or net == 0:
        return
    session.add(
        CreditRecord(
            party_type=latest.party_type,
            party_id=latest.party_id,
            kind="reversal",
            points=-net,
            severity=latest.severity,
            anomaly_id=anomaly.id,
            reason=f"{why}: {latest.reason}"[:300],
            effective_at=latest.effective_at,
            created_at=now,
        )
    )


def _system_audit(session: Session, action: str, anomaly_id: int, reason: str, now) -> None:
    """An audit entry by the service itself (actor role ``system``)."""
    session.add(
        AuditEntry(
            actor_role="system",
            action=action,
            target_type="anomaly",
            target_id=str(anomaly_id),
            reason=reason[:1000],
            at=now,
        )
    )


def _place(f: Finding, places: dict) -> tuple[float | None, float | None]:
    """Where a finding happened: its last evidence event, or a point in its evidence."""
    last = (f.evidence.get("event_ids") or [None])[-1]
    if last in places:
        return places[last]
    return f.evidence.get("lat"), f.evidence.get("lon")


def _regions(session: Session, parties: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    ids = defaultdict(set)
    for kind, pid in parties:
        ids[kind].add(pid)
    out = {}
    for kind, model in PARTY_MODELS.items():
        if ids[kind]:
            for pid, region in session.execute(
                sa.select(model.id, model.region_code).where(model.id.in_(ids[kind]))
            ):
                out[(kind, pid)] = region
    return out


def _places(session: Session, event_ids: set) -> dict[str, tuple[float, float]]:
    event_ids.discard(None)
    if not event_ids:
        return {}
    rows = session.execute(
        sa.select(Event.event_id, *lat_lon_of(Event.location)).where(
            Event.event_id.in_(event_ids), Event.location.is_not(None)
        )
    )
    return {eid: (lat, lon) for eid, lat, lon in rows}


# -- the queue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnomalyFilter:
    """What the anomaly queue is narrowed to; every field is optional."""

    type: str | None = None
    status: str | None = None
    severity: str | None = None
    party_type: str | None = None
    party_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: A region-code prefix (2, 4 or 6 digits) of the responsible party.
    region_code: str | None = None
    #: A WGS 84 polygon (WKT): anomalies whose place lies within it (a spatial query).
    within_wkt: str | None = None
    before: int | None = None


def visible_anomalies(viewer: Principal, session: Session | None = None) -> sa.Select:
    """The anomalies ``viewer`` may see, newest first: authorities those of their
    jurisdiction, a merchant its own, a company its own and its couriers'."""
    query = sa.select(Anomaly).order_by(Anomaly.id.desc())
    if viewer.is_authority:
        if viewer.jurisdiction:
            query = query.where(
                sa.or_(*(Anomaly.region_code.startswith(p) for p in viewer.jurisdiction))
            )
        return query
    if viewer.role is Role.MERCHANT:
        return query.where(Anomaly.party_type == "merchant", Anomaly.party_id == viewer.party_id)
    couriers = sa.select(Courier.id).where(Courier.company_id == viewer.party_id)
    return query.where(
        sa.or_(
            sa.and_(Anomaly.party_type == "logistics_company", Anomaly.party_id == viewer.party_id),
            sa.and_(Anomaly.party_type == "courier", Anomaly.party_id.in_(couriers)),
        )
    )


def find_anomalies(
    session: Session, viewer: Principal, f: AnomalyFilter, limit: int = 50
) -> list[Anomaly]:
    """One page of the anomaly queue, newest first."""
    return list(session.scalars(filtered(viewer, f).limit(limit)))


def filtered(viewer: Principal, f: AnomalyFilter) -> sa.Select:
    """The anomalies ``viewer`` may see that ``f`` selects, newest first (a query)."""
    query = visible_anomalies(viewer)
    for name in ("type", "status", "severity", "party_type", "party_id"):
        value = getattr(f, name)
        if value is not None and value != "":
            query = query.where(getattr(Anomaly, name) == value)
    if f.region_code:
        query = query.where(Anomaly.region_code.startswith(f.region_code))
    if f.since is not None:
        query = query.where(Anomaly.detected_at >= f.since)
    if f.until is not None:
        query = query.where(Anomaly.detected_at < f.until)
    if f.within_wkt:
        area = sa.func.ST_GeomFromText(f.within_wkt, 4326)
        query = query.where(
            Anomaly.location.is_not(None), sa.func.ST_Within(Anomaly.location, area).is_(sa.true())
        )
    if f.before is not None:
        query = query.where(Anomaly.id < f.before)
    return query


def get_anomaly(session: Session, anomaly_id: int) -> Anomaly:
    """An anomaly by id, or NotFound (who may see it is the caller's check)."""
    anomaly = session.get(Anomaly, anomaly_id)
    if anomaly is None:
        raise NotFound(f"no anomaly with id {anomaly_id}")
    return anomaly
