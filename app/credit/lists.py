"""The public side of credit: the red and black lists with since when, and the risk notices
(风险提示), each dated. Only decided, final records appear here: a finding no regulator has
confirmed, or a decision still within the party's response period, never does.

The lists are the parties' public standing now (as every other public answer shows it); the
dates come from the list entries that :func:`app.credit.operations.sync_lists` keeps (when a
decision becomes final at once, and at every sweep as time passes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.credit.models import Anomaly, Appeal, CreditRecord, ListEntry
from app.credit.operations import Account, accounts, public_party
from tracecore import credit


@dataclass(frozen=True)
class Listed:
    """A party on a list now, since when and why."""

    account: Account
    since: datetime
    because: str


def listed(
    session: Session, which: str, policy: credit.Policy, now: datetime | None = None
) -> list[Listed]:
    """The parties on the red or black list now (only parties with records can be on one),
    each with the date it entered: its open list entry, or, before the sweep has written
    one, when its latest record became final."""
    now = now or datetime.now(UTC)
    parties = {
        tuple(p)
        for p in session.execute(
            sa.select(CreditRecord.party_type, CreditRecord.party_id).distinct()
        )
    }
    found = [
        a for a in accounts(session, parties, policy, now).values() if a.standing.list == which
    ]
    entries = {
        (e.party_type, e.party_id): e
        for e in session.scalars(
            sa.select(ListEntry).where(ListEntry.list == which, ListEntry.left_at.is_(None))
        )
    }
    out = []
    for acc in found:
        entry = entries.get((acc.party_type, acc.party_id))
        if entry is not None:
            out.append(Listed(acc, entry.entered_at, entry.entered_because))
            continue
        latest = max(
            (r.public_from for r in acc.records if r.standing == "public" and r.public_from),
            default=now,
        )
        out.append(Listed(acc, latest, ""))
    return sorted(out, key=lambda x: (x.account.party_type, x.account.party_id))


def _appeals(session: Session, column, ids: set[int]) -> dict[int, list[credit.Appeal]]:
    found: dict[int, list[credit.Appeal]] = defaultdict(list)
    if ids:
        for key, filed, status, decided in session.execute(
            sa.select(column, Appeal.created_at, Appeal.status, Appeal.decided_at).where(
                column.in_(ids)
            )
        ):
            found[key].append(credit.Appeal(filed, status, decided))
    return found


def notices(
    session: Session, policy: credit.Policy, now: datetime | None = None, limit: int = 100
) -> list[dict]:
    """Public risk notices, newest first, each dated when it became public: confirmed
    serious anomalies and sanctions once final, and entering or leaving the black list."""
    now = now or datetime.now(UTC)
    out = []
    confirmed = list(
        session.scalars(
            sa.select(Anomaly)
            .where(
                Anomaly.status == "confirmed",
                Anomaly.severity == "serious",
                Anomaly.final_at <= now,
            )
            .order_by(Anomaly.final_at.desc())
            .limit(limit)
        )
    )
    held = _appeals(session, Appeal.anomaly_id, {a.id for a in confirmed})
    for a in confirmed:
        since = credit.public_from(a.final_at, held[a.id])
        if since is not None and since <= now:
            out.append(
                {
                    "kind": "confirmed_anomaly",
                    "type": a.type,
                    "at": since,
                    "party": public_party(session, a.party_type, a.party_id),
                }
            )
    sanctions = list(
        session.scalars(
            sa.select(CreditRecord)
            .where(CreditRecord.kind == "sanction", CreditRecord.public_from <= now)
            .order_by(CreditRecord.public_from.desc())
            .limit(limit)
        )
    )
    held = _appeals(session, Appeal.record_id, {r.id for r in sanctions})
    for r in sanctions:
        since = credit.public_from(r.public_from, held[r.id])
        if since is not None and since <= now:
            out.append(
                {
                    "kind": "sanction",
                    "reason": r.reason,
                    "at": since,
                    "party": public_party(session, r.party_type, r.party_id),
                }
            )
    for e in session.scalars(
        sa.select(ListEntry)
        .where(ListEntry.list == credit.BLACK)
        .order_by(sa.func.coalesce(ListEntry.left_at, ListEntry.entered_at).desc())
        .limit(limit)
    ):
        party = public_party(session, e.party_type, e.party_id)
        out.append({"kind": "black_list", "at": e.entered_at, "party": party})
        if e.left_at is not None:
            out.append({"kind": "black_list_left", "at": e.left_at, "party": party})
    out.sort(key=lambda n: n["at"], reverse=True)
    return out[:limit]
