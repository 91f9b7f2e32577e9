"""The credit information exchange (docs/credit-exchange.md): what is public after due
process, per USCC, as JSON pages and as CSV."""

from __future__ import annotations

from app.credit.api import MAX_EXCHANGE_PAGE
from app.credit.exchange import FIELDS as EXCHANGE_FIELDS
from app.credit.exchange import KINDS as EXCHANGE_KINDS
from app.openapi.common import TIME, operation, query_int, query_text

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


def paths() -> dict:
    return {
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
    }
