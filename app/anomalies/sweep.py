"""The periodic sweep: the rules about time passing, and parked events that waited too long.

The ingest worker runs it every few minutes; ``flask --app wsgi trace sweep`` once, on demand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.anomalies import detect
from app.events.parking import expire_parked


def run_sweep(session: Session, config, now: datetime | None = None) -> tuple[int, int]:
    """One sweep: time-based anomaly rules, and parked events that waited too long.
    Returns (new anomalies, parked events expired). Flushes; the caller commits."""
    now = now or datetime.now(UTC)
    expired = expire_parked(session, now, timedelta(hours=config.PARKED_EVENT_HOURS))
    return detect.sweep(session, config.thresholds, config.policy, now), expired
