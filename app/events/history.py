"""Reading the trace: a unit's or a parcel's history with custody, and a batch's forward trace.

Who sees what: authorities (admin, regulator) see everything, including exact delivery points
and the consignee point; a merchant sees the units of its own products and the parcels it
shipped; a logistics company the parcels it carries. For anyone but an authority, the places
of delivery-stage scans are rounded to about a kilometre (they are next to a consumer's
home), and couriers' names are masked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.db import lat_lon
from app.events.models import CapturedEvent, CapturedEventEpc, Parcel, ParcelItem
from app.events.unit_events import UnitEvent, parcel_events, unit_events, units_events
from app.parties.models import Courier, LogisticsCompany, Merchant
from tracecore import lifecycle
from tracecore.access import Principal
from tracecore.courier_status import courier_status
from tracecore.errors import NotFound
from tracecore.identity import mask_name
from tracecore.vocabulary import NEAR_CONSUMER


@dataclass
class Timeline:
    events: list[UnitEvent]  #: in event-time order
    custody: list[lifecycle.Custody]
    state: str


def _rfc3339(moment) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


# Statements built once (building and keying them on every read cost more than running them).
_MERCHANT_NAMES = sa.select(Merchant.id, Merchant.name).where(
    Merchant.id.in_(sa.bindparam("ids", expanding=True))
)
_COURIER_NAMES = (
    sa.select(Courier.id, Courier.name, LogisticsCompany.id, LogisticsCompany.name)
    .join(LogisticsCompany, Courier.company_id == LogisticsCompany.id)
    .where(Courier.id.in_(sa.bindparam("ids", expanding=True)))
)
_FIRST_HOLDERS = (
    sa.select(TraceCode.serial, Product.merchant_id)
    .join(Batch, TraceCode.batch_id == Batch.id)
    .join(Product, Batch.product_id == Product.id)
    .where(TraceCode.serial.in_(sa.bindparam("serials", expanding=True)))
)


class _Parties:
    """Names of the parties in a set of events (read with their names), and of ``others``
    (custody holders: merchants, couriers) not named there, loaded in one query per kind."""

    def __init__(
        self,
        session: Session,
        events: list[UnitEvent],
        authority: bool,
        others: set[tuple[str, int]] = frozenset(),
        known: dict[tuple[str, int], dict] | None = None,
    ) -> None:
        self.authority = authority
        self.names: dict[tuple[str, int], dict] = dict(known or {})
        for e in events:
            if e.party_name is not None and (e.party_type, e.party_id) not in self.names:
                if e.party_type == "merchant":
                    self._merchant(e.party_id, e.party_name)
                elif e.party_type == "courier":
                    self._courier(e.party_id, e.party_name, e.company_id, e.company_name)
        ids = defaultdict(set)
        for kind, pid in others:
            if (kind, pid) not in self.names:
                ids[kind].add(pid)
        if ids["merchant"]:
            for mid, name in session.execute(_MERCHANT_NAMES, {"ids": list(ids["merchant"])}):
                self._merchant(mid, name)
        if ids["courier"]:
            for row in session.execute(_COURIER_NAMES, {"ids": list(ids["courier"])}):
                self._courier(*row)

    def _merchant(self, mid: int, name: str) -> None:
        self.names[("merchant", mid)] = {"type": "merchant", "id": mid, "name": name}

    def _courier(self, cid: int, name: str, company_id: int, company: str) -> None:
        self.names[("courier", cid)] = {
            "type": "courier",
            "id": cid,
            "name": name if self.authority else mask_name(name),
            "company": {"type": "logistics_company", "id": company_id, "name": company},
        }

    def of(self, key) -> dict | None:
        if key is None:
            return None
        if key == ("consignee", 0):
            return {"type": "consignee"}
        return self.names.get(key, {"type": key[0], "id": key[1]})


def _timeline(events: list[UnitEvent], first_holder: tuple[str, int]) -> Timeline:
    steps = [
        lifecycle.Step(r.event_id, r.type, r.occurred_at, r.id, (r.party_type, r.party_id))
        for r in events
    ]
    result = lifecycle.replay(steps)
    custody = lifecycle.custody(result.lawful, first_holder, ("consignee", 0))
    return Timeline(events, custody, result.state)


def _timelines(session: Session, serials: list[str]) -> tuple[dict[str, Timeline], list]:
    """Each unit's events (its own and its parcels', with names), lifecycle state and custody."""
    read = units_events(session, serials, names=True)
    first_holder = dict(session.execute(_FIRST_HOLDERS, {"serials": serials}).all())
    out = {
        serial: _timeline(read.by_unit[serial], ("merchant", first_holder[serial]))
        for serial in serials
    }
    return out, read.events


def unit_timeline(session: Session, serial: str, merchant_id: int) -> tuple[Timeline, _Parties]:
    """A unit's timeline and the names of the parties in it as the public may see them
    (couriers masked), for the consumer's page: its events and its parcels' in one statement."""
    rows = unit_events(session, serial, names=True)
    return _timeline(rows, ("merchant", merchant_id)), _Parties(session, rows, authority=False)


def _event_json(row: UnitEvent, parties: _Parties, authority: bool) -> dict:
    place = None if row.lat is None else (row.lat, row.lon)
    if place and row.type in NEAR_CONSUMER and not authority:
        place = (round(place[0], 2), round(place[1], 2))
    return {
        "event_id": row.event_id,
        "type": row.type,
        "time": _rfc3339(row.occurred_at),
        "received_at": _rfc3339(row.received_at),
        "lat": place[0] if place else None,
        "lon": place[1] if place else None,
        "device_id": row.device_id,
        "party": parties.of((row.party_type, row.party_id)),
        "waybill": row.waybill,
        "data": row.data,
        "violation": row.violation,
        "flag": row.flag,
    }


def _custody_json(periods: list[lifecycle.Custody], parties: _Parties) -> list[dict]:
    return [
        {"party": parties.of(p.party), "from": _rfc3339(p.start), "to": _rfc3339(p.end)}
        for p in periods
    ]


def _may_see_unit(session: Session, viewer: Principal, merchant_id: int, region: str) -> None:
    """The unit's merchant, and authorities over it (:mod:`app.authz`)."""
    authz.require(session, viewer, authz.Owner("merchant", merchant_id, region), "this unit")


def code_history(session: Session, viewer: Principal, serial: str, code_json: dict) -> dict:
    """A unit's complete history: origin, every event in time order, custody over time.
    Its events, with their parties' names, are one statement."""
    merchant = code_json["merchant"]
    _may_see_unit(session, viewer, merchant["id"], merchant["region_code"])
    timeline = _timeline(unit_events(session, serial, names=True), ("merchant", merchant["id"]))
    parties = _Parties(
        session,
        timeline.events,
        viewer.is_authority,
        others={p.party for p in timeline.custody if p.party},
        known={
            ("merchant", merchant["id"]): {
                "type": "merchant",
                "id": merchant["id"],
                "name": merchant["name"],
            }
        },
    )
    return {
        "code": {"serial": serial, "uri": code_json["uri"]},
        "product": code_json["product"],
        "batch": code_json["batch"],
        "merchant": merchant,
        "state": timeline.state,
        "custody": _custody_json(timeline.custody, parties),
        "events": [_event_json(r, parties, viewer.is_authority) for r in timeline.events],
        "captured_events": captured_events(session, serial),
    }


_CAPTURED = (
    sa.select(CapturedEvent, sa.func.coalesce(Merchant.name, LogisticsCompany.name))
    .outerjoin(
        Merchant,
        sa.and_(CapturedEvent.party_type == "merchant", Merchant.id == CapturedEvent.party_id),
    )
    .outerjoin(
        LogisticsCompany,
        sa.and_(
            CapturedEvent.party_type == "logistics_company",
            LogisticsCompany.id == CapturedEvent.party_id,
        ),
    )
    .where(
        # once, though a transformation may name the unit as an input and an output
        CapturedEvent.id.in_(
            sa.select(CapturedEventEpc.captured_event_id).where(
                CapturedEventEpc.serial == sa.bindparam("serial")
            )
        )
    )
    .order_by(CapturedEvent.event_time, CapturedEvent.id)
)


def captured_events(session: Session, serial: str) -> list[dict]:
    """What outside systems captured about a unit (EPCIS), in event-time order, each marked
    with the system and the party it acts for. Kept apart from the unit's own events: they
    move no custody and change no state (app/epcis/capture.py)."""
    out = []
    for row, party_name in session.execute(_CAPTURED, {"serial": serial}):
        out.append(
            {
                "event_id": row.body["eventID"],
                "epcis_type": row.type,
                "type": row.our_type,
                "action": row.action,
                "biz_step": row.biz_step,
                "disposition": row.disposition,
                "time": row.body["eventTime"],
                "received_at": _rfc3339(row.record_time),
                "source": {
                    "kind": "outside_system",
                    "system": row.system,
                    "party": {"type": row.party_type, "id": row.party_id, "name": party_name},
                },
            }
        )
    return out


def parcel_history(session: Session, viewer: Principal, waybill: str) -> dict:
    parcel = session.get(Parcel, waybill.strip().upper())
    if parcel is None:
        raise NotFound(f"no parcel with waybill {waybill}")
    authz.require_parcel(session, viewer, parcel)
    units = list(
        session.scalars(
            sa.select(ParcelItem.serial)
            .where(ParcelItem.waybill == parcel.waybill)
            .order_by(ParcelItem.serial)
        )
    )
    rows = parcel_events(session, parcel.waybill, names=True)
    periods = _timeline(rows, ("merchant", parcel.merchant_id)).custody
    parties = _Parties(session, rows, viewer.is_authority, {("merchant", parcel.merchant_id)})
    company = session.get(LogisticsCompany, parcel.logistics_company_id)
    answer = {
        "waybill": parcel.waybill,
        "state": parcel.state,
        **_courier_status(parcel.state),
        "merchant": parties.of(("merchant", parcel.merchant_id)),
        "logistics_company": {"id": company.id, "name": company.name},
        "consignee_region_code": parcel.consignee_region_code,
        "promised_by": _rfc3339(parcel.promised_by),
        "units": units,
        "custody": _custody_json(periods, parties),
        "events": [
            {**_event_json(r, parties, viewer.is_authority), **_courier_status(r.type)}
            for r in rows
        ],
    }
    if viewer.is_authority:
        lat, lon = lat_lon(parcel.consignee)
        answer["consignee"] = {"lat": lat, "lon": lon}
    return answer


def _courier_status(type_or_state: str) -> dict:
    """A parcel event's or state's ``kuaidi100`` and ``aftership`` codes
    (:mod:`tracecore.courier_status`); none for what no courier reports."""
    found = courier_status(type_or_state)
    return {} if found is None else found.as_json()


def batch_trace(
    session: Session, viewer: Principal, batch_id: int, *, after: str = "", limit: int = 100
) -> dict:
    """Forward trace: where every unit of a batch is now, one page at a time (by serial)."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    _may_see_unit(session, viewer, batch.product.merchant_id, batch.product.merchant.region_code)
    serials = list(
        session.scalars(
            sa.select(TraceCode.serial)
            .where(TraceCode.batch_id == batch_id, TraceCode.serial > after)
            .order_by(TraceCode.serial)
            .limit(limit + 1)
        )
    )
    more = len(serials) > limit
    serials = serials[:limit]
    timelines, rows = _timelines(session, serials) if serials else ({}, [])
    custodians = {p.party for t in timelines.values() for p in t.custody if p.party}
    parties = _Parties(session, rows, viewer.is_authority, custodians)
    units = []
    for serial in serials:
        timeline = timelines[serial]
        last = timeline.events[-1] if timeline.events else None
        where = _event_json(last, parties, viewer.is_authority) if last else None
        units.append(
            {
                "serial": serial,
                "state": timeline.state,
                "custodian": parties.of(timeline.custody[-1].party),
                "last_event": None
                if where is None
                else {k: where[k] for k in ("type", "time", "lat", "lon", "waybill")},
            }
        )
    return {"batch_id": batch_id, "units": units, "next_after": serials[-1] if more else None}
