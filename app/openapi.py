"""``GET /api/v1/openapi.json``: the API contract, with request schemas taken from the same
pydantic models that validate the requests (so the document cannot drift from the code)."""

from __future__ import annotations

from functools import cache

from flask import Blueprint

from app import schemas
from app.epcis import openapi as epcis_openapi

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
BEARER = [{"bearer": []}]


def _op(
    summary: str,
    *,
    body: type | None = None,
    ok: int = 200,
    secure: bool = True,
    produces: str = "application/json",
    errors: tuple[int, ...] = (),
) -> dict:
    op: dict = {
        "summary": summary,
        "responses": {str(ok): {"description": "OK", "content": {produces: {}}}},
    }
    for status in (*errors, *((401, 403) if secure else ()), *((415, 422) if body else ())):
        op["responses"][str(status)] = {
            "description": "Error",
            "content": {"application/json": {"schema": ERROR}},
        }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}
            },
        }
    if secure:
        op["security"] = BEARER
    return op


def _id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


DEVICE = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"}}
PARTY_TYPE = {
    "name": "party_type",
    "in": "path",
    "required": True,
    "schema": {"enum": ["merchant", "logistics_company", "courier"]},
}
SERIAL = {"name": "serial", "in": "path", "required": True, "schema": {"type": "string"}}


@cache
def document() -> dict:
    models = [
        schemas.MerchantIn,
        schemas.LogisticsCompanyIn,
        schemas.CourierIn,
        schemas.ProductIn,
        schemas.BatchIn,
        schemas.IssueCodesIn,
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
    ]
    components = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    components["Error"] = {
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
    label = {
        "get": {
            **_op("Label image", secure=False, produces="image/*", errors=(404,)),
            "parameters": [SERIAL],
        }
    }
    paths = {
        "/merchants": {
            "post": _op("Register a merchant", body=schemas.MerchantIn, ok=201, errors=(409,))
        },
        "/merchants/{merchant_id}": {
            "get": {
                **_op("A merchant", secure=False, errors=(404,)),
                "parameters": [_id("merchant_id")],
            }
        },
        "/logistics-companies": {
            "post": _op(
                "Register a logistics company",
                ok=201,
                body=schemas.LogisticsCompanyIn,
                errors=(409,),
            )
        },
        "/logistics-companies/{company_id}": {
            "get": {
                **_op("A logistics company", secure=False, errors=(404,)),
                "parameters": [_id("company_id")],
            }
        },
        "/couriers/{courier_id}": {
            "get": {
                **_op("A courier (authorities and the courier's company)", errors=(404,)),
                "parameters": [_id("courier_id")],
            }
        },
        "/couriers": {
            "post": _op(
                "Register a courier (real name)", body=schemas.CourierIn, ok=201, errors=(404, 409)
            )
        },
        "/products": {
            "post": _op("Register a product", body=schemas.ProductIn, ok=201, errors=(404, 409))
        },
        "/products/{product_id}": {
            "get": {
                **_op("A product", secure=False, errors=(404,)),
                "parameters": [_id("product_id")],
            }
        },
        "/batches": {
            "post": _op("Register a batch", body=schemas.BatchIn, ok=201, errors=(404, 409))
        },
        "/batches/{batch_id}": {
            "get": {**_op("A batch", secure=False, errors=(404,)), "parameters": [_id("batch_id")]}
        },
        "/batches/{batch_id}/codes": {
            "post": {
                **_op(
                    "Issue trace codes (JSON, or text/csv when accepted)",
                    ok=201,
                    body=schemas.IssueCodesIn,
                    errors=(404, 409),
                ),
                "parameters": [_id("batch_id")],
            }
        },
        "/batches/{batch_id}/labels.pdf": {
            "get": {
                **_op("Printable A4 label sheet", produces="application/pdf", errors=(404,)),
                "parameters": [
                    _id("batch_id"),
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                ],
            }
        },
        "/codes": {
            "get": {
                **_op("Look a code up by Digital Link URI", secure=False, errors=(404, 422)),
                "parameters": [
                    {"name": "uri", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
            }
        },
        "/codes/{serial}": {
            "get": {**_op("A trace code", secure=False, errors=(404,)), "parameters": [SERIAL]}
        },
        "/codes/{serial}/label.png": label,
        "/codes/{serial}/label.svg": label,
        "/codes/{serial}/barcode.png": label,
        "/codes/{serial}/barcode.svg": label,
        "/devices": {
            "post": _op(
                "Register a device (the secret is in this answer only)",
                body=schemas.DeviceIn,
                ok=201,
                errors=(404,),
            )
        },
        "/devices/{device_id}": {"get": {**_op("A device", errors=(404,)), "parameters": [DEVICE]}},
        "/devices/{device_id}/disable": {
            "post": {
                **_op("Refuse the device's events from now on", errors=(404,)),
                "parameters": [DEVICE],
            }
        },
        "/events": {
            "post": {
                **_op(
                    "Device events over HTTP (see devices/PROTOCOL.md); answers acks. "
                    "Requests that authenticate no event are rate-limited per client",
                    secure=False,
                    errors=(413, 415, 422, 429),
                ),
                "parameters": [
                    {
                        "name": "X-Device-Id",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            }
        },
        "/codes/{serial}/history": {
            "get": {
                **_op("A unit's history: events in time order, custody", errors=(404,)),
                "parameters": [SERIAL],
            }
        },
        "/parcels/{waybill}/history": {
            "get": {
                **_op("A parcel's history", errors=(404,)),
                "parameters": [
                    {
                        "name": "waybill",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
        "/batches/{batch_id}/trace": {
            "get": {
                **_op("Forward trace: where every unit of the batch is", errors=(404,)),
                "parameters": [
                    _id("batch_id"),
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "maximum": 1000},
                    },
                ],
            }
        },
        "/counterfeit-reports": {
            "post": _op(
                "A consumer's report of a fake: a never-issued code or a forged link "
                "(rate-limited; the contact is for regulators only and never returned)",
                secure=False,
                body=schemas.CounterfeitReportIn,
                ok=201,
                errors=(409, 429),
            )
        },
        "/counterfeit-map": {
            "get": _op(
                "Where fakes are checked and reported, by district and product "
                "(regulators, inside their jurisdiction); ?gtin, merchant_id, days",
                errors=(422,),
            )
        },
        "/anomalies": {
            "get": {
                **_op(
                    "Anomalies, newest first; ?type, status, party_type, party_id, since, until, "
                    "region_code, within (GeoJSON), before, limit",
                    errors=(422,),
                ),
            }
        },
        "/anomalies/{anomaly_id}": {
            "get": {**_op("An anomaly", errors=(404,)), "parameters": [_id("anomaly_id")]}
        },
        "/anomalies/{anomaly_id}/decision": {
            "post": {
                **_op("Confirm or dismiss (regulator)", body=schemas.DecisionIn, errors=(404, 409)),
                "parameters": [_id("anomaly_id")],
            }
        },
        "/anomalies/decisions": {
            "post": {
                **_op(
                    "Confirm or dismiss many findings with one reason (regulator): `ids`, or a "
                    "`filter` of the queue's (type, severity, party, region, detected since/"
                    "until) over the open findings of your jurisdiction. At most 5,000 a "
                    "request: a filter selecting more decides the oldest 5,000 and answers "
                    "`remaining`; send it again. `preview` decides nothing. Each finding is "
                    "audited on its own; an id outside your jurisdiction refuses the request. "
                    "Answers {selected, decided, skipped, remaining, cap}",
                    body=schemas.BulkDecisionIn,
                    errors=(404,),
                ),
            }
        },
        "/credit/records/{record_id}/appeal": {
            "post": {
                **_op(
                    "Appeal a sanction (the party sanctioned); within the response period it "
                    "holds the sanction until decided",
                    body=schemas.AppealIn,
                    ok=201,
                    errors=(404, 409),
                ),
                "parameters": [_id("record_id")],
            }
        },
        "/anomalies/{anomaly_id}/appeal": {
            "post": {
                **_op("Appeal (the party named)", body=schemas.AppealIn, ok=201, errors=(404, 409)),
                "parameters": [_id("anomaly_id")],
            }
        },
        "/appeals/{appeal_id}/decision": {
            "post": {
                **_op(
                    "Uphold or reject an appeal (regulator)",
                    body=schemas.DecisionIn,
                    errors=(404, 409),
                ),
                "parameters": [_id("appeal_id")],
            }
        },
        "/credit/{party_type}/{party_id}": {
            "get": {
                **_op(
                    "Credit account: score, grade, list, commitment and the final records "
                    "(public); with the party's or a regulator's token also the risk "
                    "indicator, the decisions not final yet with their final dates, the "
                    "outlook and every record",
                    secure=False,
                    errors=(404,),
                ),
                "parameters": [PARTY_TYPE, _id("party_id")],
            }
        },
        "/credit/{party_type}/{party_id}/records": {
            "post": {
                **_op(
                    "Sanction or commendation (regulator)",
                    body=schemas.RecordIn,
                    ok=201,
                    errors=(404,),
                ),
                "parameters": [PARTY_TYPE, _id("party_id")],
            }
        },
        "/credit/{party_type}/{party_id}/commitment": {
            "post": {
                **_op("Sign the credit commitment", ok=201, errors=(404,)),
                "parameters": [PARTY_TYPE, _id("party_id")],
            }
        },
        "/credit/commitment-text": {"get": _op("The standard commitment text", secure=False)},
        "/credit/lists/{which}": {
            "get": {
                **_op(
                    "The red or black list, each party with since when and why",
                    secure=False,
                    errors=(404,),
                ),
                "parameters": [
                    {
                        "name": "which",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["red", "black"]},
                    }
                ],
            }
        },
        "/credit/notices": {
            "get": _op("Public risk notices, each dated when it became public", secure=False)
        },
        "/batches/{batch_id}/recall": {
            "post": {
                **_op("Recall a batch (regulator)", body=schemas.RecallIn, errors=(404,)),
                "parameters": [_id("batch_id")],
            }
        },
        "/couriers/{courier_id}/service-area": {
            "put": {
                **_op(
                    "Set the courier's service area (GeoJSON Polygon/MultiPolygon)",
                    errors=(404, 415, 422),
                ),
                "parameters": [_id("courier_id")],
            }
        },
        "/codes/{serial}/delivery-rating": {
            "post": {
                **_op(
                    "The consignee rates courier and company, by the unit's code in hand "
                    "(the unit still signed for, within 30 days; else 403)",
                    secure=False,
                    body=schemas.DeliveryRatingIn,
                    ok=201,
                    errors=(403, 404, 409),
                ),
                "parameters": [SERIAL],
            }
        },
        "/parcels/{waybill}/rating": {
            "post": {
                **_op(
                    "The shipping merchant rates courier and company",
                    ok=201,
                    body=schemas.DeliveryRatingIn,
                    errors=(404, 409),
                ),
                "parameters": [
                    {
                        "name": "waybill",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
        "/codes/{serial}/reviews": {
            "post": {
                **_op(
                    "A consumer's review (rate-limited)",
                    secure=False,
                    body=schemas.ReviewIn,
                    ok=201,
                    errors=(404, 429),
                ),
                "parameters": [SERIAL],
            }
        },
        "/codes/{serial}/complaints": {
            "post": {
                **_op(
                    "A consumer's complaint (rate-limited)",
                    secure=False,
                    body=schemas.ComplaintIn,
                    ok=201,
                    errors=(404, 429),
                ),
                "parameters": [SERIAL],
            }
        },
        "/rejected-events": {
            "get": {
                **_op("Registered devices' rejected events, newest first (authorities)"),
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": "string"}}
                    for name in ("device_id", "reason", "serial", "waybill")
                ],
            }
        },
        "/rejected-events/tallies": {
            "get": {
                **_op(
                    "Rejections counted per hour, sender and reason (unregistered senders; "
                    "registered devices beyond their hourly rows), latest first (authorities)"
                ),
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": "string"}}
                    for name in ("device_id", "reason", "address")
                ],
            }
        },
    }
    paths.update(epcis_openapi.paths())  # under /epcis, with its own error shape
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trace: product traceability and logistics tracking", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return document()
