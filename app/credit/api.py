"""/api/v1 endpoints: anomalies, decisions and appeals, credit accounts, lists and notices,
recalls and service areas."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, request, url_for

from app.anomalies import decisions, findings
from app.credit import feedback, operations
from app.credit.models import Anomaly
from app.errors import ApiError
from app.parties.models import Courier
from app.schemas import (
    AppealIn,
    ComplaintIn,
    DecisionIn,
    DeliveryRatingIn,
    RecallIn,
    RecordIn,
    ReviewIn,
)
from app.web import db, parse_body, principal, settings, unit_of_work
from tracecore import credit
from tracecore.access import Role
from tracecore.errors import NotFound, ValidationError
from tracecore.identity import keyed_hash

bp = Blueprint("credit", __name__)
PARTY_TYPES = ("merchant", "logistics_company", "courier")
ANOMALY_FILTERS = (
    "type",
    "status",
    "party_type",
    "party_id",
    "since",
    "until",
    "severity",
    "region_code",
    "within",
    "before",
    "limit",
)


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def anomaly_json(a: Anomaly) -> dict:
    return {
        "id": a.id,
        "type": a.type,
        "severity": a.severity,
        "status": a.status,
        "subject": {
            {"code": "code", "waybill": "waybill", "batch": "batch_id", "merchant": "merchant_id"}[
                a.subject_type
            ]: a.subject
        },
        "party": {"type": a.party_type, "id": a.party_id},
        "region_code": a.region_code,
        "evidence": a.evidence,
        "detected_at": _rfc3339(a.detected_at),
        "decided_at": _rfc3339(a.decided_at),
    }


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            422, "validation_failed", f"{name} must be an RFC 3339 time", field=name
        ) from None
    if moment.tzinfo is None:
        raise ApiError(422, "validation_failed", f"{name} needs a UTC offset", field=name)
    return moment.astimezone(UTC)


def _within_arg() -> str | None:
    """``within``: a GeoJSON Polygon or MultiPolygon, as WGS 84 WKT."""
    raw = request.args.get("within")
    if not raw:
        return None
    from shapely.geometry import shape

    try:
        geometry = shape(json.loads(raw))
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
            raise ValueError
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ApiError(
            422,
            "validation_failed",
            "within must be a valid GeoJSON Polygon or MultiPolygon",
            field="within",
        ) from None
    return geometry.wkt


def _number_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if not raw:
        return None
    if not raw.isdigit():
        raise ApiError(422, "validation_failed", f"{name} must be a number", field=name)
    return int(raw)


@bp.get("/anomalies")
def list_anomalies():
    """Newest first. Authorities see those of their jurisdiction; a merchant or company only
    what names it (or, for a company, its couriers)."""
    viewer = principal()
    unknown = set(request.args) - set(ANOMALY_FILTERS)
    if unknown:
        raise ApiError(
            422,
            "validation_failed",
            f"unknown filter: {sorted(unknown)[0]}",
            field=sorted(unknown)[0],
        )
    limit = min(_number_arg("limit") or 50, 500)
    found = findings.AnomalyFilter(
        type=request.args.get("type") or None,
        status=request.args.get("status") or None,
        severity=request.args.get("severity") or None,
        party_type=request.args.get("party_type") or None,
        party_id=_number_arg("party_id"),
        since=_time_arg("since"),
        until=_time_arg("until"),
        region_code=request.args.get("region_code") or None,
        within_wkt=_within_arg(),
        before=_number_arg("before"),
    )
    items = findings.find_anomalies(db(), viewer, found, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    next_url = None
    if more:
        args = {k: v for k, v in request.args.items() if k != "before"}
        next_url = url_for("credit.list_anomalies", _external=False, before=items[-1].id, **args)
    return {"items": [anomaly_json(a) for a in items], "next": next_url}


@bp.get("/anomalies/<int:anomaly_id>")
def get_anomaly(anomaly_id: int):
    viewer = principal()
    anomaly = findings.get_anomaly(db(), anomaly_id)
    if not (
        (viewer.is_authority and viewer.covers(anomaly.region_code))
        or operations.acts_for(db(), viewer, anomaly.party_type, anomaly.party_id)
    ):
        raise NotFound(f"no anomaly with id {anomaly_id}")
    return anomaly_json(anomaly)


@bp.post("/anomalies/<int:anomaly_id>/decision")
@unit_of_work
def decide(anomaly_id: int):
    body = parse_body(DecisionIn)
    return anomaly_json(decisions.decide(db(), principal(), anomaly_id, body.decision, body.reason))


@bp.post("/anomalies/<int:anomaly_id>/appeal")
@unit_of_work
def appeal(anomaly_id: int):
    body = parse_body(AppealIn)
    found = decisions.appeal(db(), principal(), anomaly_id, body.statement)
    return {"id": found.id, "anomaly_id": anomaly_id, "status": found.status}, 201


@bp.post("/appeals/<int:appeal_id>/decision")
@unit_of_work
def decide_appeal(appeal_id: int):
    body = parse_body(DecisionIn)
    found = decisions.decide_appeal(db(), principal(), appeal_id, body.decision, body.reason)
    return {"id": found.id, "anomaly_id": found.anomaly_id, "status": found.status}


def _party_type(value: str) -> str:
    if value not in PARTY_TYPES:
        raise NotFound(f"unknown party type {value[:32]}")
    return value


def account_json(acc: operations.Account, *, with_records: bool = True) -> dict:
    out = {
        "party": {"type": acc.party_type, "id": acc.party_id},
        "score": acc.standing.score,
        "grade": acc.standing.grade,
        "list": acc.standing.list,
        "commitment": None
        if acc.commitment is None
        else {
            "text_version": acc.commitment.text_version,
            "signed_at": _rfc3339(acc.commitment.signed_at),
        },
    }
    if with_records:
        out["records"] = [
            {
                "id": r.id,
                "kind": r.kind,
                "points": r.points,
                "reason": r.reason,
                "anomaly_id": r.anomaly_id,
                "effective_at": _rfc3339(r.effective_at),
            }
            for r in acc.records
        ]
    return out


@bp.get("/credit/<party_type>/<int:party_id>")
def credit_account(party_type: str, party_id: int):
    """Public: score, grade, list status, commitment and the records behind them."""
    return account_json(
        operations.account(db(), _party_type(party_type), party_id, settings().policy)
    )


@bp.post("/credit/<party_type>/<int:party_id>/records")
@unit_of_work
def add_record(party_type: str, party_id: int):
    """A regulator's sanction or commendation."""
    body = parse_body(RecordIn)
    record = operations.add_record(
        db(),
        principal(),
        _party_type(party_type),
        party_id,
        body.kind,
        body.reason,
        settings().policy,
    )
    return {"id": record.id, "kind": record.kind, "points": record.points}, 201


@bp.get("/credit/commitment-text")
def commitment_text():
    return {"version": operations.COMMITMENT_VERSION, "text": operations.COMMITMENT_TEXT}


@bp.post("/credit/<party_type>/<int:party_id>/commitment")
@unit_of_work
def sign_commitment(party_type: str, party_id: int):
    signed = operations.sign_commitment(
        db(), principal(), _party_type(party_type), party_id, settings().policy
    )
    return {"text_version": signed.text_version, "signed_at": _rfc3339(signed.signed_at)}, 201


@bp.get("/credit/lists/<which>")
def credit_list(which: str):
    """The public red (守信红名单) and black (失信黑名单) lists."""
    if which not in (credit.RED, credit.BLACK):
        raise NotFound("the lists are red and black")
    return {
        "list": which,
        "items": [
            {
                **operations.public_party(db(), a.party_type, a.party_id),
                "score": a.standing.score,
                "grade": a.standing.grade,
            }
            for a in operations.listed(db(), which, settings().policy)
        ],
    }


@bp.get("/credit/notices")
def credit_notices():
    """Public risk notices (风险提示), published as soon as they are decided."""
    return {
        "items": [
            {**n, "at": _rfc3339(n["at"])} for n in operations.notices(db(), settings().policy)
        ]
    }


@bp.post("/batches/<int:batch_id>/recall")
@unit_of_work
def recall(batch_id: int):
    """A regulator recalls a batch: from now on its sales raise recalled_sale."""
    body = parse_body(RecallIn)
    batch = operations.recall_batch(db(), principal(), batch_id, body.reason)
    return {
        "id": batch.id,
        "status": batch.status.value,
        "recalled_at": _rfc3339(batch.recalled_at),
        "reason": batch.recall_reason,
    }


@bp.put("/couriers/<int:courier_id>/service-area")
@unit_of_work
def set_service_area(courier_id: int):
    """The courier's service area, a GeoJSON Polygon or MultiPolygon (WGS 84)."""
    actor = principal()
    actor.require(Role.ADMIN, Role.REGULATOR, Role.LOGISTICS)
    courier = db().get(Courier, courier_id)
    if courier is None:
        raise NotFound(f"no courier with id {courier_id}")
    actor.require_company(courier.company_id)
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send GeoJSON as application/json")
    shape = request.get_json(silent=True)
    if not isinstance(shape, dict) or shape.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValidationError("send a GeoJSON Polygon or MultiPolygon", field="type")
    from shapely.geometry import MultiPolygon
    from shapely.geometry import shape as to_shape

    try:
        geometry = to_shape(shape)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ValidationError(
            "the coordinates do not form a polygon", field="coordinates"
        ) from None
    if not geometry.is_valid or geometry.is_empty:
        raise ValidationError(
            "the polygon is not valid (self-crossing or empty)", field="coordinates"
        )
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValidationError("coordinates are [lon, lat] in degrees", field="coordinates")
    if geometry.geom_type == "Polygon":
        geometry = MultiPolygon([geometry])
    from geoalchemy2 import WKTElement

    courier.service_area = WKTElement(geometry.wkt, srid=4326)
    operations.audit(db(), actor, "courier.service_area", "courier", courier_id, geometry.wkt[:900])
    return {"courier_id": courier_id, "service_area": shape}


def _client_hash() -> str:
    """The client, known only by a keyed hash of its address (for rate limits)."""
    return keyed_hash(settings().SECRET_KEY, request.remote_addr or "unknown")


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
        db(), serial, body.rating, body.text, _client_hash(), settings().REVIEWS_PER_HOUR
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
        _client_hash(),
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
