"""/api/v1 endpoints of feedback: a consignee's or merchant's delivery rating, a consumer's
review and complaint (the public ones rate-limited per client)."""

from __future__ import annotations

from flask import Blueprint

from app.feedback import operations as feedback
from app.schemas import ComplaintIn, DeliveryRatingIn, ReviewIn
from app.web import client_source, db, parse_body, principal, settings, unit_of_work

bp = Blueprint("feedback", __name__)


def _source() -> feedback.Source:
    """The client, known only by keyed hashes of its address and network (rate limits)."""
    return feedback.Source(*client_source("feedback"))


def rating_json(r) -> dict:
    return {
        "id": r.id,
        "waybill": r.waybill,
        "rater": r.rater,
        "courier": r.courier_stars,
        "company": r.company_stars,
        "tags": r.tags,
    }


@bp.post("/codes/<serial>/delivery-rating")
@unit_of_work
def rate_as_consignee(serial: str):
    """The consignee rates courier and company, by the code on the unit received (public)."""
    body = parse_body(DeliveryRatingIn)
    rating = feedback.rate_as_consignee(
        db(), serial, body.courier, body.company, body.tags, settings().policy
    )
    return rating_json(rating), 201


@bp.post("/parcels/<waybill>/rating")
@unit_of_work
def rate_as_merchant(waybill: str):
    body = parse_body(DeliveryRatingIn)
    rating = feedback.rate_as_merchant(
        db(),
        principal(),
        waybill.strip().upper(),
        body.courier,
        body.company,
        body.tags,
        settings().policy,
    )
    return rating_json(rating), 201


@bp.post("/codes/<serial>/reviews")
@unit_of_work
def add_review(serial: str):
    """A consumer's review of the unit (public, rate-limited per client)."""
    body = parse_body(ReviewIn)
    review = feedback.add_review(
        db(), serial, body.rating, body.text, _source(), settings().REVIEWS_PER_HOUR
    )
    return {"id": review.id, "serial": serial, "rating": review.rating, "text": review.text}, 201


@bp.post("/codes/<serial>/complaints")
@unit_of_work
def file_complaint(serial: str):
    """A consumer's complaint (public, rate-limited). The contact is personal data: it is
    stored for regulators and never returned here."""
    body = parse_body(ComplaintIn)
    complaint = feedback.file_complaint(
        db(),
        serial,
        body.category,
        body.text,
        body.contact,
        _source(),
        settings().COMPLAINTS_PER_HOUR,
        settings().policy,
    )
    return {
        "id": complaint.id,
        "serial": serial,
        "category": complaint.category,
        "responsible": {"type": complaint.party_type, "id": complaint.party_id},
        "anomaly_id": complaint.anomaly_id,
    }, 201
