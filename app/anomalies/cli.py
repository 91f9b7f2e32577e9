"""``flask --app wsgi trace sweep``: the time-based anomaly rules, once, on demand."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.anomalies.sweep import run_sweep


@click.command("sweep")
@with_appcontext
def sweep_command() -> None:
    """Find stalled and late parcels now (the ingest worker also runs this periodically)."""
    ext = current_app.extensions["trace"]
    with ext.sessionmaker() as session:
        found, expired = run_sweep(session, ext.config)
        session.commit()
    click.echo(f"sweep: {found} new anomalies, {expired} parked events expired")
