"""/api/v1 endpoints: credit accounts, records, commitments, lists and notices, recalls and
service areas. (Anomalies: :mod:`app.anomalies.api`; ratings, reviews, complaints:
:mod:`app.feedback.api`.)"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, request

from app import authz
from app.credit import exchange, lists, operations
from app.csvcells import csv_text
from app.errors import ApiError
from app.parties.models import Courier
from app.schemas import (
    RecallIn,
    RecordIn,
)
from app.web import (
    current_principal,
    db,
    parse_body,
    principal,
    query_int,
    query_text,
    query_time,
    read_json,
    settings,
    unit_of_work,
)
from tracecore import credit
from tracecore.access import Role
from tracecore.errors import NotFound, ValidationError

bp = Blueprint("credit", __name__)
PARTY_TYPES = ("merchant", "logistics_company", "courier")


def rfc3339(moment: datetime | None) -> str | None:
    """A stored (UTC) time as RFC 3339, or None."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _party_type(value: str) -> str:
    if value not in PARTY_TYPES:
        raise NotFound(f"unknown party type {value[:32]}")
    return value


def account_json(acc: operations.Account, *, whole: bool = False) -> dict:
    """The account as the public sees it (final records only), or ``whole`` as the party
    and regulators do: with the risk indicator of undecided findings, the decisions not
    final yet (the party's notice: what, and until when it may respond) and every record."""
    out = {
        "party": {"type": acc.party_type, "id": acc.party_id},
        "score": acc.standing.score,
        "grade": acc.standing.grade,
        "list": acc.standing.list,
        "commitment": None
        if acc.commitment is None
        else {
            "text_version": acc.commitment.text_version,
            "signed_at": rfc3339(acc.commitment.signed_at),
        },
        "records": [
            {
                "id": r.id,
                "kind": r.kind,
                "points": r.points,
                "reason": r.reason,
                "anomaly_id": r.anomaly_id,
                "effective_at": rfc3339(r.effective_at),
                "public_from": rfc3339(r.public_from),
                **({"standing": r.standing} if whole else {}),
            }
            for r in acc.records
            if whole or r.standing == "public"
        ],
    }
    if whole:
        out["risk"] = {
            "open_findings": acc.risk.open,
            "points": acc.risk.points,
            "by_severity": acc.risk.by_severity,
        }
        out["pending_decisions"] = [
            {
                "kind": p.kind,
                "anomaly_id": p.anomaly_id,
                "record_id": p.record_id,
                "points": p.points,
                "reason": p.reason,
                "decided_at": rfc3339(p.decided_at),
                "final_at": rfc3339(p.final_at),
                "held_by_appeal": p.held,
            }
            for p in acc.pending
        ]
        out["outlook"] = {
            "score": acc.outlook.score,
            "grade": acc.outlook.grade,
            "list": acc.outlook.list,
        }
    return out


@bp.get("/credit/<party_type>/<id:party_id>")
def credit_account(party_type: str, party_id: int):
    """Public: score, grade, list status, commitment and the final records behind them. The
    party itself and regulators of its region (with a bearer token) see the whole account."""
    party_type = _party_type(party_type)
    party = operations.get_party(db(), party_type, party_id)
    acc = operations.account(db(), party_type, party_id, settings().policy)
    whole = operations.may_see_account(
        db(), current_principal(), party_type, party_id, party.region_code
    )
    return account_json(acc, whole=whole)


@bp.post("/credit/<party_type>/<id:party_id>/records")
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
        settings().response_period,
    )
    return {
        "id": record.id,
        "kind": record.kind,
        "points": record.points,
        "public_from": rfc3339(record.public_from),
    }, 201


@bp.get("/credit/commitment-text")
def commitment_text():
    return {"version": operations.COMMITMENT_VERSION, "text": operations.COMMITMENT_TEXT}


@bp.post("/credit/<party_type>/<id:party_id>/commitment")
@unit_of_work
def sign_commitment(party_type: str, party_id: int):
    signed = operations.sign_commitment(
        db(), principal(), _party_type(party_type), party_id, settings().policy
    )
    return {"text_version": signed.text_version, "signed_at": rfc3339(signed.signed_at)}, 201


@bp.get("/credit/lists/<which>")
def credit_list(which: str):
    """The public red (守信红名单) and black (失信黑名单) lists, each party since when."""
    if which not in (credit.RED, credit.BLACK):
        raise NotFound("the lists are red and black")
    return {
        "list": which,
        "items": [
            {
                **operations.public_party(db(), x.account.party_type, x.account.party_id),
                "score": x.account.standing.score,
                "grade": x.account.standing.grade,
                "since": rfc3339(x.since),
                "because": x.because,
            }
            for x in lists.listed(db(), which, settings().policy)
        ],
    }


@bp.get("/credit/notices")
def credit_notices():
    """Public risk notices (风险提示), each dated when its decision became final."""
    return {
        "items": [{**n, "at": rfc3339(n["at"])} for n in lists.notices(db(), settings().policy)]
    }


#: The most exchange items a JSON page holds.
MAX_EXCHANGE_PAGE = 1000


def _exchange(*, paged: bool) -> exchange.Page:
    """The exchange items the query asks for (uscc, since, and for a page after, limit)."""
    viewer = principal()
    return exchange.exchange(
        db(),
        viewer,
        settings().policy,
        uscc=query_text("uscc", 32).strip(),
        since=query_time("since"),
        after=query_text("after", 80) if paged else "",
        limit=query_int("limit", 100, maximum=MAX_EXCHANGE_PAGE) if paged else 2**62,
        platform=settings().ISSUER_NAME,
    )


@bp.get("/credit/exchange")
@unit_of_work
def credit_exchange():
    """Credit information exchange (信用信息共享): confirmed findings, sanctions and list
    changes, public after due process, per USCC (docs/credit-exchange.md), oldest first, a
    page at a time: ``{items, next}``; ``after=next`` reads on."""
    page = _exchange(paged=True)
    return {"items": page.items, "next": page.next}


@bp.get("/credit/exchange.csv")
@unit_of_work
def credit_exchange_csv():
    """The same items as CSV, every one since ``since`` (UTF-8 with BOM for Excel; cells a
    spreadsheet would run as formulas neutralised)."""
    items = _exchange(paged=False).items
    text = csv_text([exchange.FIELDS, *([i[f] for f in exchange.FIELDS] for i in items)], bom=True)
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="credit-exchange.csv"'},
    )


@bp.post("/batches/<id:batch_id>/recall")
@unit_of_work
def recall(batch_id: int):
    """A regulator recalls a batch: from now on its sales raise recalled_sale."""
    body = parse_body(RecallIn)
    batch = operations.recall_batch(db(), principal(), batch_id, body.reason)
    return {
        "id": batch.id,
        "status": batch.status.value,
        "recalled_at": rfc3339(batch.recalled_at),
        "reason": batch.recall_reason,
    }


@bp.put("/couriers/<id:courier_id>/service-area")
@unit_of_work
def set_service_area(courier_id: int):
    """The courier's service area, a GeoJSON Polygon or MultiPolygon (WGS 84)."""
    actor = principal()
    actor.require(Role.ADMIN, Role.REGULATOR, Role.LOGISTICS)
    courier = db().get(Courier, courier_id)
    if courier is None:
        raise NotFound(f"no courier with id {courier_id}")
    authz.require(db(), actor, courier, "this courier")
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send GeoJSON as application/json")
    shape = read_json(request.get_data(), what="the GeoJSON")
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
