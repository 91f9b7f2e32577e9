"""The demo's dishonest cases: a regulator opening the demo finds findings to decide, each
raised by the real rules from signed events, and the live simulator leaves their parties alone."""

import pytest
import sqlalchemy as sa

from app import demo_cases
from app.credit.models import Anomaly
from app.ingest import scenarios
from app.parties.models import Courier, Merchant

pytestmark = pytest.mark.slow  # days of simulated traffic through the ingest: seconds


def _count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_the_cases_leave_one_finding_of_each_kind_once(runner, session):
    """After the demo and the simulator's fleet, are the cases played once, with an open
    finding of every kind that device events can show, each citing its evidence, in the
    words of a real market (no scenario names), and counted apart from the demo's fleet?"""
    assert runner.invoke(args=["trace", "demo"]).exit_code == 0
    ready = runner.invoke(args=["devices", "simulate", "--setup-only"])
    assert ready.exit_code == 0, ready.output
    fleet = (_count(session, Merchant), _count(session, Courier))
    assert demo_cases.fleet_before_cases(session) is None

    played = runner.invoke(args=["trace", "demo-cases"])
    assert played.exit_code == 0, played.output
    assert f"{len(session.scalars(sa.select(Anomaly)).all())} findings raised" in played.output

    findings = session.scalars(sa.select(Anomaly)).all()
    assert {f.type for f in findings} == set(scenarios.ALL_TYPES)
    assert all(f.status == "open" and f.evidence for f in findings)
    names = session.scalars(
        sa.text(
            "SELECT name FROM products UNION SELECT name FROM couriers"
            " UNION SELECT name FROM merchants UNION SELECT origin_name FROM batches"
        )
    )
    assert not [n for n in names if "场景" in n or "模拟" in n or "scenario" in n]
    assert demo_cases.fleet_before_cases(session) == fleet

    again = runner.invoke(args=["trace", "demo-cases"])
    assert again.exit_code == 0 and "already played" in again.output
    assert len(session.scalars(sa.select(Anomaly)).all()) == len(findings)
