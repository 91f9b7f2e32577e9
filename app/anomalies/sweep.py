"""The periodic sweep: the rules about time passing, parked events that waited too long, the
red and black list entries as decisions become final and records fade, and the credit
exchange's items pushed to the webhooks as they become public.

The ingest worker runs it every few minutes; ``flask --app wsgi trace sweep`` once, on demand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.anomalies import detect
from app.credit.exchange import push_new_items
from app.credit.operations import sync_lists
from app.events.parking import expire_parked


def run_sweep(session: Session, config, now: datetime | None = None) -> tuple[int, int]:
    """One sweep: time-based anomaly rules, parked events that waited too long, the list
    entries brought up to the public standing at ``now``, and the exchange items that became
    public since the last sweep pushed to the webhooks. Returns (new anomalies, parked events
    expired). Flushes; the caller commits."""
    now = now or datetime.now(UTC)
    expired = expire_parked(session, now, timedelta(hours=config.PARKED_EVENT_HOURS))
    found = detect.sweep(session, config.thresholds, config.policy, now)
    sync_lists(session, config.policy, now)
    push_new_items(session, config.policy, platform=config.ISSUER_NAME, now=now)
    return found, expired
