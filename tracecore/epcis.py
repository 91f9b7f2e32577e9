"""Our events in GS1 EPCIS 2.0 / CBV 2.0 terms, and their CBV 2.0 event hashes.

Plain values in, plain values out: :class:`EpcisEvent` is one event as EPCIS sees it (what,
when, where, why), built by the mapping functions below from the facts the service stores;
:func:`event_json` renders it as JSON-LD and :func:`event_hash` gives its event ID, the
``ni:///sha-256;…?ver=CBV2.0`` hash of the EPCIS 2.0 standard (section 8.9, "event hash").

The identifiers we mint (parcels, parties' places, orders, our own vocabulary) are URIs under
the resolver's host; the scheme is documented in docs/epcis.md. No place of a consignee,
no scan's GPS point and no courier's name is ever part of an EPCIS event: places are the
parties' registered places, and a courier's scans are read at its logistics company.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import quote, unquote, urlsplit

from tracecore.errors import ValidationError
from tracecore.gs1 import DigitalLink, digital_link_uri, parse_digital_link
from tracecore.vocabulary import EventType

#: The EPCIS 2.0 JSON-LD context (the standard's URL; the hash reference ships a copy).
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: The namespace of CBV master-data attributes used in ILMD (as the EPCIS context defines it).
CBVMDA = "urn:epcglobal:cbv:mda:"
#: CBV 2.0 web vocabulary: a bare bizStep "shipping" stands for BizStep-shipping here.
CBV = "https://ref.gs1.org/cbv/"

OBJECT = "ObjectEvent"
AGGREGATION = "AggregationEvent"
TRANSFORMATION = "TransformationEvent"


# -- identifiers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Uris:
    """The URIs we mint, under ``scheme://host`` (the resolver's host)."""

    host: str
    scheme: str = "https"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def unit(self, gtin: str, lot: str, serial: str) -> str:
        """A unit's EPC: its GS1 Digital Link URI (the one on its label)."""
        return digital_link_uri(self.host, gtin, lot, serial, scheme=self.scheme)

    def lot(self, gtin: str, lot: str) -> str:
        """A batch's EPC class: the Digital Link URI of GTIN + lot (an LGTIN)."""
        return digital_link_uri(self.host, gtin, lot, None, scheme=self.scheme)

    def parcel(self, waybill: str) -> str:
        return f"{self.base}/id/parcel/{quote(waybill, safe='')}"

    def place(self, party_type: str, party_id: int) -> str:
        """A party's registered place (a merchant's shop, a logistics company's site)."""
        return f"{self.base}/id/place/{party_type}/{party_id}"

    def order(self, merchant_id: int, order_id: str) -> str:
        """A merchant's order, as a business transaction."""
        return f"{self.base}/id/merchant/{merchant_id}/order/{quote(order_id, safe='')}"

    def vocabulary(self) -> str:
        """Our own vocabulary's namespace, for what CBV has no value for."""
        return f"{self.base}/voc/"

    def term(self, name: str) -> str:
        return self.vocabulary() + name

    def namespaces(self) -> dict[str, str]:
        """The prefixes our documents declare (and the hash expands)."""
        return {"cbvmda": CBVMDA, "trace": self.vocabulary()}

    def context(self) -> list:
        """The ``@context`` of every document we emit: the standard's, and our prefixes."""
        return [EPCIS_CONTEXT, self.namespaces()]


@dataclass(frozen=True)
class Epc:
    """What an EPC (or EPC class) given to a query names, read from its URI."""

    kind: str  #: unit, lot, product, parcel or place
    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    waybill: str | None = None
    party_type: str | None = None
    party_id: int | None = None
    #: a unit's parcels (their waybills), when the query has read them
    waybills: tuple[str, ...] = ()


_PLACE_RE = re.compile(r"/id/place/(merchant|logistics_company)/([1-9][0-9]{0,9})")
_PARCEL_RE = re.compile(r"/id/parcel/([^/]+)")


def read_epc(uri: str, uris: Uris, field: str = "epc") -> Epc:
    """Read a unit's or a batch's Digital Link URI (on any host: a GS1 key means the same
    everywhere), or one of our parcel or place URIs (on our host). Raises ValidationError."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise ValidationError(f"{field}: not a URI: {uri[:80]!r}", field=field) from None
    if parts.path.startswith("/01/"):
        link: DigitalLink = parse_digital_link(uri, field=field)
        if link.serial is not None:
            return Epc("unit", link.gtin14, link.lot, link.serial)
        if link.lot is not None:
            return Epc("lot", link.gtin14, link.lot)
        return Epc("product", link.gtin14)
    ours = parts.scheme in ("http", "https") and (parts.netloc or "").lower() == uris.host.lower()
    if ours and (match := _PARCEL_RE.fullmatch(parts.path)):
        return Epc("parcel", waybill=unquote(match.group(1)))
    if ours and (match := _PLACE_RE.fullmatch(parts.path)):
        return Epc("place", party_type=match.group(1), party_id=int(match.group(2)))
    raise ValidationError(
        f"{field}: {uri[:80]!r} is neither a GS1 Digital Link URI (/01/…) nor one of this "
        f"service's parcel or place URIs ({uris.base}/id/…)",
        field=field,
    )


# -- the events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpcisEvent:
    """One event in EPCIS terms. Tuples, not lists: a value, hashable and comparable."""

    type: str  #: ObjectEvent, AggregationEvent or TransformationEvent
    event_time: datetime  #: aware
    offset_min: int  #: the UTC offset the event was recorded in, in minutes
    record_time: datetime
    action: str | None  #: None for a TransformationEvent (it has no action)
    epcs: tuple[str, ...] = ()
    parent: str | None = None
    children: tuple[str, ...] = ()
    #: (epcClass, quantity or None), or (epcClass, quantity, unit of measure)
    quantities: tuple[tuple, ...] = ()
    biz_step: str | None = None  #: a bare CBV word or a full URI of ours
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    #: (type, URI), the type a bare CBV word
    biz_transactions: tuple[tuple[str, str], ...] = ()
    #: (prefixed name, value) of the instance/lot master data
    ilmd: tuple[tuple[str, str], ...] = ()
    #: (type, URI) of the sources and destinations, the type a bare CBV word or a URI
    sources: tuple[tuple[str, str], ...] = ()
    destinations: tuple[tuple[str, str], ...] = ()
    #: (prefix, namespace) the event's own ``@context`` declares beyond ours (a captured
    #: event's ILMD names its sender's prefixes)
    namespaces: tuple[tuple[str, str], ...] = ()
    #: A TransformationEvent's inputs and outputs (EPCs, and quantities as ``quantities``),
    #: and the ID tying the events of one transformation together
    inputs: tuple[str, ...] = ()
    input_quantities: tuple[tuple, ...] = ()
    outputs: tuple[str, ...] = ()
    output_quantities: tuple[tuple, ...] = ()
    transformation_id: str | None = None


@dataclass(frozen=True)
class Why:
    """What one of our event types means in CBV terms."""

    type: str
    action: str
    biz_step: str  #: a bare CBV word, or ``trace:name`` for our own vocabulary
    disposition: str
    #: at the merchant's place (readPoint and bizLocation), or read at the carrier's site
    at_merchant: bool


#: Each event type a device reports, in CBV 2.0 terms (docs/epcis.md has the table and why).
MAPPING: dict[str, Why] = {
    EventType.SHELVED: Why(OBJECT, "OBSERVE", "stocking", "sellable_accessible", True),
    EventType.SOLD: Why(OBJECT, "OBSERVE", "retail_selling", "retail_sold", True),
    EventType.PACKED: Why(AGGREGATION, "ADD", "packing", "in_progress", True),
    EventType.PICKED_UP: Why(OBJECT, "OBSERVE", "shipping", "in_transit", False),
    EventType.IN_TRANSIT: Why(OBJECT, "OBSERVE", "transporting", "in_transit", False),
    EventType.OUT_FOR_DELIVERY: Why(
        OBJECT, "OBSERVE", "trace:BizStep-out_for_delivery", "in_transit", False
    ),
    EventType.DELIVERY_FAILED: Why(
        OBJECT, "OBSERVE", "trace:BizStep-delivery_failed", "in_transit", False
    ),
    EventType.SIGNED: Why(OBJECT, "OBSERVE", "accepting", "trace:Disp-delivered", False),
    EventType.RETURNED: Why(OBJECT, "OBSERVE", "trace:BizStep-returned", "returned", False),
}
#: The lot-level events that come from batches rather than devices.
COMMISSIONING = Why(OBJECT, "ADD", "commissioning", "active", True)
RECALL_DISPOSITION = "recalled"


def vocabulary_value(word: str, uris: Uris) -> str:
    """A bizStep or disposition as emitted: a bare CBV word, or our own term's full URI."""
    return uris.term(word.removeprefix("trace:")) if word.startswith("trace:") else word


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The CBV 2.0 words of each vocabulary (as GS1's EPCIS 2.0 JSON schema lists them): these
#: alone are written bare; any other value is a URI.
CBV_WORDS = {
    "BizStep": _words(
        "accepting arriving assembling collecting commissioning consigning "
        "creating_class_instance cycle_counting decommissioning departing destroying "
        "disassembling dispensing encoding entering_exiting holding inspecting installing "
        "killing loading other packing picking receiving removing repackaging repairing "
        "replacing reserving retail_selling shipping staging_outbound stock_taking stocking "
        "storing transporting unloading unpacking void_shipping sensor_reporting sampling"
    ),
    "Disp": _words(
        "active container_closed damaged destroyed dispensed disposed encoded expired "
        "in_progress in_transit inactive no_pedigree_match non_sellable_other "
        "partially_dispensed recalled reserved retail_sold returned sellable_accessible "
        "sellable_not_accessible stolen unknown available completeness_verified "
        "completeness_inferred conformant container_open mismatch_instance mismatch_class "
        "mismatch_quantity needs_replacement non_conformant unavailable"
    ),
    "BTT": _words("bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt"),
    "SDT": _words("owning_party possessing_party location"),
}


def normalise_vocabulary(value: str, kind: str) -> str:
    """A CBV bizStep, disposition, business transaction or source/destination type as a bare
    word, whichever form the client used (bare, https://ref.gs1.org/cbv/BizStep-x or
    urn:epcglobal:cbv:bizstep:x); a word CBV does not have in that vocabulary as its
    https://ref.gs1.org/cbv/… URI (the form the hash reads it in, and the schema accepts);
    other URIs unchanged."""
    for prefix in (f"{CBV}{kind}-", f"urn:epcglobal:cbv:{kind.lower()}:"):
        if value.startswith(prefix):
            word = value[len(prefix) :]
            return word if word in CBV_WORDS[kind] else f"{CBV}{kind}-{word}"
    return value


def device_event(
    uris: Uris,
    type_: str,
    *,
    occurred_at: datetime,
    offset_min: int,
    received_at: datetime,
    subject: str,
    children: tuple[str, ...] = (),
    party_place: str,
    order: str | None = None,
) -> EpcisEvent:
    """One event a device reported: ``subject`` is the unit's EPC (unit events) or the
    parcel's (parcel events, and the parent of a packing whose ``children`` are the units);
    ``party_place`` the reporting party's place (a courier's: its company's); ``order`` the
    sale's order as a business transaction URI."""
    why = MAPPING[type_]
    packing = why.type == AGGREGATION
    return EpcisEvent(
        type=why.type,
        event_time=occurred_at,
        offset_min=offset_min,
        record_time=received_at,
        action=why.action,
        epcs=() if packing else (subject,),
        parent=subject if packing else None,
        children=tuple(children) if packing else (),
        biz_step=vocabulary_value(why.biz_step, uris),
        disposition=vocabulary_value(why.disposition, uris),
        read_point=party_place,
        biz_location=party_place if why.at_merchant else None,
        biz_transactions=(("po", order),) if order else (),
    )


def commissioning_event(
    uris: Uris,
    *,
    issued_at: datetime,
    count: int,
    gtin: str,
    lot: str,
    produced_on: date,
    expires_on: date,
    origin_name: str,
    merchant_place: str,
    offset_min: int,
) -> EpcisEvent:
    """The issue of a batch's codes: the units come into being (commissioning), as a count of
    the batch's class, with the batch's ILMD (lot, production and expiry dates, origin)."""
    return EpcisEvent(
        type=OBJECT,
        event_time=issued_at,
        offset_min=offset_min,
        record_time=issued_at,
        action=COMMISSIONING.action,
        quantities=((uris.lot(gtin, lot), count),),
        biz_step=COMMISSIONING.biz_step,
        disposition=COMMISSIONING.disposition,
        read_point=merchant_place,
        biz_location=merchant_place,
        ilmd=(
            ("cbvmda:lotNumber", lot),
            ("cbvmda:itemExpirationDate", expires_on.isoformat()),
            ("trace:productionDate", produced_on.isoformat()),
            ("trace:originName", origin_name),
        ),
    )


def recall_event(uris: Uris, *, recalled_at: datetime, gtin: str, lot: str, offset_min: int):
    """A regulator's recall of a batch: every unit of the lot is now ``recalled``."""
    return EpcisEvent(
        type=OBJECT,
        event_time=recalled_at,
        offset_min=offset_min,
        record_time=recalled_at,
        action="OBSERVE",
        quantities=((uris.lot(gtin, lot), None),),
        disposition=RECALL_DISPOSITION,
    )


# -- JSON-LD ---------------------------------------------------------------------------------


def offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def local_time(moment: datetime, offset_min: int) -> str:
    """RFC 3339 in the event's own offset, to the millisecond (the hash's precision)."""
    local = moment.astimezone(UTC).astimezone(timezone(timedelta(minutes=offset_min)))
    local = local.replace(microsecond=local.microsecond // 1000 * 1000)
    text = local.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if offset_min == 0 else text


def utc_time(moment: datetime) -> str:
    return local_time(moment, 0)


def event_json(event: EpcisEvent, uris: Uris) -> dict:
    """The event as EPCIS 2.0 JSON-LD (without ``@context``: the document carries it), with
    its hash as ``eventID``."""
    out: dict = {
        "type": event.type,
        "eventID": event_hash(event, uris),
        "eventTime": local_time(event.event_time, event.offset_min),
        "eventTimeZoneOffset": offset_text(event.offset_min),
        "recordTime": utc_time(event.record_time),
    }
    if event.parent is not None:
        out["parentID"] = event.parent
    if event.epcs:
        out["epcList"] = list(event.epcs)
    if event.children:
        out["childEPCs"] = list(event.children)
    if event.action is not None:
        out["action"] = event.action
    if event.quantities:
        out["quantityList"] = [_quantity_json(*element) for element in event.quantities]
    for key, epcs, quantities in (
        ("input", event.inputs, event.input_quantities),
        ("output", event.outputs, event.output_quantities),
    ):
        if epcs:
            out[f"{key}EPCList"] = list(epcs)
        if quantities:
            out[f"{key}QuantityList"] = [_quantity_json(*element) for element in quantities]
    if event.transformation_id is not None:
        out["transformationID"] = event.transformation_id
    for key, value in (
        ("bizStep", event.biz_step),
        ("disposition", event.disposition),
    ):
        if value is not None:
            out[key] = value
    if event.read_point:
        out["readPoint"] = {"id": event.read_point}
    if event.biz_location:
        out["bizLocation"] = {"id": event.biz_location}
    if event.biz_transactions:
        out["bizTransactionList"] = [
            {"type": t, "bizTransaction": uri} for t, uri in event.biz_transactions
        ]
    for key, name, pairs in (
        ("sourceList", "source", event.sources),
        ("destinationList", "destination", event.destinations),
    ):
        if pairs:
            out[key] = [{"type": t, name: uri} for t, uri in pairs]
    if event.ilmd:
        out["ilmd"] = dict(event.ilmd)
    if event.namespaces:
        out = {"@context": [dict(event.namespaces)], **out}
    return out


def _quantity_json(epc_class: str, quantity=None, uom: str | None = None) -> dict:
    out: dict = {"epcClass": epc_class}
    if quantity is not None:
        out["quantity"] = quantity
    if uom is not None:
        out["uom"] = uom
    return out


# -- the CBV 2.0 event hash --------------------------------------------------------------------
# The pre-hash string concatenates, in the standard's order, ``name=value`` for every field the
# event has (lists sorted, nested elements named first), times in UTC to the millisecond, GS1
# keys as canonical Digital Link URIs (https://id.gs1.org/…, the finest level only), CBV words
# as their web-vocabulary URIs, numbers without padding; then the fields outside that order
# (ILMD, business transactions) sorted, with prefixes expanded to {namespace}name. Where the
# reference implementation (epcis-event-hash-generator, PyPI) reads the standard a certain way,
# this follows it: tests/tracecore/test_epcis.py and tests/app/test_epcis_api.py compare them.

#: Characters the canonical Digital Link of the reference accepts in a lot or serial unencoded.
_DL_VALUE = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]{0,20}"
_DL_RE = re.compile(
    rf"https?://[^/?#]+/01/([0-9]{{14}})(?:/10/({_DL_VALUE}))?(?:/21/({_DL_VALUE}))?"
)
#: Digital Link path segments the reference moves to id.gs1.org ahead of the GTIN's (``/00/``).
_AHEAD_OF_GTIN = "/00/"


def canonical_key(uri: str) -> str:
    """A GS1 Digital Link URI of ours in the canonical form (id.gs1.org, lowest level):
    ``…/01/G/10/L/21/S`` -> ``https://id.gs1.org/01/G/21/S``; anything else unchanged."""
    match = _DL_RE.fullmatch(uri)
    if match is None or _AHEAD_OF_GTIN in uri.split("/01/", 1)[1]:
        return uri
    gtin, lot, serial = match.groups()
    if serial is not None:
        return f"https://id.gs1.org/01/{gtin}/21/{serial}"
    if lot is not None:
        return f"https://id.gs1.org/01/{gtin}/10/{lot}"
    return f"https://id.gs1.org/01/{gtin}"


def _numeric(text: str) -> str:
    """Numbers without padding or a trailing .0 (as the reference reads any value)."""
    try:
        number = float(text)
        if int(number) == number:
            number = int(number)
        return str(number)
    except (ValueError, OverflowError):
        return text


def canonical_value(text: str) -> str:
    return canonical_key(_numeric(text.strip()))


def _vocabulary(word: str | None, kind: str) -> str | None:
    """A bare CBV word as its web-vocabulary URI; a URI of ours as it is."""
    if word is None or ":" in word:
        return word
    return f"{CBV}{kind}-{word}"


def _expand_name(name: str, namespaces: dict[str, str]) -> str:
    prefix, _, local = name.partition(":")
    return "{" + namespaces[prefix] + "}" + local if prefix in namespaces else name


def _epc_list(name: str, epcs) -> str:
    return name + "".join(sorted(f"epc={canonical_value(e)}" for e in epcs)) if epcs else ""


def prehash(event: EpcisEvent, uris: Uris) -> str:
    """The canonical pre-hash string of the CBV 2.0 event hash algorithm."""
    namespaces = uris.namespaces() | dict(event.namespaces)
    parts = [
        f"eventType={event.type}",
        f"eventTime={utc_time(event.event_time)}",
        f"eventTimeZoneOffset={offset_text(event.offset_min)}",
    ]
    if event.parent:
        parts.append(f"parentID={canonical_value(event.parent)}")
    parts.append(_epc_list("epcList", event.epcs))
    parts.append(_epc_list("inputEPCList", event.inputs))
    parts.append(_epc_list("childEPCs", event.children))
    parts.append(_quantity_list("quantityList", event.quantities))
    parts.append(_quantity_list("inputQuantityList", event.input_quantities))
    parts.append(_epc_list("outputEPCList", event.outputs))
    parts.append(_quantity_list("outputQuantityList", event.output_quantities))
    if event.action is not None:
        parts.append(f"action={event.action}")
    if event.transformation_id is not None:
        parts.append(f"transformationID={canonical_value(event.transformation_id)}")
    if event.biz_step:
        parts.append(f"bizStep={canonical_value(_vocabulary(event.biz_step, 'BizStep'))}")
    if event.disposition:
        parts.append(f"disposition={canonical_value(_vocabulary(event.disposition, 'Disp'))}")
    if event.read_point:
        parts.append(f"readPointid={canonical_value(event.read_point)}")
    if event.biz_location:
        parts.append(f"bizLocationid={canonical_value(event.biz_location)}")
    rest = []
    if event.biz_transactions:
        # each as emitted (type, then the transaction), the list sorted
        rest.append(
            "bizTransactionList"
            + "".join(
                sorted(
                    f"type={canonical_value(_vocabulary(t, 'BTT'))}"
                    f"bizTransaction={canonical_value(uri)}"
                    for t, uri in event.biz_transactions
                )
            )
        )
    for name, element, pairs in (
        ("sourceList", "source", event.sources),
        ("destinationList", "destination", event.destinations),
    ):
        if pairs:
            rest.append(
                name
                + "".join(
                    sorted(
                        f"type={canonical_value(_vocabulary(t, 'SDT'))}"
                        f"{element}={canonical_value(uri)}"
                        for t, uri in pairs
                    )
                )
            )
    if event.ilmd:
        rest.append(
            "ilmd"
            + "".join(
                sorted(
                    f"{_expand_name(k, namespaces)}={canonical_value(v)}"
                    if v.strip()
                    else _expand_name(k, namespaces)
                    for k, v in event.ilmd
                )
            )
        )
    return "".join(parts) + "".join(sorted(rest))


def _quantity_list(name: str, quantities: tuple[tuple, ...]) -> str:
    elements = sorted(_quantity_prehash(*element) for element in quantities)
    return name + "".join(elements) if elements else ""


def _quantity_prehash(epc_class: str, quantity=None, uom: str | None = None) -> str:
    return (
        f"quantityElementepcClass={canonical_value(epc_class)}"
        + ("" if quantity is None else f"quantity={canonical_value(str(quantity))}")
        + ("" if uom is None else f"uom={canonical_value(uom)}")
    )


def event_hash(event: EpcisEvent, uris: Uris) -> str:
    """The event's ID: ``ni:///sha-256;<hex>?ver=CBV2.0`` of its pre-hash string."""
    digest = hashlib.sha256(prehash(event, uris).encode()).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


_EVENT_ID_RE = re.compile(r"ni:///sha-256;([0-9a-f]{64})\?ver=CBV2\.0")


def read_event_id(text: str) -> str:
    """The hex digest of an event ID we give out; ValidationError for anything else."""
    match = _EVENT_ID_RE.fullmatch(text.strip())
    if match is None:
        raise ValidationError(
            "an event ID here has the form ni:///sha-256;<64 hex digits>?ver=CBV2.0",
            field="eventID",
        )
    return match.group(1)


def query_document(uris: Uris, events: list[dict], created: datetime) -> dict:
    """An EPCISQueryDocument (the answer of the REST query interface) holding ``events``.
    An event's own ``@context`` (a captured event's senders' prefixes, each named after its
    namespace so none clash) is declared by the document instead."""
    extra: dict[str, str] = {}
    if any("@context" in e for e in events):
        for event in events:
            for item in event.get("@context", ()):
                extra.update(item)
        events = [{k: v for k, v in e.items() if k != "@context"} for e in events]
    return {
        "@context": [EPCIS_CONTEXT, uris.namespaces() | extra],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_time(created),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events},
            }
        },
    }
