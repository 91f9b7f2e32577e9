"""``/epcis``: the EPCIS 2.0 REST query interface over our events (docs/epcis.md).

- ``GET /epcis/events``: the events the caller may see, filtered by the standard's query
  parameters, ``perPage`` at a time, the next page in a ``Link: <…>; rel="next"`` header;
- ``GET /epcis/events/{eventID}``: one event by its CBV 2.0 hash ID;
- ``GET /epcis/epcs/{epc}/events``: a unit's, a batch's or a parcel's events.

Each answers an EPCISQueryDocument (JSON-LD). Errors here are the one exception to the
service's error shape: the EPCIS standard defines its own, an RFC 7807 problem with the EPCIS
exception as its ``type`` (``epcisException:QueryParameterException`` …), and EPCIS clients
read that.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, Response, json, request
from werkzeug.exceptions import HTTPException

from app.accesslog.operations import log_access
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.epcis import capture
from app.epcis import openapi as epcis_openapi
from app.epcis import query as q
from app.errors import ApiError
from app.events.models import Parcel
from app.parties.models import Merchant
from app.web import db, principal, read_json, settings, unit_of_work
from tracecore import epcis
from tracecore.access import OPERATOR, Principal, Role
from tracecore.errors import DomainError, Forbidden, NotFound, ValidationError

log = logging.getLogger(__name__)

bp = Blueprint("epcis", __name__)

MEDIA_TYPE = "application/ld+json"
HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
PER_PAGE_DEFAULT, PER_PAGE_MAX = 30, 1000

#: The query parameters served; any other is refused rather than silently not applied.
PARAMETERS = frozenset(
    {
        "eventType",
        "GE_eventTime",
        "LT_eventTime",
        "GE_recordTime",
        "LT_recordTime",
        "EQ_bizStep",
        "EQ_disposition",
        "MATCH_epc",
        "MATCH_anyEPC",
        "MATCH_epcClass",
        "MATCH_inputEPC",
        "MATCH_outputEPC",
        "MATCH_inputEPCClass",
        "MATCH_outputEPCClass",
        "MATCH_anyEPCClass",
        "EQ_transformationID",
        "EQ_bizLocation",
        "EQ_readPoint",
        "eventCountLimit",
        "perPage",
        "nextPageToken",
    }
)


def uris() -> epcis.Uris:
    config = settings()
    return epcis.Uris(config.RESOLVER_HOST, config.RESOLVER_SCHEME)


# -- reading the query --------------------------------------------------------------------------


def _values(name: str) -> list[str] | None:
    """A parameter's values: repeated, or joined by ``|`` as the EPCIS REST binding writes a
    list; None when absent."""
    if name not in request.args:
        return None
    values = [v.strip() for raw in request.args.getlist(name) for v in raw.split("|")]
    if not all(values):
        raise ValidationError(f"{name} has an empty value", field=name)
    return values


def _time(name: str) -> datetime | None:
    values = _values(name)
    if values is None:
        return None
    try:
        moment = datetime.fromisoformat(values[0])
    except ValueError:
        moment = None
    if len(values) != 1 or moment is None or moment.tzinfo is None:
        raise ValidationError(f"{name} must be one RFC 3339 time with a UTC offset", field=name)
    return moment.astimezone(UTC)


def _count(name: str, default: int | None, largest: int) -> int | None:
    values = _values(name)
    if values is None:
        return default
    if len(values) != 1 or not values[0].isdigit() or not 1 <= int(values[0]) <= largest:
        raise ValidationError(f"{name} must be a whole number from 1 to {largest}", field=name)
    return int(values[0])


def _epcs(name: str, u: epcis.Uris) -> tuple[epcis.Epc, ...] | None:
    values = _values(name)
    return None if values is None else tuple(epcis.read_epc(v, u, field=name) for v in values)


def _vocabulary(name: str, kind: str) -> frozenset[str] | None:
    values = _values(name)
    if values is None:
        return None
    return frozenset(epcis.normalise_vocabulary(v, kind) for v in values)


def read_filters(u: epcis.Uris, related: epcis.Epc | None = None) -> q.Filters:
    """The query string as :class:`~app.epcis.query.Filters`; ValidationError names the
    parameter at fault."""
    unknown = sorted(set(request.args) - PARAMETERS)
    if unknown:
        raise ValidationError(
            f"query parameters not supported here: {', '.join(unknown)} (supported: "
            f"{', '.join(sorted(PARAMETERS))})",
            field=unknown[0],
        )
    types, ids = _values("eventType"), _values("EQ_transformationID")
    return q.Filters(
        event_types=None if types is None else frozenset(types),
        ge_event_time=_time("GE_eventTime"),
        lt_event_time=_time("LT_eventTime"),
        ge_record_time=_time("GE_recordTime"),
        lt_record_time=_time("LT_recordTime"),
        biz_steps=_vocabulary("EQ_bizStep", "BizStep"),
        dispositions=_vocabulary("EQ_disposition", "Disp"),
        match_epc=q.resolve_units(db(), _epcs("MATCH_epc", u)),
        match_any_epc=q.resolve_units(db(), _epcs("MATCH_anyEPC", u)),
        match_epc_class=_epcs("MATCH_epcClass", u),
        match_input_epc=q.resolve_units(db(), _epcs("MATCH_inputEPC", u)),
        match_output_epc=q.resolve_units(db(), _epcs("MATCH_outputEPC", u)),
        match_input_epc_class=_epcs("MATCH_inputEPCClass", u),
        match_output_epc_class=_epcs("MATCH_outputEPCClass", u),
        match_any_epc_class=_epcs("MATCH_anyEPCClass", u),
        transformation_ids=None if ids is None else frozenset(ids),
        biz_locations=_epcs("EQ_bizLocation", u),
        read_points=_epcs("EQ_readPoint", u),
        related=related,
    )


def _start() -> q.Position:
    token = request.args.get("nextPageToken")
    if token:
        return q.Position.read(token)
    return q.Position(left=_count("eventCountLimit", None, 10**9))


def _answer(u: epcis.Uris, page: q.Page | None, events: list[dict]) -> Response:
    document = epcis.query_document(u, events, datetime.now(UTC))
    response = Response(json.dumps(document), 200, HEADERS, mimetype=MEDIA_TYPE)
    if page is not None and page.next is not None:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "nextPageToken"]
        args.append(("nextPageToken", page.next.token()))
        response.headers["Link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
    return response


def _page(viewer: Principal, u: epcis.Uris, filters: q.Filters) -> Response:
    per_page = _count("perPage", PER_PAGE_DEFAULT, PER_PAGE_MAX)
    page = q.read_page(db(), viewer, u, filters, _start(), per_page)
    return _answer(u, page, page.events)


# -- the endpoints ------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_json():
    """This interface's contract (the EPCIS paths, with the standard's problem answers)."""
    return epcis_openapi.document()


@bp.get("/events")
@unit_of_work
def events():
    """The events the caller may see, filtered, one page at a time."""
    viewer, u = principal(), uris()
    return _page(viewer, u, read_filters(u))


# The ID (ni:///sha-256;…?ver=CBV2.0) arrives percent-encoded; its slashes must stay as sent.
@bp.get("/events/<path:event_id>", merge_slashes=False)
@unit_of_work
def event(event_id: str):
    """One event by its ID."""
    viewer, u = principal(), uris()
    if "?" not in event_id and request.args.get("ver"):  # the ?ver=… left unencoded
        event_id = f"{event_id}?ver={request.args['ver']}"
    digest = epcis.read_event_id(event_id)
    found = q.find(db(), viewer, u, digest)
    if found is None:
        if q.find(db(), OPERATOR, u, digest) is not None:
            raise Forbidden("this event is not one you may read")
        raise NotFound(f"no event with ID {event_id}")
    return _answer(u, None, [found])


@bp.get("/epcs/<path:epc>/events", merge_slashes=False)
@unit_of_work
def epc_events(epc: str):
    """A unit's events (its own, its packing and its batch's), a batch's, or a parcel's."""
    viewer, u = principal(), uris()
    target = epcis.read_epc(epc, u, field="epc")
    if target.kind in ("unit", "lot"):
        target = _may_see_lot(viewer, target)
    elif target.kind == "parcel":
        _may_see_parcel(viewer, target.waybill)
    else:
        raise ValidationError("epc must name a unit, a batch (GTIN and lot) or a parcel")
    if target.kind == "unit":
        (target,) = q.resolve_units(db(), (target,))
    log_access(db(), viewer, "view", target.kind, target.serial or target.waybill or target.lot)
    return _page(viewer, u, read_filters(u, related=target))


def _may_see_lot(viewer: Principal, target: epcis.Epc) -> epcis.Epc:
    """As for a unit's history: authorities in the merchant's region, and the merchant. The
    unit's lot is filled in (its Digital Link may leave it out)."""
    query = (
        sa.select(Product.merchant_id, Merchant.region_code, Batch.lot)
        .join(Batch, Batch.product_id == Product.id)
        .join(Merchant, Merchant.id == Product.merchant_id)
        .where(Product.gtin == target.gtin)
    )
    if target.lot is not None:
        query = query.where(Batch.lot == target.lot)
    if target.kind == "unit":
        query = query.join(TraceCode, TraceCode.batch_id == Batch.id).where(
            TraceCode.serial == target.serial
        )
    found = db().execute(query.limit(1)).first()
    if found is None:
        raise NotFound(f"no {target.kind} with this identifier")
    merchant_id, region_code, lot = found
    if viewer.is_authority:
        viewer.require_region(region_code, "this product's merchant")
    elif not (viewer.role is Role.MERCHANT and viewer.party_id == merchant_id):
        raise Forbidden("only authorities and the product's merchant may read its events")
    return replace(target, lot=lot)


def _may_see_parcel(viewer: Principal, waybill: str) -> None:
    """As for a parcel's history: authorities (in the consignee's or the shipper's region),
    the shipper and the carrier."""
    parcel = db().get(Parcel, waybill)
    if parcel is None:
        raise NotFound(f"no parcel with waybill {waybill}")
    if viewer.is_authority:
        shipper = db().get(Merchant, parcel.merchant_id)
        if not (viewer.covers(parcel.consignee_region_code) or viewer.covers(shipper.region_code)):
            raise Forbidden("this parcel is outside your jurisdiction")
        return
    if not (
        (viewer.role is Role.MERCHANT and viewer.party_id == parcel.merchant_id)
        or (viewer.role is Role.LOGISTICS and viewer.party_id == parcel.logistics_company_id)
    ):
        raise Forbidden("only authorities, the shipper and the carrier may read this parcel")


# -- capture ------------------------------------------------------------------------------------

CAPTURE_TYPES = ("application/json", "application/ld+json")
#: The most jobs ``GET /epcis/capture`` lists (the newest first).
MAX_JOBS = 100


def _limits() -> capture.Limits:
    config = settings()
    size = min(config.EPCIS_CAPTURE_FILE_SIZE_LIMIT, config.MAX_CONTENT_LENGTH)
    return capture.Limits(config.EPCIS_CAPTURE_LIMIT, size)


def _capture_headers(response: Response) -> Response:
    """The limits and behaviours of the capture interface, on each of its answers."""
    limits = _limits()
    response.headers.update(HEADERS)
    response.headers["GS1-EPCIS-Capture-Limit"] = str(limits.events)
    response.headers["GS1-EPCIS-Capture-File-Size-Limit"] = str(limits.size)
    response.headers["GS1-Capture-Error-Behaviour"] = "rollback, proceed"
    return response


@bp.route("/capture", methods=["OPTIONS"])
def capture_options():
    """The capture interface's settings, in headers (the standard's discovery)."""
    response = Response(status=204)
    response.headers["Allow"] = "OPTIONS, POST, GET"
    return _capture_headers(response)


@bp.post("/capture", endpoint="capture", provide_automatic_options=False)
@unit_of_work
def capture_events():
    """An outside system's EPCIS document: 202 with the capture job's Location."""
    viewer, limits = principal(), _limits()
    capture.require_outside_system(viewer)
    if request.mimetype not in CAPTURE_TYPES:
        raise ApiError(
            415, "unsupported_media_type", "send an EPCIS document as application/ld+json"
        )
    if (request.content_length or 0) > limits.size or len(request.get_data()) > limits.size:
        raise capture.CaptureLimitExceeded(
            f"the document is larger than {limits.size} bytes (GS1-EPCIS-Capture-File-Size-Limit)"
        )
    document = read_json(request.get_data())
    behaviour = request.headers.get("GS1-Capture-Error-Behaviour", capture.ROLLBACK).strip()
    job = capture.capture(
        db(), viewer, document, behaviour.lower(), uris(), limits, datetime.now(UTC)
    )
    response = Response(status=202)
    response.headers["Location"] = f"/epcis/capture/{job.capture_id}"
    return _capture_headers(response)


@bp.get("/capture", provide_automatic_options=False)
@unit_of_work
def capture_jobs():
    """The newest capture jobs the caller may read (an outside system: its own)."""
    found = capture.jobs(db(), principal(), MAX_JOBS)
    body = json.dumps([capture.job_json(j) for j in found])
    response = Response(body, 200, mimetype="application/json")
    return _capture_headers(response)


@bp.get("/capture/<capture_id>")
@unit_of_work
def capture_job(capture_id: str):
    """One capture job: running, success, and the errors in the standard's shape."""
    found = capture.job(db(), principal(), capture_id)
    response = Response(json.dumps(capture.job_json(found)), 200, mimetype="application/json")
    return _capture_headers(response)


# -- errors: the EPCIS problem shape ------------------------------------------------------------

_PROBLEMS = {
    400: ("epcisException:QueryParameterException", "Query parameter invalid"),
    413: ("epcisException:CaptureLimitExceededException", "Capture Payload too large"),
    415: ("epcisException:UnsupportedMediaTypeException", "Unsupported media type"),
    401: ("epcisException:SecurityException", "Not authenticated"),
    403: ("epcisException:SecurityException", "Access to resource forbidden"),
    404: ("epcisException:NoSuchResourceException", "Resource not found"),
    500: ("epcisException:ImplementationException", "Internal error"),
}


def problem(status: int, detail: str, headers: dict | None = None) -> Response:
    """An RFC 7807 problem as the EPCIS REST binding defines it."""
    kind, title = _PROBLEMS.get(status, (f"epcisException:{status}", "Error"))
    if status == 400 and request.path.startswith("/epcis/capture"):
        kind, title = "epcisException:ValidationException", "Document invalid"
    body = {
        "type": kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    response = Response(
        json.dumps(body), status, headers or {}, mimetype="application/problem+json"
    )
    return response


@bp.errorhandler(DomainError)
def _domain(exc: DomainError) -> Response:
    status = getattr(exc, "status", None) or {
        ValidationError: 400,
        NotFound: 404,
        Forbidden: 403,
    }.get(type(exc), 400)
    if status == 422:  # a malformed query (e.g. a NUL) is a query parameter problem
        status = 400
    headers = {"WWW-Authenticate": 'Bearer realm="trace"'} if status == 401 else None
    answer = problem(status, exc.message, headers)
    return _capture_headers(answer) if request.path.startswith("/epcis/capture") else answer


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    answer = problem(exc.code or 500, exc.description or exc.name, headers)
    return _capture_headers(answer) if request.path.startswith("/epcis/capture") else answer


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return problem(500, "Internal error; nothing was saved.")
