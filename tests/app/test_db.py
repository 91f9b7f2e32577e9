"""The database layer's own expressions, on the suite's database (SQLite + SpatiaLite, or
PostgreSQL + PostGIS under TEST_DATABASE_URL)."""

from datetime import UTC, date, datetime

import sqlalchemy as sa

from app.credit.models import Anomaly
from app.db import beijing_day


def test_beijing_day_turns_at_midnight_in_beijing_not_in_utc(session):
    """Is a moment of 15:59:59 UTC still that day in Beijing, and 16:00 UTC the next one,
    as the database counts them per day?"""
    moments = [
        datetime(2026, 12, 1, 15, 59, 59, 999_000, tzinfo=UTC),  # 23:59:59 in Beijing
        datetime(2026, 12, 1, 16, 0, tzinfo=UTC),  # 00:00 on the 2nd in Beijing
        datetime(2026, 12, 2, 4, 1, 9, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 0, tzinfo=UTC),  # 07:00 on 1 January in Beijing
    ]
    for n, at in enumerate(moments):
        session.add(
            Anomaly(
                type="late_delivery",
                severity="minor",
                subject_type="waybill",
                subject=f"SF{n}",
                party_type="merchant",
                party_id=1,
                region_code="320411",
                evidence={},
                detected_at=at,
            )
        )
    session.flush()
    day = beijing_day(Anomaly.detected_at).label("day")
    counted = session.execute(sa.select(day, sa.func.count()).group_by(day).order_by(day)).all()
    assert [tuple(r) for r in counted] == [
        (date(2026, 12, 1), 1),
        (date(2026, 12, 2), 2),
        (date(2027, 1, 1), 1),
    ]
