"""The fourth source of the EPCIS query (app/epcis/query.py): the events outside systems
captured (app/epcis/capture.py), served as they were stored, their IDs unchanged. An event is
found by the identifiers kept beside it at capture (``captured_event_epcs``), each with its
role in the event: a unit by its serial, a class by its canonical Digital Link."""

from __future__ import annotations

import sqlalchemy as sa

from app import authz
from app.epcis.capture import PARTY_TYPE
from app.epcis.filters import Filters, related_classes, times
from app.events.models import CapturedEvent, CapturedEventEpc
from tracecore.access import Principal
from tracecore.epcis import Epc, Uris


def _captured_visibility(viewer: Principal):
    """Who sees an outside system's captured events: its party, and authorities over that
    party (what it names of ours is its own: app/epcis/capture.py)."""
    if viewer.is_authority:
        return authz.parties_in_jurisdiction(
            viewer, CapturedEvent.party_type, CapturedEvent.party_id
        )
    if viewer.role in PARTY_TYPE:
        return sa.and_(
            CapturedEvent.party_type == PARTY_TYPE[viewer.role],
            CapturedEvent.party_id == viewer.party_id,
        )
    return sa.false()


def _named(condition, roles: tuple[str, ...]):
    """Captured events with an identifier meeting ``condition`` in one of ``roles``."""
    return CapturedEvent.id.in_(
        sa.select(CapturedEventEpc.captured_event_id).where(
            condition, CapturedEventEpc.role.in_(roles)
        )
    )


#: The roles of the identifiers MATCH_anyEPC and MATCH_anyEPCClass match.
ANY_EPC = ("epc", "parent", "input", "output")
ANY_CLASS = ("class", "input_class", "output_class")


def _class_keys(classes: tuple[Epc, ...]) -> list[str]:
    """EPC classes as captured identifiers are kept (canonical Digital Links)."""
    out = []
    for c in classes:
        if c.kind == "lot":
            out.append(f"https://id.gs1.org/01/{c.gtin}/10/{c.lot}")
        elif c.kind == "product":
            out.append(f"https://id.gs1.org/01/{c.gtin}")
    return out


def _class_named(classes: tuple[Epc, ...], roles: tuple[str, ...]):
    """Captured events naming one of these classes in one of ``roles``: a lot exactly, a
    GTIN alone as itself or any of its lots."""
    epc = CapturedEventEpc.epc
    lots = [
        epc.startswith(f"https://id.gs1.org/01/{c.gtin}/10/", autoescape=True)
        for c in classes
        if c.kind == "product"
    ]
    return _named(sa.or_(epc.in_(_class_keys(classes)), *lots), roles)


def _unit_condition(epcs: tuple[Epc, ...], roles: tuple[str, ...]):
    serials = [e.serial for e in epcs if e.kind == "unit" and e.serial is not None]
    return _named(CapturedEventEpc.serial.in_(serials), roles) if serials else sa.false()


def captured_events(f: Filters, viewer: Principal, uris: Uris, after: int, limit: int):
    """Events outside systems captured, served as they were stored (their IDs unchanged)."""
    c = CapturedEvent
    query = sa.select(c.id, c.body).where(c.id > after, _captured_visibility(viewer))
    query = times(query, c.event_time, c.record_time, f)
    for wanted, column in (
        (f.event_types, c.type),
        (f.biz_steps, c.biz_step),
        (f.dispositions, c.disposition),
    ):
        if wanted is not None:
            query = query.where(column.in_(sorted(wanted)))
    for epcs, roles in (
        (f.match_epc, ("epc",)),
        (f.match_any_epc, ANY_EPC),
        (f.match_input_epc, ("input",)),
        (f.match_output_epc, ("output",)),
    ):
        if epcs is not None:
            query = query.where(_unit_condition(epcs, roles))
    for classes, roles in (
        (f.match_epc_class, ("class",)),
        (f.match_any_epc_class, ANY_CLASS),
        (f.match_input_epc_class, ("input_class",)),
        (f.match_output_epc_class, ("output_class",)),
    ):
        if classes is not None:
            query = query.where(_class_named(classes, roles))
    if f.transformation_ids is not None:
        query = query.where(c.transformation_id.in_(sorted(f.transformation_ids)))
    if f.related is not None:
        lot = _class_named(related_classes(f), ANY_CLASS)
        if f.related.kind == "unit":
            lot = sa.or_(lot, _unit_condition((f.related,), ANY_EPC))
        query = query.where(lot)
    for places, column in ((f.read_points, c.read_point), (f.biz_locations, c.biz_location)):
        if places is not None:
            wanted = [uris.place(p.party_type, p.party_id) for p in places if p.kind == "place"]
            query = query.where(column.in_(wanted))
    if f.only is not None:
        query = query.where(c.id == f.only[1] if f.only[0] == "captured" else sa.false())
    return query.order_by(c.id).limit(limit)
