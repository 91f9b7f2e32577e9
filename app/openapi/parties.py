"""Merchants, logistics companies and couriers (app.parties)."""

from __future__ import annotations

from app import schemas
from app.openapi.common import operation, path_id, public_read


def paths() -> dict:
    return {
        "/merchants": {
            "post": operation(
                "Register a merchant", auth="token", body=schemas.MerchantIn, ok=201, errors=(409,)
            )
        },
        "/merchants/{merchant_id}": public_read("A merchant", path_id("merchant_id")),
        "/logistics-companies": {
            "post": operation(
                "Register a logistics company",
                auth="token",
                body=schemas.LogisticsCompanyIn,
                ok=201,
                errors=(409,),
            )
        },
        "/logistics-companies/{company_id}": public_read(
            "A logistics company", path_id("company_id")
        ),
        "/couriers": {
            "post": operation(
                "Register a courier (real name)",
                auth="token",
                body=schemas.CourierIn,
                ok=201,
                errors=(404, 409),
            )
        },
        "/couriers/{courier_id}": {
            "get": operation(
                "A courier (authorities and the courier's company)",
                auth="token",
                parameters=[path_id("courier_id")],
            )
        },
        "/couriers/{courier_id}/service-area": {
            "put": operation(
                "Set the courier's service area (GeoJSON Polygon/MultiPolygon, WGS 84)",
                auth="token",
                body={"type": "object", "description": "A GeoJSON Polygon or MultiPolygon"},
                parameters=[path_id("courier_id")],
                limited=True,
            )
        },
    }
