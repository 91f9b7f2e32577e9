"""Credit (app.credit): a party's account, its records and commitment, the red and black
lists, the credit exchange (app.openapi.credit_exchange) and the public risk notices."""

from __future__ import annotations

from app import schemas
from app.openapi import credit_exchange
from app.openapi.common import PARTY_TYPE, operation, path_id


def paths() -> dict:
    return {
        "/credit/{party_type}/{party_id}": {
            "get": operation(
                "Credit account: score, grade, list, commitment and the final records "
                "(public); with the party's or a regulator's token also the risk indicator, "
                "the decisions not final yet with their final dates, the outlook and every "
                "record",
                auth="public",
                parameters=[PARTY_TYPE, path_id("party_id")],
                limited=True,
            )
        },
        "/credit/{party_type}/{party_id}/records": {
            "post": operation(
                "Sanction or commendation (regulator)",
                auth="token",
                body=schemas.RecordIn,
                ok=201,
                parameters=[PARTY_TYPE, path_id("party_id")],
                limited=True,
            )
        },
        "/credit/{party_type}/{party_id}/commitment": {
            "post": operation(
                "Sign the credit commitment (the party)",
                auth="token",
                ok=201,
                parameters=[PARTY_TYPE, path_id("party_id")],
                limited=True,
            )
        },
        "/credit/commitment-text": {
            "get": operation("The standard commitment text", auth="public", limited=True)
        },
        "/credit/lists/{which}": {
            "get": operation(
                "The red or black list, each party with since when and why",
                auth="public",
                parameters=[
                    {
                        "name": "which",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["red", "black"]},
                    }
                ],
                limited=True,
            )
        },
        **credit_exchange.paths(),
        "/credit/notices": {
            "get": operation(
                "Public risk notices, each dated when it became public", auth="public", limited=True
            )
        },
    }
