"""The EPCIS query: our stored facts read as EPCIS events, filtered, shown to whom may see them,
one page at a time.

Four sources make the events, read in this order, each by its own key:

1. the issue of a batch's codes (``issuances``): a commissioning ObjectEvent of the batch's
   class, with its ILMD;
2. a batch's recall (``batches`` recalled): an ObjectEvent of the class, disposition recalled;
3. the events devices reported (``events``): one EPCIS event each (packing an AggregationEvent);
4. the events outside systems captured (``captured_events``), as stored at capture
   (app/epcis/query_captured.py).

A page token is the source and the last key read (and what is left of ``eventCountLimit``),
so paging is keyset paging: stable while events keep arriving, and a page costs the same at the
millionth event as at the first.

Who sees what, as for the history API: authorities everything (regulators inside their
jurisdiction: a unit's or batch's events by its merchant's region, a parcel's by its consignee's
or its shipper's), a merchant the events of its own products' units and batches and of the
parcels it shipped, a logistics company those of the parcels it carries. What an event shows
does not depend on who reads it (its ID is a hash of its content): no event carries a point, a
courier's name or a consignee (see tracecore/epcis.py).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.catalog.models import Batch, BatchStatus, Product
from app.codes.models import Issuance, TraceCode
from app.epcis import ids
from app.epcis.filters import Filters, related_classes, times
from app.epcis.query_captured import captured_events
from app.events.models import Event, Parcel, ParcelItem
from app.parties.models import Courier, Merchant
from tracecore import epcis
from tracecore.access import Principal, Role
from tracecore.epcis import AGGREGATION, OBJECT, Epc, EpcisEvent, Uris
from tracecore.errors import ValidationError
from tracecore.vocabulary import EventType

#: Issuances and recalls are recorded by the service for people in China: their events are
#: given in China Standard Time (devices' events keep the offset the device sent).
SERVICE_OFFSET_MIN = 480

SOURCES = ("issuance", "recall", "event", "captured")


@dataclass(frozen=True)
class Position:
    """Where the next page starts: the source (an index into SOURCES), the last key read, and
    how many events ``eventCountLimit`` still allows (None: no limit)."""

    source: int = 0
    after: int = 0
    left: int | None = None

    def token(self) -> str:
        text = f"{self.source}.{self.after}.{'' if self.left is None else self.left}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def read(cls, token: str) -> Position:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            source, after, left = text.split(".")
            position = cls(int(source), int(after), int(left) if left else None)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            position = None
        if position is None or not (0 <= position.source < len(SOURCES)) or position.after < 0:
            raise ValidationError(
                "nextPageToken is not one this service gave", field="nextPageToken"
            )
        return position


@dataclass
class Page:
    events: list[dict]
    next: Position | None
    #: (digest, source, key) of each event, for the ID registry
    ids: list[tuple[str, str, int]] = field(default_factory=list)


# -- what each bizStep and disposition means in our types -------------------------------------


def _types_by(attribute: str, uris: Uris) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for type_, why in epcis.MAPPING.items():
        out[epcis.vocabulary_value(getattr(why, attribute), uris)].add(type_)
    return out


# -- who sees what ----------------------------------------------------------------------------


def _region(column, viewer: Principal):
    return sa.or_(*(column.startswith(prefix, autoescape=True) for prefix in viewer.jurisdiction))


def _lot_visibility(viewer: Principal, product, merchant):
    """Who sees a batch's events (and a unit's): authorities (regulators by the merchant's
    region) and the product's merchant."""
    if viewer.role is Role.ADMIN or (viewer.is_authority and not viewer.jurisdiction):
        return sa.true()
    if viewer.is_authority:
        return _region(merchant.region_code, viewer)
    if viewer.role is Role.MERCHANT:
        return product.merchant_id == viewer.party_id
    return sa.false()


def _parcel_visibility(viewer: Principal, parcel, shipper):
    """Who sees a parcel's events: authorities (regulators by the consignee's or the
    shipper's region), the shipper and the carrier."""
    if viewer.role is Role.ADMIN or (viewer.is_authority and not viewer.jurisdiction):
        return sa.true()
    if viewer.is_authority:
        return sa.or_(
            _region(parcel.consignee_region_code, viewer), _region(shipper.region_code, viewer)
        )
    if viewer.role is Role.MERCHANT:
        return parcel.merchant_id == viewer.party_id
    if viewer.role is Role.LOGISTICS:
        return parcel.logistics_company_id == viewer.party_id
    return sa.false()


# -- the first three sources: ours ----------------------------------------------------------


def _class_sets(f: Filters) -> list[tuple[Epc, ...]]:
    """The sets of EPC classes a lot event must be of, one of each set: MATCH_epcClass,
    MATCH_anyEPCClass, and a unit's or a batch's own events."""
    sets = [c for c in (f.match_epc_class, f.match_any_epc_class) if c is not None]
    return [*sets, related_classes(f)] if f.related is not None else sets


def _transformations_only(f: Filters) -> bool:
    """Whether the query asks for what only a TransformationEvent has."""
    return any(
        value is not None
        for value in (
            f.match_input_epc,
            f.match_output_epc,
            f.match_input_epc_class,
            f.match_output_epc_class,
            f.transformation_ids,
        )
    )


def _class_condition(classes: tuple[Epc, ...], product, batch):
    parts = []
    for c in classes:
        if c.kind == "lot":
            parts.append(sa.and_(product.gtin == c.gtin, batch.lot == c.lot))
        elif c.kind == "product":
            parts.append(product.gtin == c.gtin)
    return sa.or_(*parts) if parts else sa.false()


def _lot_source_excluded(f: Filters, biz_step: str | None, disposition: str) -> bool:
    return bool(
        (f.event_types is not None and OBJECT not in f.event_types)
        or (f.biz_steps is not None and biz_step not in f.biz_steps)
        or (f.dispositions is not None and disposition not in f.dispositions)
        or f.match_epc is not None
        or f.match_any_epc is not None
        or _transformations_only(f)
        or (f.related is not None and f.related.kind not in ("unit", "lot"))
    )


def _issuances(f: Filters, viewer: Principal, after: int, limit: int):
    if _lot_source_excluded(f, "commissioning", "active"):
        return None
    merchant = Merchant.__table__.alias("owner")
    query = (
        sa.select(
            Issuance.id,
            Issuance.issued_at,
            Issuance.count,
            Product.gtin,
            Batch.lot,
            Batch.produced_on,
            Batch.expires_on,
            Batch.origin_name,
            Product.merchant_id,
        )
        .join(Batch, Issuance.batch_id == Batch.id)
        .join(Product, Batch.product_id == Product.id)
        .join(merchant, merchant.c.id == Product.merchant_id)
        .where(Issuance.id > after, _lot_visibility(viewer, Product, merchant.c))
    )
    query = times(query, Issuance.issued_at, Issuance.issued_at, f)
    for classes in _class_sets(f):
        query = query.where(_class_condition(classes, Product, Batch))
    for places in (f.biz_locations, f.read_points):
        if places is not None:
            ids_ = [p.party_id for p in places if p.party_type == "merchant"]
            query = query.where(Product.merchant_id.in_(ids_) if ids_ else sa.false())
    if f.only is not None:
        query = query.where(Issuance.id == f.only[1] if f.only[0] == "issuance" else sa.false())
    return query.order_by(Issuance.id).limit(limit)


def _recalls(f: Filters, viewer: Principal, after: int, limit: int):
    if (
        _lot_source_excluded(f, None, epcis.RECALL_DISPOSITION)
        or f.biz_locations is not None
        or f.read_points is not None
    ):
        return None
    merchant = Merchant.__table__.alias("owner")
    query = (
        sa.select(Batch.id, Batch.recalled_at, Product.gtin, Batch.lot)
        .join(Product, Batch.product_id == Product.id)
        .join(merchant, merchant.c.id == Product.merchant_id)
        .where(
            Batch.id > after,
            Batch.status == BatchStatus.RECALLED,
            Batch.recalled_at.is_not(None),
            _lot_visibility(viewer, Product, merchant.c),
        )
    )
    query = times(query, Batch.recalled_at, Batch.recalled_at, f)
    for classes in _class_sets(f):
        query = query.where(_class_condition(classes, Product, Batch))
    if f.only is not None:
        query = query.where(Batch.id == f.only[1] if f.only[0] == "recall" else sa.false())
    return query.order_by(Batch.id).limit(limit)


def _units_packed(epc: Epc):
    """The packings that name this unit: by the waybills read ahead (an index lookup each; a
    subquery here made PostgreSQL scan the events in key order)."""
    if not epc.waybills:
        return sa.false()
    return sa.and_(Event.waybill.in_(epc.waybills), Event.type == EventType.PACKED)


def _epc_condition(epcs: tuple[Epc, ...], any_epc: bool):
    """MATCH_epc (epcList, childEPCs) or MATCH_anyEPC (and parentID) over device events.
    Units arrive resolved to their serial (see :func:`resolve_units`); None: no such unit."""
    parts = []
    for epc in epcs:
        if epc.kind == "unit" and epc.serial is not None:
            parts += [Event.serial == epc.serial, _units_packed(epc)]
        elif epc.kind == "parcel":
            if any_epc:
                parts.append(Event.waybill == epc.waybill)
            else:
                parts.append(sa.and_(Event.waybill == epc.waybill, Event.type != EventType.PACKED))
    return sa.or_(*parts) if parts else sa.false()


def _place_condition(places: tuple[Epc, ...], courier, at_merchant_only: bool):
    parts = []
    for place in places:
        if place.party_type == "merchant":
            parts.append(sa.and_(Event.party_type == "merchant", Event.party_id == place.party_id))
        elif place.party_type == "logistics_company" and not at_merchant_only:
            parts.append(
                sa.and_(Event.party_type == "courier", courier.company_id == place.party_id)
            )
    return sa.or_(*parts) if parts else sa.false()


def _events(f: Filters, viewer: Principal, uris: Uris, after: int, limit: int):
    if (
        f.match_epc_class is not None
        or f.match_any_epc_class is not None
        or (f.related is not None and f.related.kind == "lot")
        or _transformations_only(f)
    ):
        return None  # device events name instances, never a class, and transform nothing
    # Entities, not ORM aliases: adapting an aliased entity cost more than the query itself.
    unit, batch, product, courier, parcel = TraceCode, Batch, Product, Courier, Parcel
    owner, shipper = Merchant.__table__.alias("owner"), Merchant.__table__.alias("shipper")
    query = (
        sa.select(
            Event.id,
            Event.type,
            Event.occurred_at,
            Event.utc_offset_min,
            Event.received_at,
            Event.party_type,
            Event.party_id,
            Event.serial,
            Event.waybill,
            Event.data,
            courier.company_id,
            product.gtin,
            batch.lot,
        )
        .select_from(Event)
        .outerjoin(unit, unit.serial == Event.serial)
        .outerjoin(batch, batch.id == unit.batch_id)
        .outerjoin(product, product.id == batch.product_id)
        .outerjoin(courier, sa.and_(Event.party_type == "courier", courier.id == Event.party_id))
        .where(Event.id > after)
    )
    if not (viewer.role is Role.ADMIN or (viewer.is_authority and not viewer.jurisdiction)):
        query = query.outerjoin(parcel, parcel.waybill == Event.waybill)
        if viewer.is_authority:
            query = query.outerjoin(owner, owner.c.id == product.merchant_id).outerjoin(
                shipper, shipper.c.id == parcel.merchant_id
            )
        query = query.where(
            sa.or_(
                sa.and_(Event.serial.is_not(None), _lot_visibility(viewer, product, owner.c)),
                sa.and_(Event.waybill.is_not(None), _parcel_visibility(viewer, parcel, shipper.c)),
            )
        )
    query = times(query, Event.occurred_at, Event.received_at, f)
    if f.event_types is not None:
        kinds = []
        if OBJECT in f.event_types:
            kinds.append(Event.type != EventType.PACKED)
        if AGGREGATION in f.event_types:
            kinds.append(Event.type == EventType.PACKED)
        query = query.where(sa.or_(*kinds) if kinds else sa.false())
    for wanted, attribute in ((f.biz_steps, "biz_step"), (f.dispositions, "disposition")):
        if wanted is not None:
            by = _types_by(attribute, uris)
            types = sorted({t for w in wanted for t in by.get(w, ())})
            query = query.where(Event.type.in_(types) if types else sa.false())
    if f.match_epc is not None:
        query = query.where(_epc_condition(f.match_epc, any_epc=False))
    if f.match_any_epc is not None:
        query = query.where(_epc_condition(f.match_any_epc, any_epc=True))
    if f.related is not None:
        query = query.where(_epc_condition((f.related,), any_epc=True))
    if f.read_points is not None:
        query = query.where(_place_condition(f.read_points, courier, at_merchant_only=False))
    if f.biz_locations is not None:
        query = query.where(_place_condition(f.biz_locations, courier, at_merchant_only=True))
    if f.only is not None:
        query = query.where(Event.id == f.only[1] if f.only[0] == "event" else sa.false())
    return query.order_by(Event.id).limit(limit)


def resolve_units(session: Session, epcs: tuple[Epc, ...] | None) -> tuple[Epc, ...] | None:
    """Units named by Digital Link, each kept with its serial only if that serial is a code of
    that GTIN (and lot, when given), and with the waybills of the parcels it was packed in;
    otherwise it names nothing here (serial None)."""
    if not epcs:
        return epcs
    out = []
    for epc in epcs:
        if epc.kind == "unit":
            query = (
                sa.select(TraceCode.serial)
                .join(Batch, TraceCode.batch_id == Batch.id)
                .join(Product, Batch.product_id == Product.id)
                .where(TraceCode.serial == epc.serial, Product.gtin == epc.gtin)
            )
            if epc.lot is not None:
                query = query.where(Batch.lot == epc.lot)
            serial = session.scalar(query)
            waybills = session.scalars(
                sa.select(ParcelItem.waybill).where(ParcelItem.serial == serial)
            )
            epc = replace(epc, serial=serial, waybills=tuple(waybills) if serial else ())
        out.append(epc)
    return tuple(out)


# -- rendering ----------------------------------------------------------------------------------


def _children(session: Session, uris: Uris, waybills: set[str]) -> dict[str, tuple[str, ...]]:
    """The units packed in each of these parcels, as EPCs."""
    if not waybills:
        return {}
    rows = session.execute(
        sa.select(ParcelItem.waybill, ParcelItem.serial, Product.gtin, Batch.lot)
        .join(TraceCode, TraceCode.serial == ParcelItem.serial)
        .join(Batch, TraceCode.batch_id == Batch.id)
        .join(Product, Batch.product_id == Product.id)
        .where(ParcelItem.waybill.in_(sorted(waybills)))
        .order_by(ParcelItem.waybill, ParcelItem.serial)
    )
    out: dict[str, list[str]] = defaultdict(list)
    for waybill, serial, gtin, lot in rows:
        out[waybill].append(uris.unit(gtin, lot, serial))
    return {w: tuple(units) for w, units in out.items()}


def _issuance_event(uris: Uris, row) -> EpcisEvent:
    _, issued_at, count, gtin, lot, produced_on, expires_on, origin_name, merchant_id = row
    return epcis.commissioning_event(
        uris,
        issued_at=issued_at,
        count=count,
        gtin=gtin,
        lot=lot,
        produced_on=produced_on,
        expires_on=expires_on,
        origin_name=origin_name,
        merchant_place=uris.place("merchant", merchant_id),
        offset_min=SERVICE_OFFSET_MIN,
    )


def _recall_event(uris: Uris, row) -> EpcisEvent:
    _, recalled_at, gtin, lot = row
    return epcis.recall_event(
        uris, recalled_at=recalled_at, gtin=gtin, lot=lot, offset_min=SERVICE_OFFSET_MIN
    )


def _device_event(uris: Uris, row, children: dict[str, tuple[str, ...]]) -> EpcisEvent:
    (_, type_, occurred_at, offset, received_at, party_type, party_id, serial, waybill, data,
     company_id, gtin, lot) = row  # fmt: skip
    if party_type == "courier":
        place = uris.place("logistics_company", company_id)
    else:
        place = uris.place(party_type, party_id)
    order = (data or {}).get("order_id") if type_ == EventType.SOLD else None
    return epcis.device_event(
        uris,
        type_,
        occurred_at=occurred_at,
        offset_min=offset,
        received_at=received_at,
        subject=uris.unit(gtin, lot, serial) if serial else uris.parcel(waybill),
        children=children.get(waybill, ()) if type_ == EventType.PACKED else (),
        party_place=place,
        order=uris.order(party_id, order) if order else None,
    )


def read_page(
    session: Session,
    viewer: Principal,
    uris: Uris,
    filters: Filters,
    start: Position,
    per_page: int,
) -> Page:
    """One page of events (at most ``per_page``, and what ``start.left`` allows) from ``start``
    on, as EPCIS JSON with their IDs; ``next`` is where the following page starts, if any."""
    need = per_page if start.left is None else min(per_page, start.left)
    rendered: list[tuple[str, int, EpcisEvent | dict]] = []
    source, after, nxt = start.source, start.after, None
    builders = (_issuances, _recalls, None, None)
    while source < len(SOURCES):
        want = need - len(rendered)
        if SOURCES[source] == "event":
            query = _events(filters, viewer, uris, after, want + 1)
        elif SOURCES[source] == "captured":
            query = captured_events(filters, viewer, uris, after, want + 1)
        else:
            query = builders[source](filters, viewer, after, want + 1)
        rows = session.execute(query).all() if query is not None else []
        taken = rows[:want]
        if SOURCES[source] == "event":
            packs = {r.waybill for r in taken if r.type == EventType.PACKED}
            children = _children(session, uris, packs)
            events = [_device_event(uris, r, children) for r in taken]
        elif SOURCES[source] == "captured":
            events = [r.body for r in taken]  # as stored: the ID given at capture
        elif SOURCES[source] == "issuance":
            events = [_issuance_event(uris, r) for r in taken]
        else:
            events = [_recall_event(uris, r) for r in taken]
        rendered += [(SOURCES[source], r[0], e) for r, e in zip(taken, events, strict=True)]
        if len(rows) > want:  # more in this source than the page holds
            last = taken[-1][0] if taken else after
            nxt = Position(source, last)
            break
        source, after = source + 1, 0
    left = None if start.left is None else start.left - len(rendered)
    if nxt is not None and left is not None:
        nxt = replace(nxt, left=left) if left > 0 else None
    page = Page([], nxt)
    for source_name, key, event in rendered:
        body = event if isinstance(event, dict) else epcis.event_json(event, uris)
        page.events.append(body)
        page.ids.append((body["eventID"].split(";", 1)[1][:64], source_name, key))
    ids.record(session, page.ids)
    return page


def device_events(
    session: Session,
    viewer: Principal,
    uris: Uris,
    event_ids: list[str],
    *,
    batch_id: int | None = None,
    merchant_id: int | None = None,
) -> list[tuple[dict, str | None]]:
    """These device events (by the devices' event UUIDs) as EPCIS JSON with their IDs, in
    the order stored: those the viewer may see, of one batch's units or one merchant's
    (its products' units and the parcels it shipped) when asked; each with its type when
    it is a parcel's (None for a unit's). The webhooks' ``events`` topic sends these."""
    if not event_ids:
        return []
    query = _events(Filters(), viewer, uris, 0, len(event_ids)).where(Event.event_id.in_(event_ids))
    if batch_id is not None:
        query = query.where(Batch.id == batch_id)
    if merchant_id is not None:
        shipped = sa.select(Parcel.waybill).where(Parcel.merchant_id == merchant_id)
        query = query.where(sa.or_(Product.merchant_id == merchant_id, Event.waybill.in_(shipped)))
    rows = session.execute(query).all()
    children = _children(session, uris, {r.waybill for r in rows if r.type == EventType.PACKED})
    out, emitted = [], []
    for row in rows:
        body = epcis.event_json(_device_event(uris, row, children), uris)
        out.append((body, EventType(row.type).value if row.serial is None else None))
        emitted.append((body["eventID"].split(";", 1)[1][:64], "event", row.id))
    ids.record(session, emitted)
    return out


def find(session: Session, viewer: Principal, uris: Uris, digest: str) -> dict | None:
    """The event with this ID as the viewer may see it; None when it is not one we gave out,
    or the viewer may not see it."""
    origin = ids.find(session, digest)
    if origin is None:
        return None
    page = read_page(session, viewer, uris, Filters(only=origin), Position(), 1)
    if not page.events or page.ids[0][0] != digest:
        return None
    return page.events[0]
