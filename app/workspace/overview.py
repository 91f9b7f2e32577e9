"""The home page: the overview a bureau chief opens every morning.

Every number is of the viewer's jurisdiction. What it reads, in a handful of queries:

* open risk signals (undecided findings) by severity and by age in working days against the
  response clock (``CREDIT_RESPONSE_WORKING_DAYS``, 7 by default), and the decisions waiting:
  appeals to decide, and confirmed findings and sanctions whose response period is running;
* findings detected per day (Beijing time) over the last 30 or 90 days, by type (one query,
  counted per Beijing day by the database: :class:`app.db.beijing_day`);
* findings per 10,000 events by district over the last 30 days: findings by the responsible
  party's district, events by the reporting party's district (both GB/T 2260 codes). The
  event counts are a grouped scan of the period's events: each process keeps them
  (:class:`Kept`), counting again in the background once they are
  ``OVERVIEW_EVENT_COUNTS_MAX_AGE_S`` seconds old (10 minutes by default; the page says when
  they were counted);
* the parties with the highest risk indicator (open findings' points) and the lowest public
  scores (exact accounts of the 25 parties with the most negative decided records, kept like
  the event counts);
* recalls of the last 90 days with the share of units reached (:mod:`app.workspace.recall`),
  kept like the event counts.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, render_template, request
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from app.catalog.models import Batch, BatchStatus, Product
from app.credit import operations as credit_ops
from app.credit.models import Anomaly, Appeal, CreditRecord
from app.db import beijing_day
from app.events.models import Event
from app.parties.models import PARTY_MODELS, Courier, Merchant
from app.web import db, settings, unit_of_work
from app.workspace import charts, recall, words
from app.workspace.session import bp, viewer
from tracecore import districts
from tracecore.access import Principal
from tracecore.credit import Policy
from tracecore.identity import mask_name
from tracecore.regions import PROVINCES
from tracecore.workdays import CST, ResponsePeriod, working_days_since

log = logging.getLogger(__name__)

#: How many parties each list shows.
TOP = 10
#: The lowest scores are exact accounts of this many parties with the most negative
#: decided records.
CANDIDATES = 25
#: Districts are coloured in this many steps of findings per 10,000 events.
LEVELS = 5


def _inside(column, you: Principal):
    """A WHERE term: ``column`` (a region code) inside the viewer's jurisdiction."""
    if not you.jurisdiction:
        return sa.true()
    return sa.or_(*(column.startswith(p) for p in you.jurisdiction))


# -- open risk signals and decisions waiting ----------------------------------------------


@dataclass
class Backlog:
    open: int
    by_severity: dict
    #: (label, count) of open findings by working days since detection
    by_age: list
    oldest: datetime | None
    appeals: int
    appeals_overdue: int  #: appeals waiting longer than the response period
    in_period: int  #: confirmed findings and sanctions whose response period is running
    period_days: int


def _since_working_days(now: datetime, days: int, period: ResponsePeriod) -> datetime:
    """The start of the earliest Beijing day from which at most ``days`` working days have
    begun by ``now``: findings detected since then are at most ``days`` working days old."""
    day = now.astimezone(CST).date()
    while True:
        earlier = day - timedelta(days=1)
        start = datetime.combine(earlier, datetime.min.time(), CST)
        if working_days_since(start, now, period.calendar) > days:
            return datetime.combine(day, datetime.min.time(), CST)
        day = earlier


def _backlog(session: Session, you: Principal, period: ResponsePeriod, now: datetime) -> Backlog:
    """Counted in the database: the age buckets are moments (the working-day cut-offs)."""
    limit = period.working_days
    recent, within = _since_working_days(now, 2, period), _since_working_days(now, limit, period)
    order = ["0–2", f"3–{limit}", f">{limit}"]
    bucket = sa.case(
        (Anomaly.detected_at >= recent, order[0]),
        (Anomaly.detected_at >= within, order[1]),
        else_=order[2],
    )
    ages: Counter = Counter()
    severities: Counter = Counter()
    oldest = None
    for severity, age, n, first in session.execute(
        sa.select(Anomaly.severity, bucket, sa.func.count(), sa.func.min(Anomaly.detected_at))
        .where(Anomaly.status == "open", _inside(Anomaly.region_code, you))
        .group_by(Anomaly.severity, bucket)
    ):
        severities[severity] += n
        ages[age] += n
        first = _aware(first)
        oldest = first if oldest is None or first < oldest else oldest
    appeals, overdue = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Appeal.created_at < within),
        )
        .select_from(Appeal)
        .join(Anomaly, Appeal.anomaly_id == Anomaly.id)
        .where(Appeal.status == "pending", _inside(Anomaly.region_code, you))
    ).one()
    in_period = session.scalar(
        sa.select(sa.func.count())
        .select_from(Anomaly)
        .where(Anomaly.status == "confirmed", Anomaly.final_at > now)
        .where(_inside(Anomaly.region_code, you))
    )
    in_period += _sanctions_in_period(session, you, now)
    return Backlog(
        sum(severities.values()),
        {s: severities.get(s, 0) for s in ("serious", "major", "minor")},
        [(k, ages.get(k, 0)) for k in order],
        oldest,
        appeals,
        overdue,
        in_period,
        limit,
    )


def _aware(moment) -> datetime | None:
    # min() of a UTC column comes back untyped on SQLite: a string or a naive time.
    if moment is None or (isinstance(moment, datetime) and moment.tzinfo):
        return moment
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sanctions_in_period(session: Session, you: Principal, now: datetime) -> int:
    total = 0
    for kind, model in PARTY_MODELS.items():
        total += session.scalar(
            sa.select(sa.func.count())
            .select_from(CreditRecord)
            .join(model, model.id == CreditRecord.party_id)
            .where(CreditRecord.party_type == kind, CreditRecord.kind == "sanction")
            .where(CreditRecord.public_from > now, _inside(model.region_code, you))
        )
    return total


# -- findings per day ----------------------------------------------------------------------


def _trend(session: Session, you: Principal, now: datetime, days: int) -> tuple[Markup, list]:
    """The chart of findings per Beijing day by type, and the totals by type."""
    first = (now.astimezone(CST) - timedelta(days=days - 1)).date()
    start = datetime.combine(first, datetime.min.time(), CST)
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    day = beijing_day(Anomaly.detected_at).label("day")
    for kind, on, n in session.execute(
        sa.select(Anomaly.type, day, sa.func.count())
        .where(Anomaly.detected_at >= start, _inside(Anomaly.region_code, you))
        .group_by(Anomaly.type, day)
    ):
        i = (on - first).days
        if 0 <= i < days:
            counts[kind][i] += n
    labels = [(first + timedelta(days=i)).strftime("%m-%d") for i in range(days)]
    # named as people read them (the chart's titles, and the table beside it)
    series = charts.fold([charts.Series(words.label("anomaly", k), v) for k, v in counts.items()])
    chart = charts.line_chart(
        labels,
        series,
        title=f"近 {days} 天每日发现的异常（按类型）Findings per day, last {days} days, by type",
        stacked_bars=True,
    )
    return chart, [(s.name, int(sum(s.values))) for s in series]


# -- districts -------------------------------------------------------------------------------


def events_by_region(session: Session, since_day: date) -> dict[str, int]:
    """Events since ``since_day`` (Beijing) by the reporting party's region code: a grouped
    scan of the period's events (the page keeps it: :func:`_kept`)."""
    since = datetime.combine(since_day, datetime.min.time(), CST)
    by_party = session.execute(
        sa.select(Event.party_type, Event.party_id, sa.func.count())
        .where(Event.occurred_at >= since)
        .group_by(Event.party_type, Event.party_id)
    ).all()
    regions: dict[tuple[str, int], str] = {}
    for kind, model in (("merchant", Merchant), ("courier", Courier)):
        ids = [pid for t, pid, _ in by_party if t == kind]
        for chunk in range(0, len(ids), 5000):
            part = ids[chunk : chunk + 5000]
            for pid, code in session.execute(
                sa.select(model.id, model.region_code).where(model.id.in_(part))
            ):
                regions[(kind, pid)] = code
    counts: Counter = Counter()
    for kind, pid, n in by_party:
        counts[regions.get((kind, pid), "")] += n
    return dict(counts)


@dataclass
class DistrictRow:
    code: str
    name: str
    findings: int
    events: int
    rate: float | None  #: findings per 10,000 events
    level: int  #: 0 (none) … LEVELS


def _region_name(code: str) -> str:
    found = districts.district(code)
    if found is not None:
        return found.city + found.name
    province = PROVINCES.get(code[:2])
    return f"{province[0]} {code}" if province else code


def _districts(
    session: Session, you: Principal, now: datetime, max_age_s: int
) -> tuple[list[DistrictRow], float]:
    first = (now.astimezone(CST) - timedelta(days=29)).date()
    since = datetime.combine(first, datetime.min.time(), CST)
    found = dict(
        session.execute(
            sa.select(Anomaly.region_code, sa.func.count())
            .where(Anomaly.detected_at >= since, _inside(Anomaly.region_code, you))
            .group_by(Anomaly.region_code)
        ).all()
    )
    events, counted_at = _kept(
        ("events", first), max_age_s, lambda s: events_by_region(s, first), session
    )
    codes = {c for c in found} | {c for c in events if c and you.covers(c)}
    rows = []
    for code in codes:
        n, e = found.get(code, 0), events.get(code, 0)
        rows.append(DistrictRow(code, _region_name(code), n, e, n * 10_000 / e if e else None, 0))
    top = max((r.rate for r in rows if r.rate), default=0)
    for r in rows:
        if r.rate:
            r.level = max(1, min(LEVELS, math.ceil(r.rate / top * LEVELS)))
        elif r.findings:
            r.level = LEVELS  # findings and no event reported from there
    rows.sort(key=lambda r: (-(r.rate or 0), -r.findings, r.code))
    return rows, counted_at


@functools.lru_cache(maxsize=64)
def _city_drawing(city: str) -> tuple[str, str, list, list[str]]:
    """A city's districts drawn (the bundled boundaries do not change while the process
    runs): its view box, name, district paths and name labels."""
    shown = districts.districts(city)
    projection = districts.MapProjection.for_districts(shown, width=480)
    labels = []
    for d in shown:
        inside = d.geometry.representative_point()
        x, y = projection.to_xy(inside.x, inside.y)
        labels.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle">{escape(d.name)}</text>')
    return projection.view_box, shown[0].city, districts.district_paths(projection, shown), labels


def _district_map(rows: list[DistrictRow], you: Principal) -> Markup | None:
    """The city with the most findings, its districts coloured by level, each a link to its
    findings in the queue."""
    by_code = {r.code: r for r in rows}
    cities = Counter()
    for d in districts.districts():
        if you.covers(d.code):
            cities[d.code[:4]] += by_code[d.code].findings if d.code in by_code else 0
    if not cities:
        return None
    city = max(sorted(cities), key=lambda c: cities[c])
    view_box, name, paths, labels = _city_drawing(city)
    out = [
        f'<svg class="map choropleth" viewBox="{view_box}" '
        'xmlns="http://www.w3.org/2000/svg" role="group" '
        f'aria-label="{escape(name)}：每万事件异常数 findings per 10,000 events">'
    ]
    for d, path in paths:
        row = by_code.get(d.code)
        rate = f"{row.rate:.1f}" if row and row.rate is not None else "–"
        href = f"/workspace/anomalies?region_code={d.code}"
        out.append(
            f'<a href="{href}"><path class="level-{row.level if row else 0}" d="{path}">'
            f"<title>{escape(d.city + d.name)}: {rate} / 万事件 per 10,000 events</title>"
            "</path></a>"
        )
    out.extend(labels)
    out.append("</svg>")
    return Markup("".join(out))


# -- parties ---------------------------------------------------------------------------------


@dataclass
class PartyRow:
    party_type: str
    party_id: int
    name: str
    region_code: str
    risk_points: int = 0
    open: int = 0
    score: int | None = None
    grade: str | None = None
    list: str | None = None


def _names(session: Session, parties: set[tuple[str, int]]) -> dict:
    found = {}
    for kind, model in PARTY_MODELS.items():
        ids = [pid for t, pid in parties if t == kind]
        if ids:
            for pid, name, code in session.execute(
                sa.select(model.id, model.name, model.region_code).where(model.id.in_(ids))
            ):
                # The overview is not logged: couriers' names masked (their page shows them).
                found[(kind, pid)] = (mask_name(name) if kind == "courier" else name, code)
    return found


def _riskiest(session: Session, you: Principal, policy: Policy) -> list[PartyRow]:
    """The parties whose open findings would cost the most points if confirmed (the risk
    indicator), worked out and ranked by the database."""
    points = sa.func.sum(
        sa.case(
            *((Anomaly.severity == s, p) for s, p in sorted(policy.anomaly_points.items())),
            else_=0,
        )
    )
    opened = sa.func.count()
    worst = session.execute(
        sa.select(Anomaly.party_type, Anomaly.party_id, points, opened)
        .where(Anomaly.status == "open", _inside(Anomaly.region_code, you))
        .group_by(Anomaly.party_type, Anomaly.party_id)
        .order_by(points, opened.desc(), Anomaly.party_type, Anomaly.party_id)
        .limit(TOP)
    ).all()
    names = _names(session, {(kind, pid) for kind, pid, _, _ in worst})
    return [
        PartyRow(kind, pid, *names.get((kind, pid), (f"#{pid}", "")), risk_points=int(p), open=n)
        for kind, pid, p, n in worst
    ]


def _lowest(session: Session, you: Principal, policy: Policy, now: datetime) -> list[PartyRow]:
    """The lowest public scores: exact accounts of the parties with the most negative
    decided records (confirmed findings, sanctions) in the fading window."""
    since = now - timedelta(days=policy.fade_days)
    candidates = []
    for kind, model in PARTY_MODELS.items():
        total = sa.func.sum(CreditRecord.points)
        candidates += [
            ((kind, pid), t)
            for pid, t in session.execute(
                sa.select(CreditRecord.party_id, total)
                .join(model, model.id == CreditRecord.party_id)
                .outerjoin(Anomaly, Anomaly.id == CreditRecord.anomaly_id)
                .where(CreditRecord.party_type == kind, CreditRecord.effective_at >= since)
                .where(
                    sa.or_(CreditRecord.kind == "sanction", Anomaly.status == "confirmed"),
                    _inside(model.region_code, you),
                )
                .group_by(CreditRecord.party_id)
                .order_by(total)
                .limit(CANDIDATES)
            )
        ]
    picked = {p for p, _ in sorted(candidates, key=lambda c: c[1])[:CANDIDATES]}
    accounts = credit_ops.accounts(session, picked, policy, now)
    names = _names(session, picked)
    rows = [
        PartyRow(
            *p,
            *names.get(p, (f"#{p[1]}", "")),
            score=a.standing.score,
            grade=a.standing.grade,
            list=a.standing.list,
        )
        for p, a in accounts.items()
        if a.standing.score < 800
    ]
    return sorted(rows, key=lambda r: (r.score, r.party_type, r.party_id))[:TOP]


# -- recalls ---------------------------------------------------------------------------------


class Kept:
    """What the page keeps a while: values that cost a scan and change slowly, by key.

    A value younger than the maximum age is served as kept. An older one is still served,
    while one background thread of this process works it out again with a session of its
    own (stale while revalidating): no request waits for the scan but a process's first,
    and every request with a maximum age of 0 (the tests), which counts in the request."""

    def __init__(self, size: int = 1000):
        self.size = size
        self._values: dict[tuple, tuple[float, object]] = {}
        self._refreshing: set[tuple] = set()
        self._lock = threading.Lock()

    def get(self, key: tuple, max_age_s: int, compute, session: Session, sessions=None):
        """(``compute(session)``, when it was worked out), or the kept pair; ``sessions``
        (a sessionmaker) gives the background thread its session."""
        with self._lock:
            found = self._values.get(key)
        if found is not None and max_age_s > 0:
            if time.time() - found[0] >= max_age_s and sessions is not None:
                self._refresh(key, compute, sessions)
            return found[1], found[0]
        at = time.time()
        value = compute(session)
        self._store(key, at, value)
        return value, at

    def _store(self, key: tuple, at: float, value) -> None:
        with self._lock:
            if len(self._values) >= self.size and key not in self._values:
                self._values.clear()
            self._values[key] = (at, value)

    def _refresh(self, key: tuple, compute, sessions) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def work() -> None:
            try:
                at = time.time()
                with sessions() as s:
                    value = compute(s)
                self._store(key, at, value)
            except Exception:  # served stale until the next request tries again
                log.exception("the overview's %s could not be counted again", key[0])
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=work, name=f"overview-{key[0]}", daemon=True).start()


KEPT = Kept()


def _kept(key: tuple, max_age_s: int, compute, session: Session):
    """(``compute(session)``, when it was worked out), kept by this process (:class:`Kept`)."""
    return KEPT.get(key, max_age_s, compute, session, current_app.extensions["trace"].sessionmaker)


def _recalls(session: Session, you: Principal, now: datetime, max_age_s: int) -> list[tuple]:
    """Recalls of the last 90 days: (batch, units reached, units). The reach of a large
    batch is a scan of its units' parcels' events: each process keeps it ``max_age_s``."""
    batches = session.scalars(
        sa.select(Batch)
        .join(Product, Product.id == Batch.product_id)
        .join(Merchant, Merchant.id == Product.merchant_id)
        .where(Batch.status == BatchStatus.RECALLED, Batch.recalled_at >= now - timedelta(90))
        .where(_inside(Merchant.region_code, you))
        .order_by(Batch.recalled_at.desc())
        .limit(TOP)
    ).all()
    return [
        (b, *_kept(("reach", b.id, b.recalled_at), max_age_s, _reach_of(b.id), session)[0])
        for b in batches
    ]


def _reach_of(batch_id: int):
    """The recall's reach worked out in any session (the batch is loaded again there)."""

    def compute(session: Session) -> tuple[int, int]:
        batch = session.get(Batch, batch_id)
        return recall.reach_share(session, batch) if batch is not None else (0, 0)

    return compute


# -- the page --------------------------------------------------------------------------------


def clock() -> datetime:
    """Now (a seam for tests whose events happened on a fixed day)."""
    return datetime.now(UTC)


@bp.get("/")
@unit_of_work
def home():
    you, cfg = viewer(), settings()
    now = clock()
    days = 90 if request.args.get("days") == "90" else 30
    chart, by_type = _trend(db(), you, now, days)
    rows, counted_at = _districts(db(), you, now, cfg.OVERVIEW_EVENT_COUNTS_MAX_AGE_S)
    return render_template(
        "workspace/home.html",
        days=days,
        backlog=_backlog(db(), you, cfg.response_period, now),
        chart=chart,
        by_type=by_type,
        district_rows=rows,
        district_map=_district_map(rows, you),
        counted_at=datetime.fromtimestamp(counted_at, UTC),
        riskiest=_riskiest(db(), you, cfg.policy),
        lowest=_kept(
            ("lowest", you.jurisdiction),
            cfg.OVERVIEW_EVENT_COUNTS_MAX_AGE_S,
            lambda s: _lowest(s, you, cfg.policy, clock()),
            db(),
        )[0],
        recalls=_recalls(db(), you, now, cfg.OVERVIEW_EVENT_COUNTS_MAX_AGE_S),
    )
