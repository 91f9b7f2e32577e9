"""Regulators' decisions on anomalies (one, or a filtered selection in bulk), and the appeals
of the parties they name, of findings and of sanctions.

Due process: a confirmation is dated with the end of the party's response period
(``Anomaly.final_at``, working days); only then does its credit record count publicly, and an
appeal filed before then holds it until the appeal is decided. Every decision leaves an
audit entry (one per finding, in bulk too); a dismissal takes the anomaly's points back by a
reversal record (credit records are only ever appended).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import AnomalyFilter, filtered, get_anomaly, reverse_points
from app.authz import acts_for
from app.credit.models import Anomaly, Appeal, CreditRecord
from app.credit.operations import audit, get_party, sync_lists
from app.outbox import feed
from tracecore import credit
from tracecore.access import Principal, Role
from tracecore.anomalies import VICTIM_TYPES
from tracecore.errors import Conflict, Forbidden, NotFound, ValidationError
from tracecore.workdays import ResponsePeriod

#: The most findings one bulk decision decides (a filter selecting more decides the oldest
#: this many and says how many remain: send the same request again).
BULK_CAP = 5000


def _check(actor: Principal, decision: str, reason: str) -> None:
    actor.require(Role.ADMIN, Role.REGULATOR)
    if decision not in ("confirm", "dismiss"):
        raise ValidationError("decision must be confirm or dismiss", field="decision")
    if not reason.strip():
        raise ValidationError("give the reason for the decision", field="reason")


def decide(
    session: Session,
    actor: Principal,
    anomaly_id: int,
    decision: str,
    reason: str,
    period: ResponsePeriod,
    now: datetime | None = None,
) -> Anomaly:
    """A regulator confirms or dismisses an open anomaly. A confirmation counts publicly
    after the party's response period; a dismissal takes the points back."""
    _check(actor, decision, reason)
    anomaly = get_anomaly(session, anomaly_id)
    actor.require_region(anomaly.region_code, "this anomaly")
    if anomaly.status != "open":
        raise Conflict(f"the anomaly is already {anomaly.status}")
    _apply(session, actor, [anomaly], decision, reason, period, now or datetime.now(UTC))
    return anomaly


def _apply(
    session: Session,
    actor: Principal,
    anomalies: list[Anomaly],
    decision: str,
    reason: str,
    period: ResponsePeriod,
    now: datetime,
) -> None:
    """Decide these open anomalies alike, each audited on its own."""
    if decision == "confirm":
        final_at = period.ends(now)
        for a in anomalies:
            a.status, a.final_at = "confirmed", final_at
    else:
        _dismiss(session, anomalies, now)
    for a in anomalies:
        a.decided_at = now
        audit(session, actor, f"anomaly.{decision}", "anomaly", a.id, reason)
        feed.record_anomaly(session, "decision", a)
    session.flush()


def _dismiss(session: Session, anomalies: list[Anomaly], now: datetime) -> None:
    """Dismiss these anomalies: what each one's credit records still add up to is taken back
    by an appended reversal (a finding withdrawn and reopened has several records)."""
    for a in anomalies:
        a.status = "dismissed"
        reverse_points(session, a, "dismissed", now)


def _reversal(record: CreditRecord, reason: str, now: datetime) -> CreditRecord:
    return CreditRecord(
        party_type=record.party_type,
        party_id=record.party_id,
        kind="reversal",
        points=-record.points,
        severity=record.severity,
        anomaly_id=record.anomaly_id,
        reason=reason[:300],
        effective_at=record.effective_at,
        created_at=now,
    )


# -- in bulk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    #: Open findings selected (at most BULK_CAP), and decided unless this was a preview.
    selected: int
    decided: int
    #: Of the ids sent, those already decided (left as they are).
    skipped: int
    #: Open findings the filter selects beyond the cap, left for the next request.
    remaining: int


def decide_many(
    session: Session,
    actor: Principal,
    decision: str,
    reason: str,
    *,
    ids: list[int] | None = None,
    where: AnomalyFilter | None = None,
    period: ResponsePeriod,
    now: datetime | None = None,
    preview: bool = False,
) -> BulkResult:
    """Confirm or dismiss many findings with one reason: the ids given, or the open findings
    of the regulator's jurisdiction that a queue filter selects (oldest first, at most
    :data:`BULK_CAP`). Each finding is checked against the regulator's jurisdiction and
    audited on its own. An id that does not exist or lies outside the jurisdiction refuses
    the whole request; ids already decided are skipped. ``preview`` decides nothing and
    says how many would be decided."""
    _check(actor, decision, reason)
    if (ids is None) == (where is None):
        raise ValidationError("send either ids or a filter", field="ids")
    skipped = remaining = 0
    if ids is not None:
        wanted = set(ids)
        if not wanted or len(wanted) > BULK_CAP:
            raise ValidationError(f"send 1 to {BULK_CAP} ids", field="ids")
        found = list(
            session.scalars(sa.select(Anomaly).where(Anomaly.id.in_(wanted)).order_by(Anomaly.id))
        )
        missing = wanted - {a.id for a in found}
        if missing:
            raise NotFound(f"no anomaly with id {min(missing)}", field="ids")
        selected = [a for a in found if a.status == "open"]
        skipped = len(found) - len(selected)
    else:
        query = filtered(actor, replace(where, status="open", before=None)).order_by(None)
        total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        selected = list(session.scalars(query.order_by(Anomaly.id).limit(BULK_CAP)))
        remaining = total - len(selected)
    for a in selected:
        actor.require_region(a.region_code, f"anomaly {a.id}")
    if not preview and selected:
        _apply(session, actor, selected, decision, reason, period, now or datetime.now(UTC))
    return BulkResult(len(selected), 0 if preview else len(selected), skipped, remaining)


# -- appeals ----------------------------------------------------------------------------------


def appeal(session: Session, actor: Principal, anomaly_id: int, statement: str, now=None) -> Appeal:
    """The party responsible appeals a finding with a statement; a regulator decides. Filed
    before a confirmation's final date, it holds the confirmation until decided."""
    anomaly = get_anomaly(session, anomaly_id)
    if not acts_for(session, actor, anomaly.party_type, anomaly.party_id):
        raise Forbidden("only the party the anomaly names may appeal it")
    if anomaly.status not in ("open", "confirmed"):
        raise Conflict(f"the anomaly is already {anomaly.status}")
    if anomaly.type in VICTIM_TYPES:
        raise Conflict("this finding names the party as a victim: there is nothing to appeal")
    return _file(session, actor, Appeal.anomaly_id, anomaly_id, statement, now)


def appeal_sanction(
    session: Session, actor: Principal, record_id: int, statement: str, now=None
) -> Appeal:
    """The party sanctioned appeals the sanction; filed within the response period, it
    holds the sanction until a regulator decides."""
    record = session.get(CreditRecord, record_id)
    if record is None or record.kind != "sanction":
        raise NotFound(f"no sanction with id {record_id}")
    if not acts_for(session, actor, record.party_type, record.party_id):
        raise Forbidden("only the party sanctioned may appeal the sanction")
    upheld = sa.select(Appeal.id).where(Appeal.record_id == record_id, Appeal.status == "upheld")
    if session.scalar(upheld) is not None:
        raise Conflict("the sanction is already reversed")
    return _file(session, actor, Appeal.record_id, record_id, statement, now)


def _file(session, actor, column, target_id: int, statement: str, now) -> Appeal:
    if not statement.strip():
        raise ValidationError("the statement is empty", field="statement")
    pending = sa.select(Appeal.id).where(column == target_id, Appeal.status == "pending")
    if session.scalar(pending) is not None:
        raise Conflict("an appeal of this is already pending")
    found = Appeal(
        **{column.key: target_id},
        statement=statement.strip()[:2000],
        created_at=now or datetime.now(UTC),
    )
    session.add(found)
    session.flush()
    target = ("anomaly", target_id) if column.key == "anomaly_id" else ("credit_record", target_id)
    audit(session, actor, "appeal.file", *target, statement)
    return found


def decide_appeal(
    session: Session,
    actor: Principal,
    appeal_id: int,
    decision: str,
    reason: str,
    policy: credit.Policy,
    now: datetime | None = None,
) -> Appeal:
    """Uphold (the anomaly is dismissed, or the sanction reversed, its points taken back)
    or reject an appeal. A rejected appeal that held a decision past its final date makes
    it public now; the party's list entries follow at once."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    now = now or datetime.now(UTC)
    found = session.get(Appeal, appeal_id)
    if found is None:
        raise NotFound(f"no appeal with id {appeal_id}")
    if found.anomaly_id is not None:
        anomaly = session.get(Anomaly, found.anomaly_id)
        party, region = (anomaly.party_type, anomaly.party_id), anomaly.region_code
    else:
        anomaly = None
        record = session.get(CreditRecord, found.record_id)
        party = (record.party_type, record.party_id)
        region = get_party(session, *party).region_code
    actor.require_region(region, "this appeal")
    if decision not in ("uphold", "reject"):
        raise ValidationError("decision must be uphold or reject", field="decision")
    if not reason.strip():
        raise ValidationError("give the reason for the decision", field="reason")
    if found.status != "pending":
        raise Conflict(f"the appeal is already {found.status}")
    found.status = "upheld" if decision == "uphold" else "rejected"
    found.decided_at = now
    if decision == "uphold" and anomaly is not None and anomaly.status != "dismissed":
        _dismiss(session, [anomaly], now)
        anomaly.decided_at = now
        feed.record_anomaly(session, "decision", anomaly)
    elif decision == "uphold" and anomaly is None:
        session.add(_reversal(record, f"appeal upheld: {record.reason}", now))
    audit(session, actor, f"appeal.{decision}", "appeal", found.id, reason)
    session.flush()
    sync_lists(session, policy, now, {party})
    return found
