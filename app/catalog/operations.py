"""Registering products and batches."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.catalog.models import Batch, Certificate, InspectionResult, Product, ProductCategory
from app.db import point
from app.parties.models import Merchant
from tracecore.access import Principal, Role
from tracecore.errors import Conflict, NotFound, ValidationError
from tracecore.gs1 import normalize_gtin, validate_lot


@dataclass(frozen=True)
class CertificateInput:
    issuer: str
    number: str
    result: InspectionResult
    issued_on: date
    #: SHA-256 of the electronic report, hex.
    report_sha256: str


def register_product(
    session: Session,
    actor: Principal,
    *,
    gtin: str,
    name: str,
    category: ProductCategory,
    merchant_id: int,
) -> Product:
    """A product of ``merchant_id``: by that merchant or an authority over it."""
    actor.require(Role.ADMIN, Role.REGULATOR, Role.MERCHANT)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"no merchant with id {merchant_id}", field="merchant_id")
    authz.require(session, actor, merchant, "this merchant")
    gtin14 = normalize_gtin(gtin)
    if session.scalar(sa.select(Product.id).where(Product.gtin == gtin14)) is not None:
        raise Conflict(f"GTIN {gtin14} is already registered", field="gtin")
    product = Product(gtin=gtin14, name=name, category=category, merchant_id=merchant_id)
    session.add(product)
    session.flush()
    return product


def register_batch(
    session: Session,
    actor: Principal,
    *,
    product_id: int,
    lot: str,
    produced_on: date,
    expires_on: date,
    origin_name: str,
    origin_lat: float,
    origin_lon: float,
    quantity: int,
    certificates: list[CertificateInput] = (),
) -> Batch:
    """A production batch (lot) of a product, with its inspection certificates."""
    actor.require(Role.ADMIN, Role.REGULATOR, Role.MERCHANT)
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"no product with id {product_id}", field="product_id")
    authz.require(session, actor, product, "this product")
    lot = validate_lot(lot)
    if expires_on < produced_on:
        raise ValidationError("expires_on is before produced_on", field="expires_on")
    if quantity <= 0:
        raise ValidationError("quantity must be at least 1", field="quantity")
    duplicate = sa.select(Batch.id).where(Batch.product_id == product_id, Batch.lot == lot)
    if session.scalar(duplicate) is not None:
        raise Conflict(f"lot {lot} of this product is already registered", field="lot")
    batch = Batch(
        product_id=product_id,
        lot=lot,
        produced_on=produced_on,
        expires_on=expires_on,
        origin_name=origin_name,
        origin=point(origin_lat, origin_lon),
        quantity=quantity,
    )
    for i, cert in enumerate(certificates):
        if not re.fullmatch(r"[0-9a-f]{64}", cert.report_sha256):
            raise ValidationError(
                "report_sha256 must be 64 lowercase hex digits",
                field=f"certificates.{i}.report_sha256",
            )
        batch.certificates.append(Certificate(**cert.__dict__))
    session.add(batch)
    session.flush()
    return batch


def report_digest(report: bytes) -> str:
    """The digest recorded for an electronic inspection report."""
    return hashlib.sha256(report).hexdigest()


def get_batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    return batch


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"no product with id {product_id}")
    return product
