"""``flask --app wsgi trace sweep``: the time-based anomaly rules, once, on demand."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.credit import detect
from trace.anomalies import Thresholds
from trace.credit import Policy


@click.command("sweep")
@with_appcontext
def sweep_command() -> None:
    """Find stalled and late parcels now (the ingest worker also runs this periodically)."""
    sessionmaker = current_app.extensions["trace"].sessionmaker
    with sessionmaker() as session:
        found = detect.sweep(session, Thresholds(), Policy())
        session.commit()
    click.echo(f"sweep: {found} new anomalies")
