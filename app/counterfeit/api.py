"""/api/v1 endpoints of counterfeits: a consumer's report of a fake (public, rate-limited),
and the counterfeit map for regulators."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, request

from app.counterfeit import operations as counterfeit
from app.credit.api import rfc3339
from app.schemas import CounterfeitReportIn
from app.web import client_source, db, parse_body, principal, settings, unit_of_work

bp = Blueprint("counterfeit", __name__)


@bp.post("/counterfeit-reports")
@unit_of_work
def file_report():
    """A consumer's report of a fake (public, rate-limited per address and network). The
    contact is personal data: stored for regulators, never returned."""
    body = parse_body(CounterfeitReportIn)
    seen = counterfeit.refuse_genuine(counterfeit.sighting_of(db(), body.code))
    report = counterfeit.file_report(
        db(),
        seen,
        body.what,
        body.where_bought,
        body.description,
        body.contact,
        counterfeit.shared_place(body.lat, body.lon),
        counterfeit.Source(*client_source("counterfeit")),
        settings(),
        datetime.now(UTC),
    )
    return {
        "id": report.id,
        "code": report.code,
        "kind": report.kind,
        "gtin": report.gtin,
        "lot": report.lot,
        "district_code": report.district_code,
        "created_at": rfc3339(report.created_at),
    }, 201


@bp.get("/counterfeit-map")
def counterfeit_map():
    """Where fakes are checked and reported (regulators inside their jurisdiction, admins):
    by district and by product; ``?gtin=&merchant_id=&days=``. Contacts are masked here."""
    f = counterfeit.MapFilter.from_args(request.args)
    found = counterfeit.counterfeit_map(db(), principal(), f, datetime.now(UTC))
    return {
        "days": f.days,
        "districts": [
            {"district_code": code, **counts} for code, counts in sorted(found.by_district.items())
        ],
        "unplaced": found.unplaced,
        "products": found.products,
        "reports": [
            {
                "id": r.id,
                "code": r.code,
                "kind": r.kind,
                "gtin": r.gtin,
                "what": r.what,
                "where_bought": r.where_bought,
                "district_code": r.district_code,
                "contact": counterfeit.mask_contact(r.contact),
                "created_at": rfc3339(r.created_at),
            }
            for r in found.reports
        ],
    }
