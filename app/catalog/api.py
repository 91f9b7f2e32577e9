"""/api/v1 endpoints for products and batches."""

from __future__ import annotations

from flask import Blueprint

from app import serialize
from app.catalog import operations
from app.schemas import BatchIn, ProductIn
from app.web import db, parse_body, principal, unit_of_work

bp = Blueprint("catalog", __name__)


@bp.post("/products")
@unit_of_work
def create_product():
    body = parse_body(ProductIn)
    product = operations.register_product(db(), principal(), **body.model_dump())
    return serialize.product(product), 201


@bp.get("/products/<id:product_id>")
def get_product(product_id: int):
    return serialize.product(operations.get_product(db(), product_id))


@bp.post("/batches")
@unit_of_work
def create_batch():
    body = parse_body(BatchIn)
    batch = operations.register_batch(
        db(),
        principal(),
        product_id=body.product_id,
        lot=body.lot,
        produced_on=body.produced_on,
        expires_on=body.expires_on,
        origin_name=body.origin.name,
        origin_lat=body.origin.lat,
        origin_lon=body.origin.lon,
        quantity=body.quantity,
        certificates=[operations.CertificateInput(**c.model_dump()) for c in body.certificates],
    )
    return serialize.batch(batch), 201


@bp.get("/batches/<id:batch_id>")
def get_batch(batch_id: int):
    return serialize.batch(operations.get_batch(db(), batch_id))
