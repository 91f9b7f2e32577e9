"""Who and what, by name: the parties of a list of findings (one query per kind of party)
and each finding's decision (what, why, by whom, when), for the queue's rows, any page that
lists findings, and the CSV export.

A courier's name is personal data: authorities (admins, regulators) read it in full, anyone
else masked (as the histories show it, app/events/history.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth.models import User
from app.credit.models import Anomaly, AuditEntry
from app.parties.models import PARTY_MODELS
from tracecore.access import Principal
from tracecore.identity import mask_name

PartyKey = tuple[str, int]
#: The audit actions that decide a finding (a bulk decision writes the same, one per finding).
DECIDING = ("anomaly.confirm", "anomaly.dismiss")


def party_names(session: Session, viewer: Principal, keys: Iterable[PartyKey]) -> dict:
    """``(party_type, id) → name`` for these parties; a courier's name masked unless the
    viewer is an authority. Unknown parties are left out."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for kind, pid in keys:
        if kind in PARTY_MODELS and pid is not None:
            wanted[kind].add(int(pid))
    names: dict[PartyKey, str] = {}
    for kind, ids in wanted.items():
        model = PARTY_MODELS[kind]
        for chunk in _chunks(sorted(ids)):
            for pid, name in session.execute(
                sa.select(model.id, model.name).where(model.id.in_(chunk))
            ):
                shown = name if kind != "courier" or viewer.is_authority else mask_name(name)
                names[(kind, pid)] = shown
    return names


@dataclass(frozen=True)
class Decided:
    """A finding's decision as people read it."""

    decision: str  #: confirm | dismiss
    reason: str
    at: datetime
    #: Who decided: the user's display name or username, or "API token #n".
    decider: str


def decisions_of(session: Session, anomaly_ids: Iterable[int]) -> dict[int, Decided]:
    """The latest decision of each of these findings (from the audit trail)."""
    ids = [str(i) for i in anomaly_ids]
    found: dict[int, AuditEntry] = {}
    for chunk in _chunks(ids):
        for entry in session.scalars(
            sa.select(AuditEntry)
            .where(
                AuditEntry.target_type == "anomaly",
                AuditEntry.target_id.in_(chunk),
                AuditEntry.action.in_(DECIDING),
            )
            .order_by(AuditEntry.id)
        ):
            found[int(entry.target_id)] = entry  # the latest wins
    users = {
        u.id: u.display_name or u.username
        for u in session.scalars(
            sa.select(User).where(User.id.in_({e.actor_user_id for e in found.values()} - {None}))
        )
    }
    return {
        anomaly_id: Decided(
            e.action.removeprefix("anomaly."),
            e.reason,
            e.at,
            users.get(e.actor_user_id)
            or (f"API token #{e.actor_token_id}" if e.actor_token_id else e.actor_role),
        )
        for anomaly_id, e in found.items()
    }


@dataclass(frozen=True)
class Rows:
    """What a list of findings needs besides the findings: party names and decisions."""

    names: dict[PartyKey, str]
    decisions: dict[int, Decided]

    def party(self, a: Anomaly) -> str | None:
        return self.names.get((a.party_type, a.party_id))

    def decided(self, a: Anomaly) -> Decided | None:
        return self.decisions.get(a.id)


def rows_of(session: Session, viewer: Principal, items: list[Anomaly]) -> Rows:
    return Rows(
        party_names(session, viewer, ((a.party_type, a.party_id) for a in items)),
        decisions_of(session, (a.id for a in items if a.status != "open")),
    )


def _chunks(values: list, size: int = 500):
    for i in range(0, len(values), size):
        yield values[i : i + size]
