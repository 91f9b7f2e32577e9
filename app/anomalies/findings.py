"""Findings stored as anomalies, and the anomaly queue as each viewer may read it.

A finding (from :mod:`tracecore.anomalies`, run by :mod:`app.anomalies.detect` or filed by a
complaint) becomes an open anomaly against each party responsible, with its provisional
credit record; the same finding found again is left as it is. A finding that names its party
as the victim (``VICTIM_TYPES``: counterfeits of its product) is stored the same way but
without a credit record: it is neither a risk signal nor, once confirmed, a mark.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.credit.models import Anomaly, CreditRecord
from app.db import lat_lon_of, point
from app.events.models import Event
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
    on file are left as they are."""
    wanted: dict[tuple, Finding] = {}
    for f in findings:
        for party in f.parties:
            wanted.setdefault((f.type, f.subject[0], str(f.subject[1]), *party), f)
    if not wanted:
        return []
    subjects = {k[2] for k in wanted}
    existing = {
        tuple(row)
        for row in session.execute(
            sa.select(
                Anomaly.type,
                Anomaly.subject_type,
                Anomaly.subject,
                Anomaly.party_type,
                Anomaly.party_id,
            ).where(Anomaly.subject.in_(subjects))
        )
    }
    new = {k: f for k, f in wanted.items() if k not in existing}
    if not new:
        return []
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
    return anomalies


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
