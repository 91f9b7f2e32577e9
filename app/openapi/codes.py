"""Trace codes: a batch's codes (issuing them, the label sheet, the forward trace, the recall),
then one code (looking it up, its label images, its unit's history, and what a consumer sends
about it: a delivery rating, a review, a complaint)."""

from __future__ import annotations

from app import schemas
from app.events.api import MAX_TRACE_PAGE
from app.openapi.common import SERIAL, operation, path_id, query_int, query_text
from app.web import MAX_ID


def paths(max_codes: int, max_labels: int) -> dict:
    """``max_codes`` and ``max_labels``: this service's maxima (MAX_CODES_PER_REQUEST,
    MAX_LABELS_PER_SHEET), stated as the bounds."""
    return {
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
    }


def image(media_type: str) -> dict:
    """A code's label image, as ``media_type``."""
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


def _issue_codes_body(max_codes: int) -> dict:
    """IssueCodesIn, with ``count`` bounded by this service's MAX_CODES_PER_REQUEST."""
    schema = schemas.IssueCodesIn.model_json_schema()
    count = schema["properties"]["count"]
    count["maximum"] = min(count["maximum"], max_codes)
    return schema
