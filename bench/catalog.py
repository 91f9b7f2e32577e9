"""The one merchant, product and batch the benchmarks issue their codes from."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from sqlalchemy.orm import Session

from app.catalog import operations as catalog
from app.catalog.models import Batch, Product, ProductCategory
from app.parties import operations as parties
from app.parties.models import Merchant, MerchantKind
from tracecore.access import OPERATOR


class BenchBatch(NamedTuple):
    merchant: Merchant
    product: Product
    batch: Batch


def bench_batch(s: Session, quantity: int) -> BenchBatch:
    """A shop in Changzhou (320411), its product and a batch of ``quantity`` units that
    expires after every date the benchmarks use; added to ``s``, not committed."""
    merchant = parties.register_merchant(
        s,
        OPERATOR,
        name="bench",
        uscc="914403001922038216",
        kind=MerchantKind.SHOP,
        region_code="320411",
        lat=31.8,
        lon=119.97,
    )
    product = catalog.register_product(
        s,
        OPERATOR,
        gtin="4006381333931",
        name="bench",
        category=ProductCategory.FOOD,
        merchant_id=merchant.id,
    )
    batch = catalog.register_batch(
        s,
        OPERATOR,
        product_id=product.id,
        lot="BENCH1",
        produced_on=date(2026, 1, 1),
        expires_on=date(2027, 12, 31),
        origin_name="bench",
        origin_lat=31.8,
        origin_lon=119.9,
        quantity=quantity,
    )
    return BenchBatch(merchant, product, batch)
