"""``GET /api/v1/openapi.json``: the API contract, with request schemas taken from the same
pydantic models that validate the requests (so the document cannot drift from the code).

Every operation is made by :func:`operation`, which adds the answers every operation of its
kind can give (:func:`standard_errors`): 401 and 403 for a token's operations, 400, 413, 415
and 422 for a JSON body, 404 for a path parameter, 422 for query and header parameters, 429
where a rate limit applies, 503 when the database is lost. A test walks the URL map and
this document (tests/app/test_contract.py), and the fuzzing run checks every answer against
it (tests/app/test_contract_fuzz.py): a new route is covered once it is added here.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from flask import Blueprint

from app import schemas
from app.anomalies.api import MAX_PAGE
from app.credit.api import MAX_EXCHANGE_PAGE
from app.credit.exchange import FIELDS as EXCHANGE_FIELDS
from app.credit.exchange import KINDS as EXCHANGE_KINDS
from app.events.api import MAX_TRACE_PAGE
from app.web import MAX_ID, settings

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
BEARER = [{"bearer": []}]

#: Who may call an operation: anyone; the holder of an API token (``Authorization: Bearer``);
#: a device, whose events are signed (devices/PROTOCOL.md) and which sends no token.
Auth = Literal["public", "token", "device"]

REASONS = {
    400: "The body is not valid JSON",
    401: "No token, or an unknown or revoked one",
    403: "Not yours, or outside your jurisdiction",
    404: "No such resource (or not one you may see)",
    405: "No such resource: an id out of range matches no DELETE route (werkzeug answers 405)",
    409: "A duplicate, or a state that does not allow it",
    413: "The body is larger than MAX_CONTENT_LENGTH",
    415: "The body is not application/json",
    422: "A parameter or field is invalid; details.field names it",
    429: "Over a rate limit; Retry-After says when to try again",
    503: "The database connection was lost; nothing was saved; Retry-After: 1",
}


def standard_errors(
    auth: Auth,
    *,
    body: bool = False,
    parameters: list[dict] = (),
    limited: bool = False,
) -> set[int]:
    """The error statuses any operation of this kind can answer (see the module's text)."""
    found = {503}
    if auth == "token":
        found |= {401, 403}
    if body:
        found |= {400, 413, 415, 422}
    if any(p["in"] == "path" for p in parameters):
        found.add(404)
    if any(p["in"] in ("query", "header") for p in parameters):
        found.add(422)
    if limited:
        found.add(429)
    return found


def operation(
    summary: str,
    *,
    auth: Auth,
    ok: int = 200,
    produces: tuple[str, ...] = ("application/json",),
    body: type | dict | None = None,
    parameters: list[dict] = (),
    errors: tuple[int, ...] = (),
    limited: bool = False,
    answer: dict | None = None,
) -> dict:
    """One operation of the contract: its success answer ``ok`` (of the media types
    ``produces``), its :func:`standard_errors` and the ``errors`` of its own (a 404 for an
    id in the body, a 409...). ``body`` is a pydantic model (its schema is a component) or a
    JSON schema; ``limited``: a rate limit applies (the public one, or the operation's own);
    ``answer``: the JSON schema of the success answer, where the contract states it."""
    statuses = standard_errors(auth, body=body is not None, parameters=parameters, limited=limited)
    content: dict = {t: {} for t in produces}
    if answer is not None:
        content["application/json"] = {"schema": answer}
    responses = {str(ok): {"description": "OK", "content": content}}
    for status in sorted(statuses | set(errors)):
        responses[str(status)] = {
            "description": REASONS[status],
            "content": {"application/json": {"schema": ERROR}},
        }
    op: dict = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        schema = (
            body if isinstance(body, dict) else {"$ref": f"#/components/schemas/{body.__name__}"}
        )
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    if auth == "token":
        op["security"] = BEARER
    return op


# -- parameters ---------------------------------------------------------------------------------


def path_id(name: str) -> dict:
    """A row id in the path (``<id:name>``: app.web.IdConverter)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def path_text(name: str, max_length: int = 64, **schema) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": max_length, **schema},
    }


def query_int(name: str, minimum: int = 1, maximum: int = MAX_ID, **schema) -> dict:
    """An integer in the query (app.web.query_int, with the same bounds)."""
    return {
        "name": name,
        "in": "query",
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, **schema},
    }


def query_text(name: str, max_length: int | None = None, **schema) -> dict:
    out = {"name": name, "in": "query", "schema": {"type": "string", **schema}}
    if max_length is not None:
        out["schema"]["maxLength"] = max_length
    return out


#: A trace code's serial (GS1 AI 21: 1 to 20 characters of GS1's character set 82; an
#: ill-formed one is a 422).
SERIAL = path_text("serial", 20)
WAYBILL = path_text("waybill")
DEVICE = path_text("device_id")
PARTY_TYPE = {
    "name": "party_type",
    "in": "path",
    "required": True,
    "schema": {"enum": ["merchant", "logistics_company", "courier"]},
}
#: An RFC 3339 time with its offset; empty, as every empty filter, means none.
TIME = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}


#: A parcel event's or state's codes in the couriers' status models (tracecore.courier_status).
COURIER_CODES = {
    "kuaidi100": {
        "type": "object",
        "required": ["state", "name"],
        "properties": {
            "state": {"type": "string", "pattern": "^[0-9]{1,2}$"},
            "name": {"type": "string"},
            "sub_state": {"type": "string", "pattern": "^[0-9]{3,4}$"},
            "sub_name": {"type": "string"},
        },
    },
    "aftership": {
        "type": "object",
        "required": ["tag", "subtag", "subtag_message"],
        "properties": {
            "tag": {"type": "string"},
            "subtag": {"type": "string", "pattern": "^[A-Za-z]+_[0-9]{3}$"},
            "subtag_message": {"type": "string"},
        },
    },
}
PARCEL_HISTORY = {
    "type": "object",
    "required": ["waybill", "state", "kuaidi100", "aftership", "events"],
    "properties": {
        "waybill": {"type": "string"},
        "state": {"type": "string"},
        **COURIER_CODES,
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event_id", "type", "time", "kuaidi100", "aftership"],
                "properties": {"type": {"type": "string"}, **COURIER_CODES},
            },
        },
    },
}

#: The credit exchange's filters (app.credit.api): a party by its USCC, and a moment.
EXCHANGE_QUERY = [
    query_text("uscc", 32, description="a unified social credit code (GB 32100)"),
    {**query_text("since"), "schema": TIME},
]
#: One page of the credit exchange (app.credit.exchange.FIELDS).
EXCHANGE_PAGE = {
    "type": "object",
    "required": ["items", "next"],
    "properties": {
        "next": {"type": ["string", "null"]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": list(EXCHANGE_FIELDS),
                "properties": {
                    "kind": {"enum": list(EXCHANGE_KINDS)},
                    "uscc": {"type": "string", "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$"},
                    "date": {"type": "string", "format": "date-time"},
                    "decided_at": {"type": "string", "format": "date-time"},
                    "content_hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                },
            },
        },
    },
}


# -- the operations ---------------------------------------------------------------------------


def _paths(max_codes: int, max_labels: int) -> dict:
    """Every operation of /api/v1. ``max_codes`` and ``max_labels``: this service's maxima
    (MAX_CODES_PER_REQUEST, MAX_LABELS_PER_SHEET), stated as the bounds."""

    def image(media_type: str) -> dict:
        return {
            "get": operation(
                "Label image (QR code or GS1-128 barcode)",
                auth="public",
                produces=(media_type,),
                parameters=[SERIAL],
                errors=(422,),
                limited=True,
            )
        }

    def public_read(summary: str, parameter: dict, limited: bool = False) -> dict:
        return {"get": operation(summary, auth="public", parameters=[parameter], limited=limited)}

    return {
        "/merchants": {
            "post": operation(
                "Register a merchant", auth="token", body=schemas.MerchantIn, ok=201, errors=(409,)
            )
        },
        "/merchants/{merchant_id}": public_read("A merchant", path_id("merchant_id")),
        "/logistics-companies": {
            "post": operation(
                "Register a logistics company",
                auth="token",
                body=schemas.LogisticsCompanyIn,
                ok=201,
                errors=(409,),
            )
        },
        "/logistics-companies/{company_id}": public_read(
            "A logistics company", path_id("company_id")
        ),
        "/couriers": {
            "post": operation(
                "Register a courier (real name)",
                auth="token",
                body=schemas.CourierIn,
                ok=201,
                errors=(404, 409),
            )
        },
        "/couriers/{courier_id}": {
            "get": operation(
                "A courier (authorities and the courier's company)",
                auth="token",
                parameters=[path_id("courier_id")],
            )
        },
        "/couriers/{courier_id}/service-area": {
            "put": operation(
                "Set the courier's service area (GeoJSON Polygon/MultiPolygon, WGS 84)",
                auth="token",
                body={"type": "object", "description": "A GeoJSON Polygon or MultiPolygon"},
                parameters=[path_id("courier_id")],
                limited=True,
            )
        },
        "/products": {
            "post": operation(
                "Register a product",
                auth="token",
                body=schemas.ProductIn,
                ok=201,
                errors=(404, 409),
            )
        },
        "/products/{product_id}": public_read("A product", path_id("product_id")),
        "/products/{product_id}/recall-status": public_read(
            "Which batches of a product are recalled, when and why (the GS1 resolver's "
            "gs1:recallStatus of a GTIN)",
            path_id("product_id"),
            limited=True,
        ),
        "/batches": {
            "post": operation(
                "Register a batch", auth="token", body=schemas.BatchIn, ok=201, errors=(404, 409)
            )
        },
        "/batches/{batch_id}": public_read("A batch", path_id("batch_id")),
        "/batches/{batch_id}/certificates": public_read(
            "A batch's inspection certificates (the GS1 resolver's gs1:certificationInfo)",
            path_id("batch_id"),
            limited=True,
        ),
        "/batches/{batch_id}/recall-status": public_read(
            "Whether a batch is recalled, since when and why, also in plain words (the GS1 "
            "resolver's gs1:recallStatus)",
            path_id("batch_id"),
            limited=True,
        ),
        "/batches/{batch_id}/codes": {
            "post": operation(
                f"Issue trace codes (at most {max_codes} a request; JSON, or text/csv when "
                "accepted)",
                auth="token",
                body=_issue_codes_body(max_codes),
                ok=201,
                produces=("application/json", "text/csv"),
                parameters=[path_id("batch_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/batches/{batch_id}/labels.pdf": {
            "get": operation(
                "Printable A4 label sheet (the batch's merchant and authorities)",
                auth="token",
                produces=("application/pdf",),
                parameters=[
                    path_id("batch_id"),
                    query_int("offset", 0, MAX_ID, default=0),
                    query_int("limit", 1, max_labels, default=max_labels),
                ],
                limited=True,
            )
        },
        "/batches/{batch_id}/trace": {
            "get": operation(
                "Forward trace: where every unit of the batch is",
                auth="token",
                parameters=[
                    path_id("batch_id"),
                    query_text("after", 16, description="the last serial of the page before"),
                    query_int("limit", 1, MAX_TRACE_PAGE, default=100),
                ],
            )
        },
        "/batches/{batch_id}/recall": {
            "post": operation(
                "Recall a batch (regulator)",
                auth="token",
                body=schemas.RecallIn,
                parameters=[path_id("batch_id")],
                limited=True,
            )
        },
        "/codes": {
            "get": operation(
                "Look a code up by its Digital Link URI",
                auth="public",
                parameters=[{**query_text("uri", 2000, minLength=1), "required": True}],
                limited=True,
            )
        },
        "/codes/{serial}": {
            "get": operation(
                "A trace code", auth="public", parameters=[SERIAL], errors=(422,), limited=True
            )
        },
        "/codes/{serial}/label.png": image("image/png"),
        "/codes/{serial}/label.svg": image("image/svg+xml"),
        "/codes/{serial}/barcode.png": image("image/png"),
        "/codes/{serial}/barcode.svg": image("image/svg+xml"),
        "/codes/{serial}/history": {
            "get": operation(
                "A unit's history: events in time order, custody",
                auth="token",
                parameters=[SERIAL],
                errors=(422,),
            )
        },
        "/codes/{serial}/delivery-rating": {
            "post": operation(
                "The consignee rates courier and company, by the unit's code in hand (the unit "
                "still signed for, within 30 days; else 403)",
                auth="public",
                body=schemas.DeliveryRatingIn,
                ok=201,
                parameters=[SERIAL],
                errors=(403, 409),
                limited=True,
            )
        },
        "/codes/{serial}/reviews": {
            "post": operation(
                "A consumer's review (also limited per client and hour)",
                auth="public",
                body=schemas.ReviewIn,
                ok=201,
                parameters=[SERIAL],
                limited=True,
            )
        },
        "/codes/{serial}/complaints": {
            "post": operation(
                "A consumer's complaint (also limited per client and hour)",
                auth="public",
                body=schemas.ComplaintIn,
                ok=201,
                parameters=[SERIAL],
                limited=True,
            )
        },
        "/parcels/{waybill}/history": {
            "get": operation(
                "A parcel's history: its state and every event, each with its Kuaidi100 state "
                "and AfterShip tag/subtag (docs/courier-status.md)",
                auth="token",
                parameters=[WAYBILL],
                answer=PARCEL_HISTORY,
            )
        },
        "/parcels/{waybill}/rating": {
            "post": operation(
                "The shipping merchant rates courier and company",
                auth="token",
                body=schemas.DeliveryRatingIn,
                ok=201,
                parameters=[WAYBILL],
                errors=(409,),
                limited=True,
            )
        },
        "/devices": {
            "post": operation(
                "Register a device (the secret is in this answer only)",
                auth="token",
                body=schemas.DeviceIn,
                ok=201,
                errors=(404,),
            )
        },
        "/devices/{device_id}": {"get": operation("A device", auth="token", parameters=[DEVICE])},
        "/devices/{device_id}/disable": {
            "post": operation(
                "Refuse the device's events from now on", auth="token", parameters=[DEVICE]
            )
        },
        "/events": {
            "post": operation(
                "Device events over HTTP (devices/PROTOCOL.md): answers an ack per event, a "
                "refused event's with its reason. Requests that authenticate no event are "
                "rate-limited per client address",
                auth="device",
                body={"description": "a message of signed events, as over MQTT"},
                parameters=[
                    {
                        "name": "X-Device-Id",
                        "in": "header",
                        "description": "the device (else device_id in the body)",
                        "schema": {"type": "string"},
                    }
                ],
                errors=(413,),
                limited=True,
            )
        },
        "/rejected-events": {
            "get": operation(
                "Registered devices' rejected events, newest first (authorities, each those "
                "of its jurisdiction's devices)",
                auth="token",
                parameters=[
                    query_text("device_id", 64),
                    query_text("reason", 32),
                    query_text("serial", 20),
                    query_text("waybill", 32),
                ],
            )
        },
        "/rejected-events/tallies": {
            "get": operation(
                "Rejections counted per hour, sender and reason (unregistered senders; "
                "registered devices beyond their hourly rows), latest first (authorities)",
                auth="token",
                parameters=[
                    query_text("device_id", 64),
                    query_text("reason", 32),
                    query_text("address", 64),
                ],
            )
        },
        "/counterfeit-reports": {
            "post": operation(
                "A consumer's report of a fake: a never-issued code or a forged link (the "
                "contact is for regulators only and never returned; also limited per client "
                "and hour)",
                auth="public",
                body=schemas.CounterfeitReportIn,
                ok=201,
                errors=(409,),
                limited=True,
            )
        },
        "/counterfeit-map": {
            "get": operation(
                "Where fakes are checked and reported, by district and product (regulators, "
                "inside their jurisdiction)",
                auth="token",
                parameters=[
                    query_text("gtin", 14, pattern="^([0-9]{8}|[0-9]{12,14})?$"),
                    query_int("merchant_id"),
                    query_int("days", 1, 365, default=30),
                ],
                limited=True,
            )
        },
        "/anomalies": {
            "get": operation(
                "Anomalies, newest first, a page at a time ({items, next})",
                auth="token",
                parameters=[
                    query_text("type"),
                    query_text("status"),
                    query_text("severity"),
                    query_text("party_type"),
                    query_int("party_id"),
                    {**query_text("since"), "schema": TIME},
                    {**query_text("until"), "schema": TIME},
                    query_text("region_code", description="a region-code prefix"),
                    query_text("within", description="a GeoJSON Polygon or MultiPolygon"),
                    query_int("before", description="the last id of the page before"),
                    query_int("limit", 1, MAX_PAGE, default=50),
                ],
                limited=True,
            )
        },
        "/anomalies/{anomaly_id}": {
            "get": operation(
                "An anomaly", auth="token", parameters=[path_id("anomaly_id")], limited=True
            )
        },
        "/anomalies/{anomaly_id}/decision": {
            "post": operation(
                "Confirm or dismiss (regulator)",
                auth="token",
                body=schemas.DecisionIn,
                parameters=[path_id("anomaly_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/anomalies/decisions": {
            "post": operation(
                "Confirm or dismiss many findings with one reason (regulator): `ids`, or a "
                "`filter` of the queue's (type, severity, party, region, detected since/until) "
                "over the open findings of your jurisdiction. At most 5,000 a request: a filter "
                "selecting more decides the oldest 5,000 and answers `remaining`; send it "
                "again. `preview` decides nothing. Each finding is audited on its own; an id "
                "outside your jurisdiction refuses the request. Answers {selected, decided, "
                "skipped, remaining, cap}",
                auth="token",
                body=schemas.BulkDecisionIn,
                errors=(404,),
                limited=True,
            )
        },
        "/credit/records/{record_id}/appeal": {
            "post": operation(
                "Appeal a sanction (the party sanctioned); within the response period it holds "
                "the sanction until decided",
                auth="token",
                body=schemas.AppealIn,
                ok=201,
                parameters=[path_id("record_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/anomalies/{anomaly_id}/appeal": {
            "post": operation(
                "Appeal (the party named)",
                auth="token",
                body=schemas.AppealIn,
                ok=201,
                parameters=[path_id("anomaly_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/appeals/{appeal_id}/decision": {
            "post": operation(
                "Uphold or reject an appeal (regulator)",
                auth="token",
                body=schemas.DecisionIn,
                parameters=[path_id("appeal_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/credit/{party_type}/{party_id}": {
            "get": operation(
                "Credit account: score, grade, list, commitment and the final records "
                "(public); with the party's or a regulator's token also the risk indicator, "
                "the decisions not final yet with their final dates, the outlook and every "
                "record",
                auth="public",
                parameters=[PARTY_TYPE, path_id("party_id")],
                limited=True,
            )
        },
        "/credit/{party_type}/{party_id}/records": {
            "post": operation(
                "Sanction or commendation (regulator)",
                auth="token",
                body=schemas.RecordIn,
                ok=201,
                parameters=[PARTY_TYPE, path_id("party_id")],
                limited=True,
            )
        },
        "/credit/{party_type}/{party_id}/commitment": {
            "post": operation(
                "Sign the credit commitment (the party)",
                auth="token",
                ok=201,
                parameters=[PARTY_TYPE, path_id("party_id")],
                limited=True,
            )
        },
        "/credit/commitment-text": {
            "get": operation("The standard commitment text", auth="public", limited=True)
        },
        "/credit/lists/{which}": {
            "get": operation(
                "The red or black list, each party with since when and why",
                auth="public",
                parameters=[
                    {
                        "name": "which",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["red", "black"]},
                    }
                ],
                limited=True,
            )
        },
        "/credit/exchange": {
            "get": operation(
                "Credit information exchange: confirmed findings, sanctions and list changes, "
                "public after due process, per USCC, oldest first, a page at a time ({items, "
                "next}); authorities (without uscc: every party of their jurisdiction) and the "
                "party itself (docs/credit-exchange.md)",
                auth="token",
                parameters=[
                    *EXCHANGE_QUERY,
                    query_text("after", 80, description="the next of the page before"),
                    query_int("limit", 1, MAX_EXCHANGE_PAGE, default=100),
                ],
                errors=(404,),
                answer=EXCHANGE_PAGE,
                limited=True,
            )
        },
        "/credit/exchange.csv": {
            "get": operation(
                "The credit exchange as CSV (UTF-8 with BOM), every item since `since`",
                auth="token",
                produces=("text/csv",),
                parameters=EXCHANGE_QUERY,
                errors=(404,),
                limited=True,
            )
        },
        "/credit/notices": {
            "get": operation(
                "Public risk notices, each dated when it became public", auth="public", limited=True
            )
        },
        "/webhooks/subscriptions": {
            "post": operation(
                "Subscribe to signed webhooks (docs/webhooks.md): a party to its own parties' "
                "things, an authority to its jurisdiction's, anyone to the public topics (list, "
                "notice, recall); optional scope: a batch or a merchant of yours. The answer "
                "carries the signing secret (whsec_...), shown this once",
                auth="token",
                body=schemas.SubscriptionIn,
                ok=201,
                errors=(404, 409),
            ),
            "get": operation("Your webhook subscriptions", auth="token"),
        },
        "/webhooks/subscriptions/{subscription_id}": {
            "get": operation(
                "A webhook subscription: its state, and why it was disabled",
                auth="token",
                parameters=[path_id("subscription_id")],
            ),
            "delete": operation(
                "Delete a webhook subscription and its delivery log",
                auth="token",
                ok=204,
                produces=(),
                parameters=[path_id("subscription_id")],
                errors=(405,),
            ),
        },
        "/webhooks/subscriptions/{subscription_id}/enable": {
            "post": operation(
                "Enable a disabled subscription again: every message missed meanwhile follows, "
                "in order",
                auth="token",
                parameters=[path_id("subscription_id")],
            )
        },
        "/webhooks/subscriptions/{subscription_id}/deliveries": {
            "get": operation(
                "A subscription's delivery log, newest first ({items, next}): status, response "
                "code, duration, error, attempt",
                auth="token",
                parameters=[
                    path_id("subscription_id"),
                    query_int("before", description="the last id of the page before"),
                    query_int("limit", 1, 200, default=50),
                ],
            )
        },
    }


def _issue_codes_body(max_codes: int) -> dict:
    """IssueCodesIn, with ``count`` bounded by this service's MAX_CODES_PER_REQUEST."""
    schema = schemas.IssueCodesIn.model_json_schema()
    count = schema["properties"]["count"]
    count["maximum"] = min(count["maximum"], max_codes)
    return schema


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

#: The models whose schemas are components (the request bodies).
BODIES = (
    schemas.MerchantIn,
    schemas.LogisticsCompanyIn,
    schemas.CourierIn,
    schemas.ProductIn,
    schemas.BatchIn,
    schemas.DeviceIn,
    schemas.DecisionIn,
    schemas.BulkDecisionIn,
    schemas.AppealIn,
    schemas.RecordIn,
    schemas.RecallIn,
    schemas.DeliveryRatingIn,
    schemas.ReviewIn,
    schemas.ComplaintIn,
    schemas.CounterfeitReportIn,
    schemas.SubscriptionIn,
)


@cache
def document(max_codes: int = schemas.MAX_CODES, max_labels: int = 100_000) -> dict:
    """The contract, for a service whose MAX_CODES_PER_REQUEST is ``max_codes`` and whose
    MAX_LABELS_PER_SHEET is ``max_labels``."""
    components: dict = {}
    for model in BODIES:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    components["Error"] = ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trace: product traceability and logistics tracking", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": _paths(max_codes, max_labels),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    cfg = settings()
    return document(cfg.MAX_CODES_PER_REQUEST, cfg.MAX_LABELS_PER_SHEET)
