"""``flask --app wsgi trace sweep``: the time-based anomaly rules, once, on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from app.credit import detect
from app.events.operations import expire_parked


@click.command("sweep")
@with_appcontext
def sweep_command() -> None:
    """Find stalled and late parcels now (the ingest worker also runs this periodically)."""
    ext = current_app.extensions["trace"]
    with ext.sessionmaker() as session:
        found, expired = run_sweep(session, ext.config)
        session.commit()
    click.echo(f"sweep: {found} new anomalies, {expired} parked events expired")


def run_sweep(session, config, now: datetime | None = None) -> tuple[int, int]:
    """One sweep: time-based anomaly rules, and parked events that waited too long."""
    now = now or datetime.now(UTC)
    expired = expire_parked(session, now, timedelta(hours=config.PARKED_EVENT_HOURS))
    return detect.sweep(session, config.thresholds, config.policy, now), expired
