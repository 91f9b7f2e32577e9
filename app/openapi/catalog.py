"""Products and batches (app.catalog), with what the GS1 resolver links to: a batch's
certificates, and the recall status of a product or a batch."""

from __future__ import annotations

from app import schemas
from app.openapi.common import operation, path_id, public_read


def paths() -> dict:
    return {
        "/products": {
            "post": operation(
                "Register a product",
                auth="token",
                body=schemas.ProductIn,
                ok=201,
                errors=(404, 409),
            )
        },
        "/products/{product_id}": public_read("A product", path_id("product_id")),
        "/products/{product_id}/recall-status": public_read(
            "Which batches of a product are recalled, when and why (the GS1 resolver's "
            "gs1:recallStatus of a GTIN)",
            path_id("product_id"),
            limited=True,
        ),
        "/batches": {
            "post": operation(
                "Register a batch", auth="token", body=schemas.BatchIn, ok=201, errors=(404, 409)
            )
        },
        "/batches/{batch_id}": public_read("A batch", path_id("batch_id")),
        "/batches/{batch_id}/certificates": public_read(
            "A batch's inspection certificates (the GS1 resolver's gs1:certificationInfo)",
            path_id("batch_id"),
            limited=True,
        ),
        "/batches/{batch_id}/recall-status": public_read(
            "Whether a batch is recalled, since when and why, also in plain words (the GS1 "
            "resolver's gs1:recallStatus)",
            path_id("batch_id"),
            limited=True,
        ),
    }
