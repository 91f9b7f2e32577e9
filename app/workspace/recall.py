"""Recall with care: what a recall would touch, asked before it is made, and how far it has
reached since.

Impact (before): the batch's units by state (where they are in their lifecycle), by
district (the place of each unit's latest located event; a unit never scanned is at its
merchant's registered district), and the merchants and couriers holding them now.

Reach (after): a unit is *reached* once the recall has demonstrably got to whoever has it:
a consumer checked its code on the scan page after the recall (the page says the batch is
recalled), or its parcel was returned after the recall. Units not reached are counted by
where they still are: on shelves (issued, shelved), in parcels (packed … delivery_failed),
with consumers who have not checked (sold, signed). A holder's device scanning a unit after
the recall is counted apart ("scanned since"): it shows who still handles it, not that the
holder was told. The reach over time is the share of units reached by the end of each day
(Beijing time) since the recall.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from app.accesslog.operations import log_access
from app.catalog.models import Batch, BatchStatus
from app.catalog.operations import get_batch
from app.codes.models import TraceCode
from app.consumer.models import Verification
from app.consumer.places import place_of_point, place_of_region
from app.credit import operations as credit_ops
from app.events.models import Event, ParcelItem
from app.parties.models import Courier, LogisticsCompany, Merchant
from app.web import db, unit_of_work
from app.workspace.charts import Series, line_chart
from app.workspace.session import bp, viewer
from tracecore.errors import ValidationError
from tracecore.workdays import CST

#: Where a unit is, by its lifecycle state.
WHERE = {
    "issued": "shelf",
    "shelved": "shelf",
    "returned": "shelf",
    "packed": "parcel",
    "picked_up": "parcel",
    "in_transit": "parcel",
    "out_for_delivery": "parcel",
    "delivery_failed": "parcel",
    "sold": "consumer",
    "signed": "consumer",
}
WHERE_NAMES = {
    "shelf": "在库或在架 on shelves",
    "parcel": "在包裹中 in parcels",
    "consumer": "在消费者手中 with consumers",
}


@dataclass
class Holder:
    party_type: str
    party_id: int
    name: str
    units: int
    company: tuple[int, str] | None = None  #: a courier's company (id, name)


@dataclass
class Impact:
    """What recalling the batch touches now."""

    units: int
    by_state: list[tuple[str, int]]
    by_where: list[tuple[str, int]]
    by_district: list[tuple[str, int]]  #: (district name, units), most first
    merchants: list[Holder]
    couriers: list[Holder]


@dataclass
class Reach:
    """How far a recall has reached (see the module's docstring for what counts)."""

    units: int
    told: int  #: a consumer checked the code after the recall
    returned: int  #: its parcel was returned after the recall
    reached: int  #: told or returned (each unit once)
    scanned_since: int  #: a holder's device scanned it after the recall
    not_reached: list[tuple[str, int]] = field(default_factory=list)  #: (where, units)
    chart: str = ""

    @property
    def share(self) -> float:
        return self.reached / self.units if self.units else 0.0


def _unit_rows(session: Session, batch_id: int) -> list[tuple]:
    """(serial, state) of every unit of the batch."""
    return session.execute(
        sa.select(TraceCode.serial, TraceCode.state).where(TraceCode.batch_id == batch_id)
    ).all()


def _events(session: Session, batch_id: int, since: datetime | None = None) -> list[tuple]:
    """(serial, type, occurred_at, lat, lon, party_type, party_id) of the batch's units'
    events, their own and their parcels', oldest first."""
    columns = (
        Event.type,
        Event.occurred_at,
        sa.func.ST_Y(Event.location, type_=sa.Float),
        sa.func.ST_X(Event.location, type_=sa.Float),
        Event.party_type,
        Event.party_id,
    )
    units = sa.select(TraceCode.serial).where(TraceCode.batch_id == batch_id)
    own = sa.select(Event.serial, *columns).where(Event.serial.in_(units))
    carried = (
        sa.select(ParcelItem.serial, *columns)
        .join(Event, Event.waybill == ParcelItem.waybill)
        .where(ParcelItem.serial.in_(units))
    )
    if since is not None:
        own = own.where(Event.occurred_at > since)
        carried = carried.where(Event.occurred_at > since)
    rows = session.execute(sa.union_all(own, carried)).all()
    return sorted(rows, key=lambda r: r[2])


def impact(session: Session, batch: Batch) -> Impact:
    """The batch's units by state, district and holder, as they are now."""
    merchant = batch.product.merchant
    units = _unit_rows(session, batch.id)
    latest: dict[str, tuple] = {}
    placed: dict[str, tuple] = {}
    for row in _events(session, batch.id):
        latest[row[0]] = row
        if row[3] is not None:
            placed[row[0]] = row
    states, wheres, places = Counter(), Counter(), Counter()
    merchants, couriers = Counter(), Counter()
    home = place_of_region(merchant.region_code)
    for serial, state in units:
        state = str(state)
        states[state] += 1
        where = WHERE.get(state, "shelf")
        wheres[where] += 1
        at = placed.get(serial)
        place = place_of_point(at[3], at[4]) if at else home
        places[place["zh"] if place else "未知 unknown"] += 1
        last = latest.get(serial)
        if where == "parcel" and last and last[5] == "courier":
            couriers[last[6]] += 1
        elif where == "shelf":
            holder = last[6] if last and last[5] == "merchant" else merchant.id
            merchants[holder] += 1
    return Impact(
        len(units),
        states.most_common(),
        [(WHERE_NAMES[k], v) for k, v in wheres.most_common()],
        places.most_common(),
        _merchants(session, merchants),
        _couriers(session, couriers),
    )


def _merchants(session: Session, counts: Counter) -> list[Holder]:
    if not counts:
        return []
    names = dict(
        session.execute(sa.select(Merchant.id, Merchant.name).where(Merchant.id.in_(counts))).all()
    )
    return [Holder("merchant", i, names.get(i, f"#{i}"), n) for i, n in counts.most_common()]


def _couriers(session: Session, counts: Counter) -> list[Holder]:
    if not counts:
        return []
    rows = session.execute(
        sa.select(Courier.id, Courier.name, LogisticsCompany.id, LogisticsCompany.name)
        .join(LogisticsCompany, Courier.company_id == LogisticsCompany.id)
        .where(Courier.id.in_(counts))
    ).all()
    found = {r[0]: r for r in rows}
    return [
        Holder("courier", i, found[i][1], n, (found[i][2], found[i][3]))
        for i, n in counts.most_common()
        if i in found
    ]


def _first_checks(session: Session, batch: Batch) -> dict[str, datetime]:
    """Each unit's first consumer check after the recall."""
    rows = session.execute(
        sa.select(Verification.serial, sa.func.min(Verification.verified_at))
        .join(TraceCode, TraceCode.serial == Verification.serial)
        .where(TraceCode.batch_id == batch.id, Verification.verified_at > batch.recalled_at)
        .group_by(Verification.serial)
    ).all()
    return {serial: _aware(at) for serial, at in rows}


def _aware(moment) -> datetime:
    # min() of a UTC column comes back untyped on SQLite: a string or a naive time.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reach(session: Session, batch: Batch, now: datetime | None = None) -> Reach:
    """How far the batch's recall has reached, and its reach by the end of each day."""
    now = now or datetime.now(UTC)
    units = _unit_rows(session, batch.id)
    told = _first_checks(session, batch)
    returned: dict[str, datetime] = {}
    scanned: set[str] = set()
    for serial, kind, at, *_ in _events(session, batch.id, since=batch.recalled_at):
        scanned.add(serial)
        if kind == "returned":
            returned.setdefault(serial, at)
    first = {s: min(t for t in (told.get(s), returned.get(s)) if t) for s in told | returned}
    left = Counter(WHERE.get(str(state), "shelf") for serial, state in units if serial not in first)
    result = Reach(
        len(units),
        len(told),
        len(returned),
        len(first),
        len(scanned),
        [(WHERE_NAMES[k], v) for k, v in left.most_common()],
    )
    result.chart = _reach_chart(batch.recalled_at, now, sorted(first.values()), len(units))
    return result


def _reach_chart(start: datetime, now: datetime, moments: list[datetime], units: int) -> str:
    day, last = start.astimezone(CST).date(), now.astimezone(CST).date()
    days, shares, i = [], [], 0
    while day <= last and len(days) < 120:
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), CST)
        while i < len(moments) and moments[i] < end:
            i += 1
        days.append(day.strftime("%m-%d"))
        shares.append(round(100 * i / units, 1) if units else 0)
        day += timedelta(days=1)
    return line_chart(
        days,
        [Series("已触达 % reached", shares)],
        title="召回触达率（按日）Share of units reached, by day",
        height=180,
        scale=(0, 100),
    )


def reach_share(session: Session, batch: Batch) -> tuple[int, int]:
    """(units reached, units) of a recalled batch, in two counting queries."""
    units = session.scalar(
        sa.select(sa.func.count()).select_from(TraceCode).where(TraceCode.batch_id == batch.id)
    )
    in_batch = sa.select(TraceCode.serial).where(TraceCode.batch_id == batch.id)
    told = sa.select(Verification.serial.label("serial")).where(
        Verification.serial.in_(in_batch), Verification.verified_at > batch.recalled_at
    )
    returned = (
        sa.select(ParcelItem.serial.label("serial"))
        .join(Event, Event.waybill == ParcelItem.waybill)
        .where(
            ParcelItem.serial.in_(in_batch),
            Event.type == "returned",
            Event.occurred_at > batch.recalled_at,
        )
    )
    either = sa.union(told, returned).subquery()
    reached = session.scalar(sa.select(sa.func.count()).select_from(either))
    return reached or 0, units or 0


# -- the pages ----------------------------------------------------------------------------


def _batch(batch_id: int) -> Batch:
    batch = get_batch(db(), batch_id)
    viewer().require_region(batch.product.merchant.region_code, "this batch")
    return batch


@bp.post("/batches/<id:batch_id>/recall")
@unit_of_work
def recall(batch_id: int):
    """A first post (the batch page's form) shows the impact and asks again; the second,
    with ``confirmed=yes``, recalls the batch."""
    batch = _batch(batch_id)
    reason = request.form.get("reason", "").strip()[:500]
    if request.form.get("confirmed") != "yes" and batch.status is not BatchStatus.RECALLED:
        if not reason:
            raise ValidationError("give the reason for the recall", field="reason")
        found = impact(db(), batch)
        _log("view", batch_id, "recall impact")
        return render_template(
            "workspace/recall_confirm.html", batch=batch, impact=found, reason=reason
        )
    credit_ops.recall_batch(db(), viewer(), batch_id, reason)
    _log("change", batch_id, "recall", personal=False)
    return redirect(url_for("workspace.recall_page", batch_id=batch_id), 303)


@bp.get("/batches/<id:batch_id>/recall")
@unit_of_work
def recall_page(batch_id: int):
    """Before a recall, what it would touch; after it, how far it has reached."""
    batch = _batch(batch_id)
    recalled = batch.status is BatchStatus.RECALLED
    found = impact(db(), batch)
    progress = reach(db(), batch) if recalled else None
    _log("view", batch_id, "recall reach" if recalled else "recall impact")
    return render_template(
        "workspace/recall.html", batch=batch, impact=found, reach=progress, recalled=recalled
    )


def _log(action: str, batch_id: int, detail: str, personal: bool = True) -> None:
    # The holders named include couriers: personal data.
    log_access(db(), viewer(), action, "batch", batch_id, personal_data=personal, detail=detail)
