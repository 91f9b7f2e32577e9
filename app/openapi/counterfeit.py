"""Counterfeits: a consumer's report of a fake, and the regulators' map of them."""

from __future__ import annotations

from app import schemas
from app.openapi.common import operation, query_int, query_text


def paths() -> dict:
    return {
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
    }
