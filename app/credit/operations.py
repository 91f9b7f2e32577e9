"""Credit accounts: the records of each party (责任可究), regulators' sanctions and
commendations, credit commitments, and the red and black lists that follow from the records.

Anomalies are written into these records by :mod:`app.anomalies` (their findings, decisions
and appeals). Every decision leaves an :class:`AuditEntry`; credit records are only ever
appended (the database refuses anything else).

Due process (docs/anomalies-and-credit.md): public answers (the grade and score, the lists,
notices, and the consequences) count only decided, final records. An undecided finding is a
risk signal shown to the party and regulators; a confirmed finding or a sanction counts once
the party's response period has passed without an appeal pending. The dated list entries and
notices are :mod:`app.credit.lists`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.authz import acts_for
from app.catalog.models import Batch, BatchStatus
from app.credit.models import Anomaly, Appeal, AuditEntry, Commitment, CreditRecord, ListEntry
from app.outbox import feed
from app.parties.models import PARTY_MODELS, LogisticsCompany
from tracecore import credit
from tracecore.access import Principal, Role
from tracecore.errors import NotFound, ValidationError
from tracecore.identity import mask_name
from tracecore.workdays import ResponsePeriod

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


# -- the regulator's own records and the parties' commitments -------------------------------


def add_record(
    session: Session,
    actor: Principal,
    party_type: str,
    party_id: int,
    kind: str,
    reason: str,
    policy: credit.Policy,
    period: ResponsePeriod,
    now: datetime | None = None,
) -> CreditRecord:
    """A regulator's sanction or commendation. A sanction counts publicly once the party's
    response period has passed (an appeal filed within it holds it until decided); a
    commendation at once."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    authz.require(session, actor, get_party(session, party_type, party_id), "this party")
    if kind not in ("sanction", "commendation"):
        raise ValidationError("kind must be sanction or commendation", field="kind")
    if not reason.strip():
        raise ValidationError("give the reason", field="reason")
    points = policy.sanction_points if kind == "sanction" else policy.commendation_points
    now = now or datetime.now(UTC)
    record = CreditRecord(
        party_type=party_type,
        party_id=party_id,
        kind=kind,
        points=points,
        reason=reason.strip()[:300],
        effective_at=now,
        created_at=now,
        public_from=period.ends(now) if kind == "sanction" else now,
    )
    session.add(record)
    audit(session, actor, f"credit.{kind}", party_type, party_id, reason)
    session.flush()
    party = public_party(session, party_type, party_id)
    feed.record(
        session,
        "decision",
        f"credit.{kind}",
        feed.credit_record_data(session, record, party),
        party=(party_type, party_id),
        region_code=get_party(session, party_type, party_id).region_code[:6],
        merchant_id=party_id if party_type == "merchant" else None,
    )
    if kind == "commendation":  # final at once: it may enter or leave a list now
        sync_lists(session, policy, now, {(party_type, party_id)})
    return record


def recall_batch(session: Session, actor: Principal, batch_id: int, reason: str) -> Batch:
    """A regulator recalls a batch: from now on the consumer page says so and its sales
    raise recalled_sale. Recalling a recalled batch changes nothing."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    authz.require(session, actor, batch, "this batch", parties=False)
    if not reason.strip():
        raise ValidationError("give the reason for the recall", field="reason")
    if batch.status is not BatchStatus.RECALLED:
        batch.status = BatchStatus.RECALLED
        batch.recalled_at = datetime.now(UTC)
        batch.recall_reason = reason.strip()[:500]
        audit(session, actor, "batch.recall", "batch", batch_id, reason)
        session.flush()
        product = batch.product
        feed.record(
            session,
            "recall",
            "batch.recalled",
            feed.recall_data(batch, product),
            party=("merchant", product.merchant_id),
            region_code=product.merchant.region_code[:6],
            batch_id=batch.id,
            merchant_id=product.merchant_id,
        )
    return batch


def sign_commitment(
    session: Session, actor: Principal, party_type: str, party_id: int, policy: credit.Policy
) -> Commitment:
    """The party signs the standard credit commitment (once), or an authority over it
    records its signature; it is shown publicly."""
    authz.require(session, actor, get_party(session, party_type, party_id), "this party")
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
            public_from=now,
        )
    )
    audit(session, actor, "commitment.sign", party_type, party_id, COMMITMENT_VERSION)
    session.flush()
    sync_lists(session, policy, now, {(party_type, party_id)})
    return signed


# -- reading accounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class CommitmentView:
    text_version: str
    signed_at: datetime


@dataclass(frozen=True)
class RecordView:
    """One credit record as its account shows it, with where it stands in due process."""

    id: int
    kind: str
    points: int
    reason: str
    anomaly_id: int | None
    severity: str | None
    effective_at: datetime
    #: When it counts (counted) publicly; None: not (yet).
    public_from: datetime | None
    #: public (counts in public answers) | pending (decided, response period running or an
    #: appeal pending) | signal (an undecided finding: risk indicator only) | void (dismissed,
    #: reversed, or a reversal)
    standing: str


@dataclass(frozen=True)
class PendingDecision:
    """A decision against the party that is not final yet: what the party is told."""

    kind: str  #: anomaly | sanction
    anomaly_id: int | None
    record_id: int
    points: int
    reason: str
    decided_at: datetime
    #: The end of the response period: the last moment to appeal and hold it.
    final_at: datetime | None
    #: An appeal filed within the period is pending: the record waits for its decision.
    held: bool


@dataclass(frozen=True)
class PublicCredit:
    """A party's credit as every public answer shows it: plain values, safe to keep across
    requests and threads (no ORM object)."""

    score: int
    grade: str
    list: str | None
    commitment_signed_at: datetime | None


@dataclass(frozen=True)
class Account:
    """A party's credit account, plain values. ``standing`` is the public one (final
    records only); ``risk``, ``pending`` and ``outlook`` are for the party and regulators."""

    party_type: str
    party_id: int
    standing: credit.Standing
    commitment: CommitmentView | None
    records: tuple[RecordView, ...]
    #: The undecided findings (risk signals), never public.
    risk: credit.Risk
    #: Decisions against the party not final yet, with their final dates.
    pending: tuple[PendingDecision, ...]
    #: The standing once every pending decision is final (and nothing else changes).
    outlook: credit.Standing

    @property
    def public(self) -> PublicCredit:
        signed = self.commitment.signed_at if self.commitment else None
        return PublicCredit(self.standing.score, self.standing.grade, self.standing.list, signed)


#: Kinds that are decisions against a party: they count publicly only when final.
_ACCUSATIONS = ("anomaly", "sanction")


def _account(
    party: tuple[str, int],
    rows: list[tuple],
    appeals: dict[tuple[str, int], list[credit.Appeal]],
    commitment: Commitment | None,
    policy: credit.Policy,
    now: datetime,
) -> Account:
    """One party's account from its records (each with its anomaly's status, decision and
    final date) and the appeals of its anomalies (``("anomaly", id)``) and sanctions
    (``("record", id)``)."""
    views, scored, pending, open_severities = [], [], [], []
    # An anomaly counts once, by its latest record: a withdrawn finding found again has a
    # second one (the first is cancelled by the withdrawal's reversal).
    latest = {r.anomaly_id: r.id for r, *_ in rows if r.kind == "anomaly"}
    for record, status, decided_at, final_at in rows:
        held_by = appeals.get(
            ("anomaly", record.anomaly_id) if record.kind == "anomaly" else ("record", record.id),
            [],
        )
        upheld = any(a.status == "upheld" for a in held_by)
        superseded = record.kind == "anomaly" and latest[record.anomaly_id] != record.id
        if (
            record.kind == "reversal"
            or status in ("dismissed", "withdrawn")
            or upheld
            or superseded
        ):
            views.append(_view(record, None, "void"))
            continue
        if record.kind == "anomaly" and status != "confirmed":
            # Undecided (open): a risk signal. (Other statuses an undecided finding may take
            # are no decision either.)
            if status == "open":
                open_severities.append(record.severity)
            views.append(_view(record, None, "signal" if status == "open" else "void"))
            continue
        if record.kind == "anomaly":
            final, since = final_at, credit.public_from(final_at, held_by)
        elif record.kind == "sanction":
            final = record.public_from
            since = credit.public_from(record.public_from, held_by)
            decided_at = record.created_at
        else:  # commendations, commitments, inspections, ratings: not accusations
            final = since = record.public_from or record.effective_at
        public = since is not None and since <= now
        views.append(_view(record, since, "public" if public else "pending"))
        scored.append(
            credit.Record(
                record.kind,
                record.points,
                record.effective_at,
                record.severity,
                confirmed=record.kind == "anomaly",
                public_from=since,
            )
        )
        if not public and record.kind in _ACCUSATIONS:
            pending.append(
                PendingDecision(
                    record.kind,
                    record.anomaly_id,
                    record.id,
                    record.points,
                    record.reason,
                    decided_at,
                    final,
                    held=since is None,
                )
            )
    as_if_final = [
        r if r.public_from is not None and r.public_from <= now else replace(r, public_from=now)
        for r in scored
    ]
    return Account(
        party[0],
        party[1],
        credit.public_standing(scored, now, policy),
        None
        if commitment is None
        else CommitmentView(commitment.text_version, commitment.signed_at),
        tuple(views),
        credit.risk(open_severities, policy),
        tuple(pending),
        credit.public_standing(as_if_final, now, policy),
    )


def _view(record: CreditRecord, since: datetime | None, standing: str) -> RecordView:
    return RecordView(
        record.id,
        record.kind,
        record.points,
        record.reason,
        record.anomaly_id,
        record.severity,
        record.effective_at,
        since,
        standing,
    )


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
    """The credit accounts of several parties at ``now``, in three queries."""
    now = now or datetime.now(UTC)
    if not parties:
        return {}
    by_party, appeals, commitments = _load(session, parties)
    return {p: _account(p, by_party[p], appeals, commitments.get(p), policy, now) for p in parties}


def standings_over_time(
    session: Session, party: tuple[str, int], policy: credit.Policy, moments: list[datetime]
) -> list[credit.Standing]:
    """The party's public standing at each of ``moments`` (its credit history), from the
    records created by then; appeals as they stand now."""
    by_party, appeals, commitments = _load(session, {party})
    rows, signed = by_party[party], commitments.get(party)
    return [
        _account(
            party,
            [r for r in rows if r[0].created_at <= t],
            appeals,
            signed if signed is not None and signed.signed_at <= t else None,
            policy,
            t,
        ).standing
        for t in moments
    ]


def _load(session: Session, parties: set[tuple[str, int]]) -> tuple[dict, dict, dict]:
    """The parties' records (with their anomalies' status and dates), the appeals of
    those records, and their commitments."""
    types = {p[0] for p in parties}
    ids = {p[1] for p in parties}
    rows = session.execute(
        sa.select(CreditRecord, Anomaly.status, Anomaly.decided_at, Anomaly.final_at)
        .outerjoin(Anomaly, CreditRecord.anomaly_id == Anomaly.id)
        .where(*_of_parties(CreditRecord, types, ids))
        .order_by(CreditRecord.id)
    ).all()
    by_party = defaultdict(list)
    for row in rows:
        by_party[(row[0].party_type, row[0].party_id)].append(tuple(row))
    appealed = {r[0].id for r in rows if r[0].kind == "sanction"} | {
        r[0].anomaly_id for r in rows if r[0].kind == "anomaly" and r[1] == "confirmed"
    }
    appeals: dict[tuple[str, int], list[credit.Appeal]] = defaultdict(list)
    if appealed:
        for a in session.execute(
            sa.select(
                Appeal.anomaly_id,
                Appeal.record_id,
                Appeal.created_at,
                Appeal.status,
                Appeal.decided_at,
            ).where(sa.or_(Appeal.anomaly_id.in_(appealed), Appeal.record_id.in_(appealed)))
        ):
            key = ("anomaly", a.anomaly_id) if a.anomaly_id is not None else ("record", a.record_id)
            appeals[key].append(credit.Appeal(a.created_at, a.status, a.decided_at))
    commitments = {
        (c.party_type, c.party_id): c
        for c in session.scalars(sa.select(Commitment).where(*_of_parties(Commitment, types, ids)))
    }
    return by_party, appeals, commitments


#: (party, policy) -> (valid until, monotonic clock; records version; public credit):
#: public answers only. Plain values: an ORM object kept here would be expired by the next
#: commit of the session that loaded it, and every later scan would fail.
_PUBLIC_ACCOUNTS: dict[tuple, tuple[float, tuple | None, PublicCredit]] = {}


def credit_version(session: Session, party: tuple[str, int]) -> tuple:
    """What changes whenever a party's standing can change other than by time passing: its
    last credit record (records are only appended: a new anomaly, sanction, reversal or
    commitment adds one) and its anomalies' last decision (a confirmation adds none).
    ``app.consumer.scan_pg`` reads the same two values inside its one scan statement.
    (Decisions becoming final as time passes show when the kept answer expires.)"""
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
    now: datetime | None = None,
) -> PublicCredit:
    """A party's public credit, reused for up to ``max_age_s`` seconds within this process:
    a product page is asked for far more often than a party's records change, and scoring
    a long record on every scan would cost more than the rest of the page.

    With ``version`` (:func:`credit_version`, read at the request), a kept answer is only
    reused while its party's records and decisions are unchanged: the score, grade and
    lists are then those of the records at the request, only their fading with time (and
    decisions becoming final) may be up to ``max_age_s`` late."""
    kept = kept_public_account(party, policy, version)
    if kept is not None:
        return kept
    valid_until = time.monotonic() + max_age_s
    found = accounts(session, {party}, policy, now)[party].public
    if len(_PUBLIC_ACCOUNTS) > 10_000:
        _PUBLIC_ACCOUNTS.clear()
    _PUBLIC_ACCOUNTS[(party, id(policy))] = (valid_until, version, found)
    return found


def kept_public_account(
    party: tuple[str, int], policy: credit.Policy, version: tuple | None = None
) -> PublicCredit | None:
    """The party's public credit when this process still keeps it (and, with ``version``,
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


def account(
    session: Session, party_type: str, party_id: int, policy: credit.Policy, now=None
) -> Account:
    get_party(session, party_type, party_id)
    return accounts(session, {(party_type, party_id)}, policy, now)[(party_type, party_id)]


def may_see_account(
    session: Session, viewer: Principal | None, party_type: str, party_id: int, region_code: str
) -> bool:
    """Whether ``viewer`` may see a party's whole account (its risk indicator, pending
    decisions and undecided findings): the party itself (a company for its couriers), or an
    authority whose jurisdiction covers it."""
    if viewer is None:
        return False
    if viewer.is_authority:
        return viewer.covers(region_code)
    return acts_for(session, viewer, party_type, party_id)


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


# -- the red and black lists as dated events ----------------------------------------------


def sync_lists(
    session: Session,
    policy: credit.Policy,
    now: datetime | None = None,
    parties: set[tuple[str, int]] | None = None,
) -> tuple[int, int]:
    """Bring the list entries of ``parties`` (all parties with records when None) up to
    their public standing at ``now``: a party whose list changed leaves its open entry and
    enters the new one. An entry is dated when the decision that caused it became final
    (the latest record to count publicly, when it is newer than the party's last change),
    else ``now``: the sweep that noticed time passing. Returns (entered, left). Flushes."""
    now = now or datetime.now(UTC)
    entries = sa.select(ListEntry).where(ListEntry.left_at.is_(None))
    if parties is None:
        parties = {
            tuple(p)
            for p in session.execute(
                sa.select(CreditRecord.party_type, CreditRecord.party_id).distinct()
            )
        }
        open_entries = list(session.scalars(entries))
        parties |= {(e.party_type, e.party_id) for e in open_entries}
    else:
        open_entries = [
            e
            for e in session.scalars(
                entries.where(
                    *_of_parties(ListEntry, {p[0] for p in parties}, {p[1] for p in parties})
                )
            )
            if (e.party_type, e.party_id) in parties
        ]
    if not parties:
        return 0, 0
    current = {(e.party_type, e.party_id): e for e in open_entries}
    entered = left = 0
    for party, acc in accounts(session, parties, policy, now).items():
        was = current.get(party)
        if (was.list if was else None) == acc.standing.list:
            continue
        cause = max(
            (r for r in acc.records if r.standing == "public" and r.public_from is not None),
            key=lambda r: (r.public_from, r.id),
            default=None,
        )
        last_change = was.entered_at if was else None
        recent = cause is not None and (last_change is None or cause.public_from > last_change)
        at = cause.public_from if recent else now
        because = _cause_text(cause) if recent else "记录随时间淡出 · records faded with time"
        if was is not None:
            was.left_at, was.left_because = at, because[:300]
            left += 1
            _list_feed(session, was, left=True)
        if acc.standing.list is not None:
            entry = ListEntry(
                party_type=party[0],
                party_id=party[1],
                list=acc.standing.list,
                entered_at=at,
                entered_because=because[:300],
                anomaly_id=cause.anomaly_id if recent else None,
                record_id=cause.id if recent else None,
            )
            session.add(entry)
            entered += 1
            _list_feed(session, entry, left=False)
    session.flush()
    return entered, left


def _list_feed(session: Session, entry: ListEntry, *, left: bool) -> None:
    """Tell subscribers: a list entry or exit (``list``); the black list's are public
    notices too (``notice``)."""
    party = public_party(session, entry.party_type, entry.party_id)
    data = feed.list_entry_data(entry, party, left=left)
    kind = f"{entry.list}_list.{'left' if left else 'entered'}"
    where = {
        "party": (entry.party_type, entry.party_id),
        "region_code": get_party(session, entry.party_type, entry.party_id).region_code[:6],
        "merchant_id": entry.party_id if entry.party_type == "merchant" else None,
    }
    feed.record(session, "list", kind, data, **where)
    if entry.list == credit.BLACK:
        feed.record(session, "notice", kind, data, **where)


def _cause_text(record: RecordView) -> str:
    words = {
        "anomaly": "认定异常 · confirmed finding",
        "sanction": "惩戒 · sanction",
        "commendation": "表彰 · commendation",
        "commitment": "信用承诺 · credit commitment",
    }
    return f"{words.get(record.kind, record.kind)}: {record.reason}"
