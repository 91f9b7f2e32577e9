"""Findings (app.anomalies): the queue, one finding, a regulator's decisions, and the appeals
against a finding or a sanction."""

from __future__ import annotations

from app import schemas
from app.anomalies.api import MAX_PAGE
from app.openapi.common import TIME, operation, path_id, query_int, query_text


def paths() -> dict:
    return {
        "/anomalies": {
            "get": operation(
                "Anomalies, newest first, a page at a time ({items, next})",
                auth="token",
                parameters=[
                    query_text("type"),
                    query_text("status"),
                    query_text("severity"),
                    query_text("party_type"),
                    query_int("party_id"),
                    {**query_text("since"), "schema": TIME},
                    {**query_text("until"), "schema": TIME},
                    query_text("region_code", description="a region-code prefix"),
                    query_text("within", description="a GeoJSON Polygon or MultiPolygon"),
                    query_int("before", description="the last id of the page before"),
                    query_int("limit", 1, MAX_PAGE, default=50),
                ],
                limited=True,
            )
        },
        "/anomalies/{anomaly_id}": {
            "get": operation(
                "An anomaly", auth="token", parameters=[path_id("anomaly_id")], limited=True
            )
        },
        "/anomalies/{anomaly_id}/decision": {
            "post": operation(
                "Confirm or dismiss (regulator)",
                auth="token",
                body=schemas.DecisionIn,
                parameters=[path_id("anomaly_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/anomalies/decisions": {
            "post": operation(
                "Confirm or dismiss many findings with one reason (regulator): `ids`, or a "
                "`filter` of the queue's (type, severity, party, region, detected since/until) "
                "over the open findings of your jurisdiction. At most 5,000 a request: a filter "
                "selecting more decides the oldest 5,000 and answers `remaining`; send it "
                "again. `preview` decides nothing. Each finding is audited on its own; an id "
                "outside your jurisdiction refuses the request. Answers {selected, decided, "
                "skipped, remaining, cap}",
                auth="token",
                body=schemas.BulkDecisionIn,
                errors=(404,),
                limited=True,
            )
        },
        "/credit/records/{record_id}/appeal": {
            "post": operation(
                "Appeal a sanction (the party sanctioned); within the response period it holds "
                "the sanction until decided",
                auth="token",
                body=schemas.AppealIn,
                ok=201,
                parameters=[path_id("record_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/anomalies/{anomaly_id}/appeal": {
            "post": operation(
                "Appeal (the party named)",
                auth="token",
                body=schemas.AppealIn,
                ok=201,
                parameters=[path_id("anomaly_id")],
                errors=(409,),
                limited=True,
            )
        },
        "/appeals/{appeal_id}/decision": {
            "post": operation(
                "Uphold or reject an appeal (regulator)",
                auth="token",
                body=schemas.DecisionIn,
                parameters=[path_id("appeal_id")],
                errors=(409,),
                limited=True,
            )
        },
    }
