"""``GET /api/v1/openapi.json``: the API contract, with request schemas taken from the same
pydantic models that validate the requests (so the document cannot drift from the code).

Where each part lives:

- common: :func:`operation`, which makes every operation and adds the answers of its kind
  (:func:`standard_errors`), the parameters, and the shared schemas (ERROR, TIME, SERIAL...);
- one module per area of the API, each with ``paths()``, its part of the paths: parties,
  catalog, codes, parcels, devices, counterfeit, findings, credit (with credit_exchange) and
  webhooks;
- here: the document, which puts the areas together in that order, and its route.

A test walks the URL map and this document (tests/app/test_contract.py), and the fuzzing run
checks every answer against it (tests/app/test_contract_fuzz.py): a new route is covered once
it is added to its area's module.
"""

from __future__ import annotations

from functools import cache

from flask import Blueprint

from app import schemas
from app.openapi import (
    catalog,
    codes,
    counterfeit,
    credit,
    devices,
    findings,
    parcels,
    parties,
    webhooks,
)
from app.openapi.common import ERROR_SCHEMA, standard_errors
from app.web import settings

#: standard_errors: tests/app/test_contract.py checks every operation against it.
__all__ = ["bp", "document", "standard_errors"]

bp = Blueprint("openapi", __name__)

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
        "paths": {
            **parties.paths(),
            **catalog.paths(),
            **codes.paths(max_codes, max_labels),
            **parcels.paths(),
            **devices.paths(),
            **counterfeit.paths(),
            **findings.paths(),
            **credit.paths(),
            **webhooks.paths(),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    cfg = settings()
    return document(cfg.MAX_CODES_PER_REQUEST, cfg.MAX_LABELS_PER_SHEET)
