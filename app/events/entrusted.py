"""Couriers report only on parcels their company is entrusted with: the parcel's own company,
or one it was handed over to (:func:`tracecore.lifecycle.unentrusted`).

The ingest run calls :func:`judge_reports` with a batch's event rows before storing them.
A courier's event on a parcel its company is not entrusted with is kept as evidence with a
violation mark (``not entrusted: …``): the replay leaves it out, so custody does not move,
and the lifecycle-violation rule raises it against the reporting courier. A hand-over that
arrives late (a handheld offline) is judged with everything stored: the marks of the
parcel's stored events are set or cleared again, before the batch's replay.

Only parcels where it can matter are read: those of this batch's rows whose courier works
for another company than the parcel's, or that carry a hand-over. A batch of a company's own
scans costs one query (its couriers' companies).
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import among
from app.events import writers
from app.events.models import Event, Parcel
from app.parties.models import Courier
from tracecore.lifecycle import NOT_ENTRUSTED, Report, unentrusted

#: Orders a new row after every stored event with the same time (rows have no id yet).
_NEW = 1 << 62


def _handover(data: dict | None) -> int | None:
    return (data or {}).get("handover_to")


def judge_reports(session: Session, rows: list[dict], parcels: dict[str, Parcel]) -> None:
    """Mark this batch's courier rows on parcels their company is not entrusted with (their
    ``violation``), and set or clear the marks of the stored events of the parcels whose
    hand-overs these rows bring."""
    mine = [r for r in rows if r["party_type"] == "courier" and r["waybill"] in parcels]
    if not mine:
        return
    company_of = _companies(session, {r["party_id"] for r in mine})
    waybills = {
        r["waybill"]
        for r in mine
        if _handover(r["data"]) is not None
        or company_of.get(r["party_id"]) != parcels[r["waybill"]].logistics_company_id
    }
    if not waybills:
        return
    reports: dict[str, list[Report]] = defaultdict(list)
    stored = _stored(session, waybills)
    company_of |= _companies(session, {e.party_id for e in stored} - company_of.keys())
    for e in stored:
        reports[e.waybill].append(
            Report(e.event_id, e.occurred_at, e.id, company_of.get(e.party_id), _handover(e.data))
        )
    for r in mine:
        if r["waybill"] in waybills:
            reports[r["waybill"]].append(
                Report(
                    r["event_id"],
                    r["occurred_at"],
                    _NEW,
                    company_of.get(r["party_id"]),
                    _handover(r["data"]),
                )
            )
    marks: dict[str, str] = {}
    for waybill, judged in reports.items():
        marks.update(unentrusted(parcels[waybill].logistics_company_id, judged))
    for r in mine:
        if r["event_id"] in marks:
            r["violation"] = marks[r["event_id"]]
    changed = []
    for e in stored:
        was = bool(e.violation and e.violation.startswith(NOT_ENTRUSTED))
        now = marks.get(e.event_id)
        if now is not None and e.violation != now:
            changed.append((e.id, now))
        elif now is None and was:
            changed.append((e.id, None))  # the replay judges it again, as any event
    writers.set_violations(session, sorted(changed))


def _companies(session: Session, couriers: set[int]) -> dict[int, int]:
    """courier id -> its logistics company."""
    if not couriers:
        return {}
    rows = session.connection().execute(
        sa.select(Courier.id, Courier.company_id).where(among(session, Courier.id, couriers))
    )
    return {courier: company for courier, company in rows}


def _stored(session: Session, waybills: set[str]) -> list:
    """The stored couriers' events of these parcels."""
    return (
        session.connection()
        .execute(
            sa.select(
                Event.id,
                Event.event_id,
                Event.waybill,
                Event.occurred_at,
                Event.party_id,
                Event.data,
                Event.violation,
            ).where(among(session, Event.waybill, waybills), Event.party_type == "courier")
        )
        .all()
    )
