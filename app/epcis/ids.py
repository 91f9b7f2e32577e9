"""The registry of EPCIS event IDs we gave out (see :class:`app.epcis.models.EpcisEventId`):
the one writer of that table, with its dialect branch."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.epcis.models import EpcisEventId


def record(session: Session, rows: Iterable[tuple[str, str, int]]) -> None:
    """Record (digest, source, key) of each event emitted; an ID already known is left as it
    is (two readers of the same page both record it, neither fails)."""
    values = [{"digest": d, "source": s, "ref_id": k} for d, s, k in dict.fromkeys(rows)]
    if not values:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(EpcisEventId).on_conflict_do_nothing(index_elements=["digest"])
    session.execute(statement, values)


def find(session: Session, digest: str) -> tuple[str, int] | None:
    """(source, key) of the event with this digest, if we gave it out."""
    row = session.execute(
        sa.select(EpcisEventId.source, EpcisEventId.ref_id).where(EpcisEventId.digest == digest)
    ).first()
    return None if row is None else (row[0], row[1])
