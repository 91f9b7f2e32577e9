"""The overview's parts as they were before 2026-12-07, kept for bench_overview to compare
with in the same run: findings per day bucketed in Python from every finding's time, and the
backlog's oldest finding and pending appeals read by queries of their own, the riskiest
parties ranked in Python from every party's counts by severity. Not used by the app."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.credit.models import Anomaly, Appeal
from app.workspace import charts, words
from app.workspace import overview as now_
from tracecore.access import Principal
from tracecore.credit import Policy
from tracecore.workdays import CST, ResponsePeriod


def trend(session: Session, you: Principal, now: datetime, days: int) -> tuple[Markup, list]:
    first = (now.astimezone(CST) - timedelta(days=days - 1)).date()
    start = datetime.combine(first, datetime.min.time(), CST)
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    for kind, detected_at in session.execute(
        sa.select(Anomaly.type, Anomaly.detected_at).where(
            Anomaly.detected_at >= start, now_._inside(Anomaly.region_code, you)
        )
    ):
        i = (detected_at.astimezone(CST).date() - first).days
        if 0 <= i < days:
            counts[kind][i] += 1
    labels = [(first + timedelta(days=i)).strftime("%m-%d") for i in range(days)]
    series = charts.fold([charts.Series(words.label("anomaly", k), v) for k, v in counts.items()])
    chart = charts.line_chart(
        labels,
        series,
        title=f"近 {days} 天每日发现的异常（按类型）Findings per day, last {days} days, by type",
        stacked_bars=True,
    )
    return chart, [(s.name, int(sum(s.values))) for s in series]


def backlog(session: Session, you: Principal, period: ResponsePeriod, now: datetime):
    limit = period.working_days
    recent = now_._since_working_days(now, 2, period)
    within = now_._since_working_days(now, limit, period)
    order = ["0–2", f"3–{limit}", f">{limit}"]
    bucket = sa.case(
        (Anomaly.detected_at >= recent, order[0]),
        (Anomaly.detected_at >= within, order[1]),
        else_=order[2],
    )
    ages: Counter = Counter()
    severities: Counter = Counter()
    inside = now_._inside(Anomaly.region_code, you)
    for severity, age, n in session.execute(
        sa.select(Anomaly.severity, bucket, sa.func.count())
        .where(Anomaly.status == "open", inside)
        .group_by(Anomaly.severity, bucket)
    ):
        severities[severity] += n
        ages[age] += n
    oldest = session.scalar(
        sa.select(sa.func.min(Anomaly.detected_at)).where(Anomaly.status == "open", inside)
    )
    appeals = session.execute(
        sa.select(Appeal.created_at)
        .join(Anomaly, Appeal.anomaly_id == Anomaly.id)
        .where(Appeal.status == "pending", inside)
    ).all()
    overdue = sum(a[0] < within for a in appeals)
    in_period = session.scalar(
        sa.select(sa.func.count())
        .select_from(Anomaly)
        .where(Anomaly.status == "confirmed", Anomaly.final_at > now, inside)
    )
    in_period += now_._sanctions_in_period(session, you, now)
    return now_.Backlog(
        sum(severities.values()),
        {s: severities.get(s, 0) for s in ("serious", "major", "minor")},
        [(k, ages.get(k, 0)) for k in order],
        now_._aware(oldest),
        len(appeals),
        overdue,
        in_period,
        limit,
    )


def riskiest(session: Session, you: Principal, policy: Policy) -> list:
    points: Counter = Counter()
    opened: Counter = Counter()
    for kind, pid, severity, n in session.execute(
        sa.select(Anomaly.party_type, Anomaly.party_id, Anomaly.severity, sa.func.count())
        .where(Anomaly.status == "open", now_._inside(Anomaly.region_code, you))
        .group_by(Anomaly.party_type, Anomaly.party_id, Anomaly.severity)
    ):
        points[(kind, pid)] += policy.anomaly_points.get(severity, 0) * n
        opened[(kind, pid)] += n
    worst = sorted(points, key=lambda p: (points[p], -opened[p], p))[: now_.TOP]
    names = now_._names(session, set(worst))
    return [
        now_.PartyRow(*p, *names.get(p, (f"#{p[1]}", "")), risk_points=points[p], open=opened[p])
        for p in worst
    ]


#: name in app.workspace.overview -> the function it was
PARTS = {"_trend": trend, "_backlog": backlog, "_riskiest": riskiest}
