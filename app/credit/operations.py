"""Credit accounts: the records of each party (责任可究), regulators' sanctions and
commendations, credit commitments, and the red and black lists that follow from the records.

Anomalies are written into these records by :mod:`app.anomalies` (their findings, decisions
and appeals). Every decision leaves an :class:`AuditEntry`; credit records are only ever
appended (the database refuses anything else).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.catalog.models import Batch, BatchStatus
from app.credit.models import Anomaly, AuditEntry, Commitment, CreditRecord
from app.parties.models import PARTY_MODELS, Courier, LogisticsCompany
from tracecore import credit
from tracecore.access import Principal, Role
from tracecore.errors import Forbidden, NotFound, ValidationError
from tracecore.identity import mask_name

COMMITMENT_VERSION = "2026-1"
COMMITMENT_TEXT = (
    "本单位（本人）承诺：依法诚信经营，如实记录和上传产品追溯及物流信息，不刷单炒信、不发空包、"
    "不销售过期、召回或假冒商品，自觉接受监管和社会监督；如有违反，愿承担相应责任并接受失信惩戒。"
    " / We commit to trade honestly, to record and upload true trace and logistics data, not to "
    "fake orders, ship empty parcels or sell expired, recalled or counterfeit goods, and to "
    "accept supervision and the consequences of any breach."
)


def audit(
    session: Session, actor: Principal, action: str, target_type: str, target_id, reason: str
) -> None:
    """Record who decided what, when and why (the database refuses edits)."""
    session.add(
        AuditEntry(
            actor_role=actor.role.value,
            actor_token_id=actor.token_id,
            actor_user_id=actor.user_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            reason=reason[:1000],
            at=datetime.now(UTC),
        )
    )


def get_party(session: Session, party_type: str, party_id: int):
    """The merchant, logistics company or courier named, or NotFound."""
    model = PARTY_MODELS.get(party_type)
    found = session.get(model, party_id) if model else None
    if found is None:
        raise NotFound(f"no {party_type.replace('_', ' ')} with id {party_id}")
    return found


# -- who speaks for a party -----------------------------------------------------------------


def acts_for(session: Session, actor: Principal, party_type: str, party_id: int) -> bool:
    """Whether the caller speaks for the party (a company speaks for its couriers)."""
    if actor.role is Role.MERCHANT:
        return party_type == "merchant" and actor.party_id == party_id
    if actor.role is Role.LOGISTICS:
        if party_type == "logistics_company":
            return actor.party_id == party_id
        if party_type == "courier":
            courier = session.get(Courier, party_id)
            return courier is not None and courier.company_id == actor.party_id
    return False


# -- the regulator's own records and the parties' commitments -------------------------------


def add_record(
    session: Session,
    actor: Principal,
    party_type: str,
    party_id: int,
    kind: str,
    reason: str,
    policy: credit.Policy,
) -> CreditRecord:
    """A regulator's sanction or commendation."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    actor.require_region(get_party(session, party_type, party_id).region_code, "this party")
    if kind not in ("sanction", "commendation"):
        raise ValidationError("kind must be sanction or commendation", field="kind")
    if not reason.strip():
        raise ValidationError("give the reason", field="reason")
    points = policy.sanction_points if kind == "sanction" else policy.commendation_points
    now = datetime.now(UTC)
    record = CreditRecord(
        party_type=party_type,
        party_id=party_id,
        kind=kind,
        points=points,
        reason=reason.strip()[:300],
        effective_at=now,
        created_at=now,
    )
    session.add(record)
    audit(session, actor, f"credit.{kind}", party_type, party_id, reason)
    session.flush()
    return record


def recall_batch(session: Session, actor: Principal, batch_id: int, reason: str) -> Batch:
    """A regulator recalls a batch: from now on the consumer page says so and its sales
    raise recalled_sale. Recalling a recalled batch changes nothing."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    actor.require_region(batch.product.merchant.region_code, "this batch")
    if not reason.strip():
        raise ValidationError("give the reason for the recall", field="reason")
    if batch.status is not BatchStatus.RECALLED:
        batch.status = BatchStatus.RECALLED
        batch.recalled_at = datetime.now(UTC)
        batch.recall_reason = reason.strip()[:500]
        audit(session, actor, "batch.recall", "batch", batch_id, reason)
        session.flush()
    return batch


def sign_commitment(
    session: Session, actor: Principal, party_type: str, party_id: int, policy: credit.Policy
) -> Commitment:
    """The party signs the standard credit commitment (once); it is shown publicly."""
    get_party(session, party_type, party_id)
    if not (actor.is_authority or acts_for(session, actor, party_type, party_id)):
        raise Forbidden("a party signs its own commitment")
    existing = session.scalar(
        sa.select(Commitment).where(
            Commitment.party_type == party_type, Commitment.party_id == party_id
        )
    )
    if existing is not None:
        return existing
    now = datetime.now(UTC)
    signed = Commitment(
        party_type=party_type, party_id=party_id, text_version=COMMITMENT_VERSION, signed_at=now
    )
    session.add(signed)
    session.add(
        CreditRecord(
            party_type=party_type,
            party_id=party_id,
            kind="commitment",
            points=policy.commitment_points,
            reason="credit commitment signed",
            effective_at=now,
            created_at=now,
        )
    )
    audit(session, actor, "commitment.sign", party_type, party_id, COMMITMENT_VERSION)
    session.flush()
    return signed


# -- reading accounts, lists and notices ----------------------------------------------------


@dataclass
class Account:
    party_type: str
    party_id: int
    standing: credit.Standing
    commitment: Commitment | None
    records: list[CreditRecord]


def _scoring_records(rows: list[tuple[CreditRecord, str | None]]) -> list[credit.Record]:
    """Records as the score sees them: a dismissed or withdrawn anomaly and its reversal
    cancel out, and an anomaly counts once, by its latest record (a withdrawn finding found
    again has a second one)."""
    latest = {r.anomaly_id: r.id for r, _ in rows if r.kind == "anomaly"}
    out = []
    for record, status in rows:
        if record.kind == "reversal" or (
            record.kind == "anomaly"
            and (status in ("dismissed", "withdrawn") or latest[record.anomaly_id] != record.id)
        ):
            continue
        out.append(
            credit.Record(
                record.kind,
                record.points,
                record.effective_at,
                record.severity,
                confirmed=status == "confirmed",
            )
        )
    return out


def _of_parties(model, types: set[str], ids: set[int]) -> tuple:
    """WHERE terms for rows of these party types and ids (a superset when several types;
    callers pick their parties out). One party, the public answer's case, compares with
    ``=``: an ``IN`` list is re-rendered on every execution, which cost about as much as
    the query itself."""

    def term(column, values):
        return column == next(iter(values)) if len(values) == 1 else column.in_(values)

    return term(model.party_type, types), term(model.party_id, ids)


def accounts(
    session: Session,
    parties: set[tuple[str, int]],
    policy: credit.Policy,
    now: datetime | None = None,
) -> dict[tuple[str, int], Account]:
    """The credit accounts of several parties, in two queries."""
    now = now or datetime.now(UTC)
    if not parties:
        return {}
    types = {p[0] for p in parties}
    ids = {p[1] for p in parties}
    rows = session.execute(
        sa.select(CreditRecord, Anomaly.status)
        .outerjoin(Anomaly, CreditRecord.anomaly_id == Anomaly.id)
        .where(*_of_parties(CreditRecord, types, ids))
        .order_by(CreditRecord.id)
    ).all()
    by_party = defaultdict(list)
    for record, status in rows:
        by_party[(record.party_type, record.party_id)].append((record, status))
    commitments = {
        (c.party_type, c.party_id): c
        for c in session.scalars(sa.select(Commitment).where(*_of_parties(Commitment, types, ids)))
    }
    return {
        p: Account(
            p[0],
            p[1],
            credit.standing(_scoring_records(by_party[p]), now, policy),
            commitments.get(p),
            [r for r, _ in by_party[p]],
        )
        for p in parties
    }


#: (party, policy) -> (valid until, monotonic clock; records version; account): public
#: answers only.
_PUBLIC_ACCOUNTS: dict[tuple, tuple[float, tuple | None, Account]] = {}


def credit_version(session: Session, party: tuple[str, int]) -> tuple:
    """What changes whenever a party's standing can change other than by time passing: its
    last credit record (records are only appended: a new anomaly, sanction, reversal or
    commitment adds one) and its anomalies' last decision (a confirmation adds none).
    ``app.consumer.scan_pg`` reads the same two values inside its one scan statement."""
    party_type, party_id = party
    last_record = (
        sa.select(sa.func.max(CreditRecord.id))
        .where(CreditRecord.party_type == party_type, CreditRecord.party_id == party_id)
        .scalar_subquery()
    )
    last_decision = (
        sa.select(sa.func.max(Anomaly.decided_at))
        .where(Anomaly.party_type == party_type, Anomaly.party_id == party_id)
        .scalar_subquery()
    )
    return tuple(session.execute(sa.select(last_record, last_decision)).one())


def public_account(
    session: Session,
    party: tuple[str, int],
    policy: credit.Policy,
    max_age_s: float,
    version: tuple | None = None,
) -> Account:
    """A party's account for public answers, reused for up to ``max_age_s`` seconds within
    this process: a product page is asked for far more often than a party's records change,
    and scoring a long record on every scan would cost more than the rest of the page.

    With ``version`` (:func:`credit_version`, read at the request), a kept account is only
    reused while its party's records and decisions are unchanged: the score, grade and
    lists are then those of the records at the request, only their fading with time may be
    up to ``max_age_s`` late."""
    kept = kept_public_account(party, policy, version)
    if kept is not None:
        return kept
    now = time.monotonic()
    found = accounts(session, {party}, policy)[party]
    if len(_PUBLIC_ACCOUNTS) > 10_000:
        _PUBLIC_ACCOUNTS.clear()
    _PUBLIC_ACCOUNTS[(party, id(policy))] = (now + max_age_s, version, found)
    return found


def kept_public_account(
    party: tuple[str, int], policy: credit.Policy, version: tuple | None = None
) -> Account | None:
    """The party's public account when this process still keeps it (and, with ``version``,
    when it was scored from records of that version), else None."""
    cached = _PUBLIC_ACCOUNTS.get((party, id(policy)))
    if (
        cached is not None
        and cached[0] > time.monotonic()
        and (version is None or cached[1] == version)
    ):
        return cached[2]
    return None


def forget_public_accounts() -> None:
    _PUBLIC_ACCOUNTS.clear()


def account(session: Session, party_type: str, party_id: int, policy: credit.Policy) -> Account:
    get_party(session, party_type, party_id)
    return accounts(session, {(party_type, party_id)}, policy)[(party_type, party_id)]


def listed(session: Session, which: str, policy: credit.Policy) -> list[Account]:
    """The parties on the red or black list now (only parties with records can be on one)."""
    parties = {
        tuple(p)
        for p in session.execute(
            sa.select(CreditRecord.party_type, CreditRecord.party_id).distinct()
        )
    }
    found = accounts(session, parties, policy)
    return sorted(
        (a for a in found.values() if a.standing.list == which),
        key=lambda a: (a.party_type, a.party_id),
    )


def public_party(session: Session, party_type: str, party_id: int) -> dict:
    """What may be published about a party: names and USCCs, a courier's name masked."""
    found = get_party(session, party_type, party_id)
    if party_type == "courier":
        company = session.get(LogisticsCompany, found.company_id)
        return {
            "type": party_type,
            "id": party_id,
            "name": mask_name(found.name),
            "company": {"id": company.id, "name": company.name, "uscc": company.uscc},
        }
    return {"type": party_type, "id": party_id, "name": found.name, "uscc": found.uscc}


def notices(session: Session, policy: credit.Policy, limit: int = 100) -> list[dict]:
    """Public risk notices (风险提示), published the moment they are decided: confirmed
    serious anomalies, sanctions, and black-listings."""
    out = []
    for a in session.scalars(
        sa.select(Anomaly)
        .where(Anomaly.status == "confirmed", Anomaly.severity == "serious")
        .order_by(Anomaly.decided_at.desc())
        .limit(limit)
    ):
        out.append(
            {
                "kind": "confirmed_anomaly",
                "type": a.type,
                "at": a.decided_at,
                "party": public_party(session, a.party_type, a.party_id),
            }
        )
    for r in session.scalars(
        sa.select(CreditRecord)
        .where(CreditRecord.kind == "sanction")
        .order_by(CreditRecord.id.desc())
        .limit(limit)
    ):
        out.append(
            {
                "kind": "sanction",
                "reason": r.reason,
                "at": r.created_at,
                "party": public_party(session, r.party_type, r.party_id),
            }
        )
    for acc in listed(session, credit.BLACK, policy):
        out.append(
            {
                "kind": "black_list",
                "score": acc.standing.score,
                "at": None,
                "party": public_party(session, acc.party_type, acc.party_id),
            }
        )
    return out
