"""Regulators' decisions on anomalies, and the appeals of the parties they name.

Every decision leaves an audit entry; a dismissal takes the anomaly's points back by a
reversal record (credit records are only ever appended).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import get_anomaly, reverse_points
from app.credit.models import Anomaly, Appeal
from app.credit.operations import acts_for, audit
from tracecore.access import Principal, Role
from tracecore.errors import Conflict, Forbidden, NotFound, ValidationError


def decide(
    session: Session, actor: Principal, anomaly_id: int, decision: str, reason: str
) -> Anomaly:
    """A regulator confirms or dismisses an open anomaly; a dismissal takes its points back."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    anomaly = get_anomaly(session, anomaly_id)
    actor.require_region(anomaly.region_code, "this anomaly")
    if decision not in ("confirm", "dismiss"):
        raise ValidationError("decision must be confirm or dismiss", field="decision")
    if not reason.strip():
        raise ValidationError("give the reason for the decision", field="reason")
    if anomaly.status != "open":
        raise Conflict(f"the anomaly is already {anomaly.status}")
    if decision == "confirm":
        anomaly.status = "confirmed"
    else:
        _dismiss(session, anomaly)
    anomaly.decided_at = datetime.now(UTC)
    audit(session, actor, f"anomaly.{decision}", "anomaly", anomaly.id, reason)
    session.flush()
    return anomaly


def _dismiss(session: Session, anomaly: Anomaly) -> None:
    anomaly.status = "dismissed"
    reverse_points(session, anomaly, "dismissed", datetime.now(UTC))


def appeal(session: Session, actor: Principal, anomaly_id: int, statement: str) -> Appeal:
    """The party responsible appeals a finding with a statement; a regulator decides."""
    anomaly = get_anomaly(session, anomaly_id)
    if not acts_for(session, actor, anomaly.party_type, anomaly.party_id):
        raise Forbidden("only the party the anomaly names may appeal it")
    if not statement.strip():
        raise ValidationError("the statement is empty", field="statement")
    if anomaly.status == "dismissed":
        raise Conflict("the anomaly is already dismissed")
    pending = sa.select(Appeal.id).where(
        Appeal.anomaly_id == anomaly_id, Appeal.status == "pending"
    )
    if session.scalar(pending) is not None:
        raise Conflict("an appeal of this anomaly is already pending")
    found = Appeal(anomaly_id=anomaly_id, statement=statement.strip()[:2000])
    session.add(found)
    session.flush()
    audit(session, actor, "appeal.file", "anomaly", anomaly_id, statement)
    return found


def decide_appeal(
    session: Session, actor: Principal, appeal_id: int, decision: str, reason: str
) -> Appeal:
    """Uphold (the anomaly is dismissed, its points taken back) or reject an appeal."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    found = session.get(Appeal, appeal_id)
    if found is None:
        raise NotFound(f"no appeal with id {appeal_id}")
    anomaly = session.get(Anomaly, found.anomaly_id)
    actor.require_region(anomaly.region_code, "this appeal")
    if decision not in ("uphold", "reject"):
        raise ValidationError("decision must be uphold or reject", field="decision")
    if not reason.strip():
        raise ValidationError("give the reason for the decision", field="reason")
    if found.status != "pending":
        raise Conflict(f"the appeal is already {found.status}")
    found.status = "upheld" if decision == "uphold" else "rejected"
    found.decided_at = datetime.now(UTC)
    if decision == "uphold" and anomaly.status != "dismissed":
        _dismiss(session, anomaly)
        anomaly.decided_at = found.decided_at
    audit(session, actor, f"appeal.{decision}", "appeal", found.id, reason)
    session.flush()
    return found
