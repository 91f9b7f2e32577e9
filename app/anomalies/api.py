"""/api/v1 endpoints of the anomaly side: the findings (filtered, paged), a regulator's
decision (one, or many in bulk), a party's appeal (of a finding or a sanction) and its
decision."""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint, request, url_for

from app import authz
from app.anomalies import decisions, findings
from app.credit.api import rfc3339
from app.credit.models import Anomaly
from app.errors import ApiError
from app.schemas import AppealIn, BulkDecisionIn, DecisionIn
from app.web import (
    db,
    parse_body,
    principal,
    query_int,
    query_time,
    read_json,
    settings,
    unit_of_work,
)
from tracecore.anomalies import VICTIM_TYPES
from tracecore.errors import NotFound

bp = Blueprint("anomalies", __name__)
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
#: The most anomalies one page holds (``limit``; 50 by default).
MAX_PAGE = 500


def anomaly_json(a: Anomaly) -> dict:
    return {
        "id": a.id,
        "type": a.type,
        "severity": a.severity,
        "status": a.status,
        "subject": {
            {
                "code": "code",
                "waybill": "waybill",
                "batch": "batch_id",
                "merchant": "merchant_id",
                "device": "device_spell",
                "product": "gtin",
            }[a.subject_type]: a.subject
        },
        "party": {
            "type": a.party_type,
            "id": a.party_id,
            # A victim (counterfeits of its product) is told, never blamed: no credit record.
            "role": "victim" if a.type in VICTIM_TYPES else "responsible",
        },
        "region_code": a.region_code,
        "evidence": a.evidence,
        "detected_at": rfc3339(a.detected_at),
        "decided_at": rfc3339(a.decided_at),
        "final_at": rfc3339(a.final_at),
        # Withdrawn automatically when later evidence cleared it: why, and by which events.
        "withdrawal": a.withdrawal and a.withdrawal | {"at": rfc3339(a.withdrawn_at)},
        # A confirmed finding that later evidence contradicts, for a regulator to review.
        "review_flag": a.review_flag and a.review_flag | {"at": rfc3339(a.flagged_at)},
    }


def _within_arg() -> str | None:
    """``within``: a GeoJSON Polygon or MultiPolygon, as WGS 84 WKT."""
    raw = request.args.get("within")
    if not raw:
        return None
    from shapely.geometry import shape

    try:
        geometry = shape(read_json(raw, field="within", what="within"))
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
    limit = query_int("limit", 50, maximum=MAX_PAGE)
    found = findings.AnomalyFilter(
        type=request.args.get("type") or None,
        status=request.args.get("status") or None,
        severity=request.args.get("severity") or None,
        party_type=request.args.get("party_type") or None,
        party_id=query_int("party_id"),
        since=query_time("since"),
        until=query_time("until"),
        region_code=request.args.get("region_code") or None,
        within_wkt=_within_arg(),
        before=query_int("before"),
    )
    items = findings.find_anomalies(db(), viewer, found, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    next_url = None
    if more:
        args = {k: v for k, v in request.args.items() if k != "before"}
        next_url = url_for("anomalies.list_anomalies", _external=False, before=items[-1].id, **args)
    return {"items": [anomaly_json(a) for a in items], "next": next_url}


@bp.get("/anomalies/<id:anomaly_id>")
def get_anomaly(anomaly_id: int):
    viewer = principal()
    anomaly = findings.get_anomaly(db(), anomaly_id)
    if not authz.allowed(db(), viewer, anomaly):
        raise NotFound(f"no anomaly with id {anomaly_id}")
    return anomaly_json(anomaly)


@bp.post("/anomalies/<id:anomaly_id>/decision")
@unit_of_work
def decide(anomaly_id: int):
    body = parse_body(DecisionIn)
    return anomaly_json(
        decisions.decide(
            db(), principal(), anomaly_id, body.decision, body.reason, settings().response_period
        )
    )


@bp.post("/anomalies/decisions")
@unit_of_work
def decide_many():
    """Confirm or dismiss many findings with one reason: a list of ids, or the open findings
    a queue filter selects (at most 5,000 a request; ``remaining`` says how many more)."""
    body = parse_body(BulkDecisionIn)
    where = None
    if body.filter is not None:
        f = body.filter
        where = findings.AnomalyFilter(
            type=f.type,
            severity=f.severity,
            party_type=f.party_type,
            party_id=f.party_id,
            region_code=f.region_code,
            since=None if f.since is None else f.since.astimezone(UTC),
            until=None if f.until is None else f.until.astimezone(UTC),
        )
    result = decisions.decide_many(
        db(),
        principal(),
        body.decision,
        body.reason,
        ids=body.ids,
        where=where,
        period=settings().response_period,
        preview=body.preview,
    )
    return {
        "decision": body.decision,
        "preview": body.preview,
        "selected": result.selected,
        "decided": result.decided,
        "skipped": result.skipped,
        "remaining": result.remaining,
        "cap": decisions.BULK_CAP,
    }


@bp.post("/anomalies/<id:anomaly_id>/appeal")
@unit_of_work
def appeal(anomaly_id: int):
    body = parse_body(AppealIn)
    found = decisions.appeal(db(), principal(), anomaly_id, body.statement)
    return {"id": found.id, "anomaly_id": anomaly_id, "status": found.status}, 201


@bp.post("/appeals/<id:appeal_id>/decision")
@unit_of_work
def decide_appeal(appeal_id: int):
    body = parse_body(DecisionIn)
    found = decisions.decide_appeal(
        db(), principal(), appeal_id, body.decision, body.reason, settings().policy
    )
    return {
        "id": found.id,
        "anomaly_id": found.anomaly_id,
        "record_id": found.record_id,
        "status": found.status,
    }


@bp.post("/credit/records/<id:record_id>/appeal")
@unit_of_work
def appeal_sanction(record_id: int):
    """The party sanctioned appeals the sanction (a credit record of kind sanction)."""
    body = parse_body(AppealIn)
    found = decisions.appeal_sanction(db(), principal(), record_id, body.statement)
    return {"id": found.id, "record_id": record_id, "status": found.status}, 201
