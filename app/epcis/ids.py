"""The registry of EPCIS event IDs we gave out (see :class:`app.epcis.models.EpcisEventId`):
the one writer of that table, with its dialect branch."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.epcis.models import EpcisEventId

#: PostgreSQL: one statement whatever the number of IDs, the rows as three arrays.
_RECORD_POSTGRESQL = sa.text(
    "INSERT INTO epcis_event_ids (digest, source, ref_id) "
    "SELECT * FROM unnest(CAST(:digests AS varchar[]), CAST(:sources AS varchar[]), "
    "CAST(:keys AS bigint[])) ON CONFLICT (digest) DO NOTHING"
)
#: SQLite (in process): one row per execution, no round trips.
_RECORD_SQLITE = sa.text(
    "INSERT OR IGNORE INTO epcis_event_ids (digest, source, ref_id) VALUES (:d, :s, :k)"
)


def record(session: Session, rows: Iterable[tuple[str, str, int]]) -> None:
    """Record (digest, source, key) of each event emitted; an ID already known is left as it
    is (two readers of the same page both record it, neither fails)."""
    rows = list(dict.fromkeys(rows))
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        digests, sources, keys = (list(column) for column in zip(*rows, strict=True))
        session.execute(_RECORD_POSTGRESQL, {"digests": digests, "sources": sources, "keys": keys})
    else:
        session.execute(_RECORD_SQLITE, [{"d": d, "s": s, "k": k} for d, s, k in rows])


def find(session: Session, digest: str) -> tuple[str, int] | None:
    """(source, key) of the event with this digest, if we gave it out."""
    row = session.execute(
        sa.select(EpcisEventId.source, EpcisEventId.ref_id).where(EpcisEventId.digest == digest)
    ).first()
    return None if row is None else (row[0], row[1])
