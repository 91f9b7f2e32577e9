"""Reading an EPCIS 2.0 document an outside system captures: plain values in, plain values out.

:func:`read_document` checks the document's frame and gives its events' raw JSON and the
prefixes its ``@context`` declares; :func:`read_event` reads one event into a
:class:`~tracecore.epcis.EpcisEvent` (so it hashes as every event of ours does, and is served
back with the same ID), or raises :class:`~tracecore.errors.ValidationError` saying what is
wrong with it.

This is a structural validation of the fields the service stores, in code: it does not need
GS1's JSON schema at run time (the tests validate documents against that schema). An event
is read only when every field it carries is one the service understands, because its ID is a
hash of all its fields: a field left out would make two different events one.

EPC URNs (``urn:epc:id:sgtin:…``, ``sscc``, ``sgln``, ``urn:epc:class:lgtin:…``,
``urn:epc:idpat:sgtin:…``) are kept as their GS1 Digital Link on ``id.gs1.org``, the form the
event hash reads them in; Digital Links on any host are kept as sent; any other identifier is
an outside identifier, kept as sent.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

from tracecore.epcis import (
    AGGREGATION,
    CBV_WORDS,
    MAPPING,
    OBJECT,
    TRANSFORMATION,
    EpcisEvent,
    Uris,
    normalise_vocabulary,
    vocabulary_value,
)
from tracecore.errors import ValidationError
from tracecore.gs1 import gtin_check_digit

#: The event types captured (TransactionEvent and AssociationEvent are refused by name).
EVENT_TYPES = (OBJECT, AGGREGATION, TRANSFORMATION)
#: The fields every event type captured may have.
COMMON_FIELDS = frozenset(
    {
        "@context",
        "type",
        "eventID",
        "eventTime",
        "eventTimeZoneOffset",
        "recordTime",
        "bizStep",
        "disposition",
        "readPoint",
        "bizLocation",
        "bizTransactionList",
        "sourceList",
        "destinationList",
    }
)
#: The fields of each type the service reads, beyond the common ones (EPCIS 2.0 section 7.4
#: and GS1's JSON schema: an AggregationEvent has no quantityList nor ILMD, a
#: TransformationEvent no action).
TYPE_FIELDS = {
    OBJECT: frozenset({"action", "epcList", "quantityList", "ilmd"}),
    AGGREGATION: frozenset({"action", "parentID", "childEPCs"}),
    TRANSFORMATION: frozenset(
        {
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
            "transformationID",
            "ilmd",
        }
    ),
}
#: The fields of an event the service reads; any other makes the event refused.
FIELDS = COMMON_FIELDS.union(*TYPE_FIELDS.values())
ACTIONS = ("ADD", "OBSERVE", "DELETE")
#: The longest identifier kept (the columns' width).
MAX_URI = 300
GS1_HOST = "https://id.gs1.org"

_OFFSET_RE = re.compile(r"([+-])([01][0-9]|2[0-3]):([0-5][0-9])")
_PREFIX_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


@dataclass(frozen=True)
class CapturedEvent:
    """One event of a captured document, read."""

    event: EpcisEvent
    #: (role, identifier) of each EPC it names: epc (epcList, childEPCs), parent, class
    #: (quantityList), and a transformation's input, output, input_class and output_class
    identifiers: tuple[tuple[str, str], ...]
    #: Our event type it reads as, when one fits (bizStep as :data:`MAPPING` maps it)
    our_type: str | None


@dataclass(frozen=True)
class Document:
    """A captured document's events (raw) and the prefixes its ``@context`` declares."""

    events: list
    namespaces: dict[str, str]


def _fail(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field)


def context_namespaces(context, field: str = "@context") -> dict[str, str]:
    """The prefixes a JSON-LD ``@context`` (a URL, a map or a list of them) declares."""
    items = context if isinstance(context, list) else [context]
    out: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict):
            for prefix, namespace in item.items():
                if isinstance(namespace, str) and _PREFIX_RE.fullmatch(prefix):
                    out[prefix] = namespace
        elif not isinstance(item, str):
            raise _fail("@context holds URLs and maps of prefixes only", field)
    return out


def read_document(document) -> Document:
    """The events of an EPCISDocument (or an EPCISQueryDocument) and its prefixes; a
    ValidationError for a document that is neither."""
    if not isinstance(document, dict):
        raise _fail("the body is not an EPCIS document (a JSON object)", "type")
    kind = document.get("type")
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        raise _fail("type must be EPCISDocument or EPCISQueryDocument", "type")
    if document.get("schemaVersion") != "2.0":
        raise _fail('schemaVersion must be "2.0"', "schemaVersion")
    if not isinstance(document.get("creationDate"), str):
        raise _fail("creationDate is required (RFC 3339)", "creationDate")
    _time(document["creationDate"], "creationDate")
    body = document.get("epcisBody")
    if kind == "EPCISQueryDocument":
        body = ((body or {}).get("queryResults") or {}).get("resultsBody") if body else None
    events = body.get("eventList") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise _fail("epcisBody.eventList must be a list of events", "epcisBody")
    return Document(events, context_namespaces(document.get("@context", []), "@context"))


def _time(text, field: str) -> datetime:
    moment = None
    if isinstance(text, str) and "T" in text:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise _fail(f"{field} must be an RFC 3339 time with a UTC offset", field)
    return moment


def _offset(text, field: str) -> int:
    match = _OFFSET_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise _fail(f"{field} must be ±hh:mm", field)
    sign, hours, minutes = match.groups()
    return (-1 if sign == "-" else 1) * (int(hours) * 60 + int(minutes))


def _text(value, field: str, limit: int = MAX_URI) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise _fail(f"{field} must be a non-empty text of at most {limit} characters", field)
    return value


def _gs1_key(company: str, reference: str, field: str) -> str:
    """company prefix + reference with its leading digit moved first, and a check digit."""
    if not (company + reference).isdigit():
        raise _fail(f"{field}: an EPC URN's company prefix and reference are digits", field)
    body = reference[:1] + company + reference[1:]
    return body + str(gtin_check_digit(body))


def normalise_epc(value, field: str) -> str:
    """An EPC (or EPC class) as kept: GS1 EPC URNs as their id.gs1.org Digital Link, any
    other identifier as sent."""
    text = _text(value, field)
    if not text.startswith("urn:epc:"):
        return text
    kind, _, rest = text.removeprefix("urn:epc:").partition(":")
    scheme, _, rest = rest.partition(":")
    scheme, parts = f"{kind}:{scheme}", rest.split(".")
    try:
        if scheme in ("id:sgtin", "class:lgtin", "idpat:sgtin") and len(parts) == 3:
            gtin = _gs1_key(parts[0], parts[1], field)
            if len(gtin) != 14:
                raise _fail(f"{field}: not a GTIN-14 in this URN", field)
            if scheme == "id:sgtin":
                return f"{GS1_HOST}/01/{gtin}/21/{_segment(parts[2])}"
            if scheme == "class:lgtin":
                return f"{GS1_HOST}/01/{gtin}/10/{_segment(parts[2])}"
            if parts[2] == "*":
                return f"{GS1_HOST}/01/{gtin}"
        elif scheme == "id:sscc" and len(parts) == 2:
            sscc = _gs1_key(parts[0], parts[1], field)
            if len(sscc) == 18:
                return f"{GS1_HOST}/00/{sscc}"
        elif scheme == "id:sgln" and len(parts) == 3:
            gln = _gs1_key(parts[0], "0" + parts[1], field)[1:]
            if len(gln) == 13:
                extension = "" if parts[2] == "0" else f"/254/{_segment(parts[2])}"
                return f"{GS1_HOST}/414/{gln}{extension}"
    except ValidationError as exc:
        raise _fail(exc.message, field) from None
    return text  # another EPC scheme: an outside identifier, kept as sent


def _segment(value: str) -> str:
    """A URN's escaped value as a Digital Link path segment (percent-encoded as GS1 writes
    it: what the Digital Link's character set leaves unencoded stays so)."""
    from urllib.parse import quote

    return quote(unquote(value), safe="!'()*+,-.:;=_")


def _epcs(raw: dict, name: str, role: str) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    values = raw.get(name)
    if values is None:
        return (), []
    if not isinstance(values, list):
        raise _fail(f"{name} must be a list of EPCs", name)
    epcs = tuple(normalise_epc(v, name) for v in values)
    return epcs, [(role, e) for e in epcs]


def _quantities(raw: dict, name: str = "quantityList") -> tuple[tuple, ...]:
    values = raw.get(name)
    if values is None:
        return ()
    if not isinstance(values, list):
        raise _fail(f"{name} must be a list", name)
    out = []
    for element in values:
        if not isinstance(element, dict) or set(element) - {"epcClass", "quantity", "uom"}:
            raise _fail(f"a {name} element has epcClass, quantity and uom", name)
        epc_class = normalise_epc(element.get("epcClass"), f"{name}.epcClass")
        quantity = element.get("quantity")
        if quantity is not None and (
            isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity < 0
        ):
            raise _fail("a quantity is a number, 0 or more", f"{name}.quantity")
        uom = element.get("uom")
        if uom is not None:
            uom = _text(uom, f"{name}.uom", 3)
            if quantity is None:
                raise _fail("a uom needs a quantity", f"{name}.uom")
        out.append((epc_class, quantity) if uom is None else (epc_class, quantity, uom))
    return tuple(out)


def _vocabulary(value, field: str, kind: str) -> str:
    """A CBV value as kept (:func:`~tracecore.epcis.normalise_vocabulary`); a bare word CBV
    does not have is refused (GS1's schema does: anything else is a URI)."""
    text = _text(value, field)
    if ":" not in text and text not in CBV_WORDS[kind]:
        raise _fail(
            f"{field}: {text[:60]!r} is not a CBV 2.0 word; a value of your own is a URI", field
        )
    return normalise_vocabulary(text, kind)


def _place(raw: dict, name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"id"}:
        raise _fail(f"{name} must be {{'id': a location URI}}", name)
    return normalise_epc(value["id"], f"{name}.id")


def _pairs(raw: dict, name: str, element: str) -> tuple[tuple[str, str], ...]:
    values = raw.get(name)
    if values is None:
        return ()
    if not isinstance(values, list):
        raise _fail(f"{name} must be a list", name)
    out = []
    for item in values:
        if not isinstance(item, dict) or set(item) != {"type", element}:
            raise _fail(f"each of {name} has a type and a {element} (both required here)", name)
        kind = _vocabulary(
            item["type"], f"{name}.type", "BTT" if element == "bizTransaction" else "SDT"
        )
        out.append((kind, normalise_epc(item[element], f"{name}.{element}")))  # fmt: skip
    return tuple(out)


def _ilmd(raw: dict, namespaces: dict[str, str], ours: dict[str, str]) -> tuple:
    """The ILMD's (name, value) pairs and the prefixes of the sender's they use."""
    values = raw.get("ilmd")
    if values is None:
        return (), ()
    if not isinstance(values, dict) or not values:
        raise _fail("ilmd must be an object of prefixed names", "ilmd")
    pairs, used = [], {}
    for name, value in values.items():
        prefix, colon, local = name.partition(":")
        if not colon or not local or (prefix not in namespaces and prefix not in ours):
            raise _fail(
                f"ilmd: {name[:60]!r} is not a name with a prefix the @context declares", "ilmd"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _fail(f"ilmd: {name[:60]} must be a text or a number (no nesting)", "ilmd")
        text = value if isinstance(value, str) else str(value)
        if prefix in namespaces and namespaces[prefix] != ours.get(prefix):
            # The sender's prefix, renamed to one named after its namespace: events of
            # several senders then share one document's @context without a clash.
            alias = namespace_alias(namespaces[prefix])
            used[alias] = namespaces[prefix]
            name = f"{alias}:{local}"
        pairs.append((name, _text(text, f"ilmd.{name[:60]}")))
    return tuple(pairs), tuple(sorted(used.items()))


def namespace_alias(namespace: str) -> str:
    """The prefix a sender's namespace is given here: ``ns`` and 10 hex digits of its hash."""
    return "ns" + hashlib.sha256(namespace.encode()).hexdigest()[:10]


def _our_type(event: EpcisEvent, uris: Uris) -> str | None:
    for type_, why in MAPPING.items():
        if why.type == event.type and vocabulary_value(why.biz_step, uris) == event.biz_step:
            return type_
    return None


def read_event(raw, document_namespaces: dict[str, str], uris: Uris, recorded: datetime):
    """One event of a captured document as a :class:`CapturedEvent` (``recorded``: its
    recordTime, when the service captures it); ValidationError naming the field at fault."""
    if not isinstance(raw, dict):
        raise _fail("an event is a JSON object", "eventList")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise _fail(
            f"{unknown[0][:60]} is not a field this service captures (it captures "
            f"{', '.join(EVENT_TYPES)} with the fields of docs/epcis.md)",
            unknown[0][:60],
        )
    type_ = raw.get("type")
    if type_ not in EVENT_TYPES:
        raise _fail(
            f"type must be one of {', '.join(EVENT_TYPES)} (TransactionEvent and "
            "AssociationEvent are not captured)",
            "type",
        )
    foreign = sorted(set(raw) - COMMON_FIELDS - TYPE_FIELDS[type_])
    if foreign:
        raise _fail(f"{foreign[0]} is not a field of the type {type_}", foreign[0])
    if type_ == TRANSFORMATION:
        action = None
    elif raw.get("action") not in ACTIONS:
        raise _fail("action must be ADD, OBSERVE or DELETE", "action")
    else:
        action = raw["action"]
    namespaces = document_namespaces | context_namespaces(raw.get("@context", []))
    epcs, named = _epcs(raw, "epcList", "epc")
    children, named_children = _epcs(raw, "childEPCs", "epc")
    inputs, named_inputs = _epcs(raw, "inputEPCList", "input")
    outputs, named_outputs = _epcs(raw, "outputEPCList", "output")
    parent = raw.get("parentID")
    if parent is not None:
        parent = normalise_epc(parent, "parentID")
    quantities = _quantities(raw)
    input_quantities = _quantities(raw, "inputQuantityList")
    output_quantities = _quantities(raw, "outputQuantityList")
    transformation_id = raw.get("transformationID")
    if transformation_id is not None:
        transformation_id = _text(transformation_id, "transformationID")
        if not _URI_RE.fullmatch(transformation_id):
            raise _fail("transformationID must be a URI", "transformationID")
    if type_ == TRANSFORMATION:
        has_input, has_output = bool(inputs or input_quantities), bool(outputs or output_quantities)
        if not (has_input or has_output):
            raise _fail("a TransformationEvent names at least one input or output", "inputEPCList")
        if transformation_id is None and not has_input:
            raise _fail(
                "a TransformationEvent without a transformationID names at least one input "
                "(inputEPCList or inputQuantityList)",
                "inputEPCList",
            )
        if transformation_id is None and not has_output:
            raise _fail(
                "a TransformationEvent without a transformationID names at least one output "
                "(outputEPCList or outputQuantityList)",
                "outputEPCList",
            )
    elif not (epcs or children or parent or quantities):
        raise _fail("an event names at least one EPC or quantity", "epcList")
    ilmd, extra = _ilmd(raw, namespaces, uris.namespaces())
    if ilmd and not (type_ == TRANSFORMATION or action == "ADD"):
        raise _fail("ilmd belongs to an ObjectEvent with action ADD or a transformation", "ilmd")
    biz_step, disposition = (
        None if raw.get(k) is None else _vocabulary(raw[k], k, kind)
        for k, kind in (("bizStep", "BizStep"), ("disposition", "Disp"))
    )
    event = EpcisEvent(
        type=type_,
        event_time=_time(raw.get("eventTime"), "eventTime"),
        offset_min=_offset(raw.get("eventTimeZoneOffset"), "eventTimeZoneOffset"),
        record_time=recorded,
        action=action,
        epcs=epcs,
        parent=parent,
        children=children,
        quantities=quantities,
        biz_step=biz_step,
        disposition=disposition,
        read_point=_place(raw, "readPoint"),
        biz_location=_place(raw, "bizLocation"),
        biz_transactions=_pairs(raw, "bizTransactionList", "bizTransaction"),
        ilmd=ilmd,
        sources=_pairs(raw, "sourceList", "source"),
        destinations=_pairs(raw, "destinationList", "destination"),
        namespaces=extra,
        inputs=inputs,
        input_quantities=input_quantities,
        outputs=outputs,
        output_quantities=output_quantities,
        transformation_id=transformation_id,
    )
    identifiers = [*named, *named_children, *named_inputs, *named_outputs]
    if parent is not None:
        identifiers.append(("parent", parent))
    for role, elements in (
        ("class", quantities),
        ("input_class", input_quantities),
        ("output_class", output_quantities),
    ):
        identifiers += [(role, element[0]) for element in elements]
    return CapturedEvent(event, tuple(dict.fromkeys(identifiers)), _our_type(event, uris))
