"""The periodic sweep: the rules about time passing, parked events that waited too long, and
the red and black list entries as decisions become final and records fade.

The ingest worker runs it every few minutes; ``flask --app wsgi trace sweep`` once, on demand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.anomalies import detect
from app.credit.operations import sync_lists
from app.events.parking import expire_parked


def run_sweep(session: Session, config, now: datetime | None = None) -> tuple[int, int]:
    """One sweep: time-based anomaly rules, parked events that waited too long, and the list
    entries brought up to the public standing at ``now``. Returns (new anomalies, parked
    events expired). Flushes; the caller commits."""
    now = now or datetime.now(UTC)
    expired = expire_parked(session, now, timedelta(hours=config.PARKED_EVENT_HOURS))
    found = detect.sweep(session, config.thresholds, config.policy, now)
    sync_lists(session, config.policy, now)
    return found, expired
