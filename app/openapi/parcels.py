"""Parcels, by their waybill: a parcel's history in the couriers' status models
(docs/courier-status.md), and the shipping merchant's rating."""

from __future__ import annotations

from app import schemas
from app.openapi.common import WAYBILL, operation

#: A parcel event's or state's codes in the couriers' status models (tracecore.courier_status).
COURIER_CODES = {
    "kuaidi100": {
        "type": "object",
        "required": ["state", "name"],
        "properties": {
            "state": {"type": "string", "pattern": "^[0-9]{1,2}$"},
            "name": {"type": "string"},
            "sub_state": {"type": "string", "pattern": "^[0-9]{3,4}$"},
            "sub_name": {"type": "string"},
        },
    },
    "aftership": {
        "type": "object",
        "required": ["tag", "subtag", "subtag_message"],
        "properties": {
            "tag": {"type": "string"},
            "subtag": {"type": "string", "pattern": "^[A-Za-z]+_[0-9]{3}$"},
            "subtag_message": {"type": "string"},
        },
    },
}
PARCEL_HISTORY = {
    "type": "object",
    "required": ["waybill", "state", "kuaidi100", "aftership", "events"],
    "properties": {
        "waybill": {"type": "string"},
        "state": {"type": "string"},
        **COURIER_CODES,
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event_id", "type", "time", "kuaidi100", "aftership"],
                "properties": {"type": {"type": "string"}, **COURIER_CODES},
            },
        },
    },
}


def paths() -> dict:
    return {
        "/parcels/{waybill}/history": {
            "get": operation(
                "A parcel's history: its state and every event, each with its Kuaidi100 state "
                "and AfterShip tag/subtag (docs/courier-status.md)",
                auth="token",
                parameters=[WAYBILL],
                answer=PARCEL_HISTORY,
            )
        },
        "/parcels/{waybill}/rating": {
            "post": operation(
                "The shipping merchant rates courier and company",
                auth="token",
                body=schemas.DeliveryRatingIn,
                ok=201,
                parameters=[WAYBILL],
                errors=(409,),
                limited=True,
            )
        },
    }
