"""The scanned unit: its serial or Digital Link resolved to the unit, and its batch's public
details, kept per process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from app import serialize
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.credit.operations import forget_public_accounts
from config import Config
from tracecore.errors import NotFound, ValidationError
from tracecore.gs1 import digital_link_uri, parse_digital_link, validate_serial
from tracecore.serials import normalize_serial


@dataclass(frozen=True)
class Unit:
    """What changes about a unit from one scan to the next (its batch's details are kept)."""

    serial: str
    state: str
    batch_id: int
    merchant_id: int
    batch_status: str
    recalled_at: datetime | None
    recall_reason: str | None
    expires_on: date


# Statements built once: building and keying them again on every scan cost more than running.
_UNIT = (
    sa.select(
        TraceCode.serial,
        TraceCode.state,
        TraceCode.batch_id,
        Product.merchant_id,
        Batch.status,
        Batch.recalled_at,
        Batch.recall_reason,
        Batch.expires_on,
    )
    .join(Batch, TraceCode.batch_id == Batch.id)
    .join(Product, Batch.product_id == Product.id)
    .where(TraceCode.serial == sa.bindparam("serial"))
)


def find_unit(session: Session, serial: str) -> Unit:
    """The unit behind a serial as typed (:func:`~tracecore.serials.normalize_serial`);
    NotFound (a likely counterfeit) when it was never issued."""
    serial = validate_serial(normalize_serial(serial))
    row = session.execute(_UNIT, {"serial": serial}).one_or_none()
    if row is None:
        raise NotFound("no trace code with this serial; it was never issued", field="serial")
    return Unit(
        row.serial,
        row.state.value,
        row.batch_id,
        row.merchant_id,
        row.status.value,
        row.recalled_at,
        row.recall_reason,
        row.expires_on,
    )


def link_parts(uri: str) -> tuple[str, str, str | None]:
    """Serial (normalised as typed serials are), GTIN-14 and lot (None when the link has
    none) of a unit's Digital Link."""
    link = parse_digital_link(uri)
    if link.serial is None:
        raise ValidationError("the link has no serial (AI 21)", field="uri")
    return normalize_serial(link.serial), link.gtin14, link.lot


def find_unit_by_link(session: Session, uri: str, config: Config) -> Unit:
    """The unit behind a Digital Link: the GTIN and lot in it must be the unit's own (a real
    serial under another product's GTIN is a forged link)."""
    serial, gtin14, lot = link_parts(uri)
    unit = find_unit(session, serial)
    part = batch_part(session, unit.batch_id, config)
    if part["product"]["gtin"] != gtin14 or (lot is not None and part["batch"]["lot"] != lot):
        raise NotFound("this serial was not issued for the product and lot in the link")
    return unit


#: batch id -> (valid until, monotonic clock; the batch's public details).
_BATCH_PARTS: dict[int, tuple[float, dict]] = {}


def kept_batch_part(batch_id: int) -> dict | None:
    """The batch's public details when this process still keeps them, else None."""
    cached = _BATCH_PARTS.get(batch_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


def batch_part(session: Session, batch_id: int, config: Config) -> dict:
    """What the public may know of a unit's batch, product and merchant, kept per process for
    ``PUBLIC_CREDIT_MAX_AGE_S`` (status and recall are read fresh with the unit)."""
    kept = kept_batch_part(batch_id)
    if kept is not None:
        return kept
    now = time.monotonic()
    batch = (
        session.scalars(
            sa.select(Batch)
            .where(Batch.id == batch_id)
            .options(
                joinedload(Batch.product).joinedload(Product.merchant),
                joinedload(Batch.certificates),
            )
        )
        .unique()
        .one()
    )
    part = {
        "product": serialize.product(batch.product),
        "batch": serialize.batch(batch),
        "merchant": serialize.merchant(batch.product.merchant),
        "uri_prefix": digital_link_uri(
            config.RESOLVER_HOST, batch.product.gtin, batch.lot, None, scheme=config.RESOLVER_SCHEME
        )
        + "/21/",
    }
    if len(_BATCH_PARTS) > 10_000:
        _BATCH_PARTS.clear()
    _BATCH_PARTS[batch_id] = (now + config.PUBLIC_CREDIT_MAX_AGE_S, part)
    return part


def forget_public_parts() -> None:
    """Drop what this process keeps for public answers (tests; after a bulk correction)."""
    _BATCH_PARTS.clear()
    forget_public_accounts()
