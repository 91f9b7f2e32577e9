"""One search box for regulators: trace code (serial or Digital Link URI), waybill, batch
(lot or ``batch:ID``), GTIN, merchant or company (name or USCC), courier (name, or the full
mobile or ID number, matched by keyed hash since neither is stored). Results outside the
viewer's jurisdiction are left out."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from flask import url_for
from sqlalchemy.orm import Session

from app.catalog.models import Batch, Product
from app.codes import operations as codes
from app.events.models import Parcel
from app.parties.models import Courier, LogisticsCompany, Merchant
from app.web import settings
from app.workspace.words import label
from tracecore import identity
from tracecore.access import Principal
from tracecore.errors import DomainError
from tracecore.gs1 import normalize_gtin

LIMIT = 25
_BATCH_ID = re.compile(r"batch:(\d{1,9})", re.I)


@dataclass(frozen=True)
class Result:
    kind: str  #: code | parcel | batch | product | merchant | logistics_company | courier
    label: str
    url: str
    detail: str
    #: Where the result belongs, for the jurisdiction check (the merchant's region for
    #: codes and batches).
    region_code: str


def _code(session: Session, q: str) -> list[Result]:
    try:
        code = codes.find_code_by_uri(session, q) if "/01/" in q else codes.find_code(session, q)
    except DomainError:
        return []
    b = code.batch
    return [
        Result(
            "code",
            f"{b.product.name} · {code.serial}",
            url_for("workspace.code_page", serial=code.serial),
            f"{b.product.merchant.name} · 批次 lot {b.lot} · {label('state', code.state.value)}",
            b.product.merchant.region_code,
        )
    ]


def _batches(session: Session, q: str) -> list[Result]:
    match = _BATCH_ID.fullmatch(q)
    where = Batch.id == int(match.group(1)) if match else Batch.lot == q
    return [
        Result(
            "batch",
            f"{b.product.name} · 批次 lot {b.lot}",
            url_for("workspace.batch_page", batch_id=b.id),
            f"#{b.id} · {label('status', b.status.value)} · {b.product.merchant.name}",
            b.product.merchant.region_code,
        )
        for b in session.scalars(sa.select(Batch).where(where).limit(LIMIT))
    ]


def _products(session: Session, q: str) -> list[Result]:
    try:
        gtin = normalize_gtin(q)
    except DomainError:
        return []
    found = []
    for p in session.scalars(sa.select(Product).where(Product.gtin == gtin)):
        for b in session.scalars(sa.select(Batch).where(Batch.product_id == p.id).limit(LIMIT)):
            found.append(
                Result(
                    "batch",
                    f"{p.name} · 批次 lot {b.lot}",
                    url_for("workspace.batch_page", batch_id=b.id),
                    f"GTIN {p.gtin} · {p.merchant.name}",
                    p.merchant.region_code,
                )
            )
    return found


def _parties(session: Session, q: str) -> list[Result]:
    found: list[Result] = []
    like = f"%{q}%"
    for model, kind in ((Merchant, "merchant"), (LogisticsCompany, "logistics_company")):
        for p in session.scalars(
            sa.select(model)
            .where(sa.or_(model.uscc == q.upper(), model.name.like(like)))
            .limit(LIMIT)
        ):
            found.append(
                Result(
                    kind,
                    p.name,
                    url_for("workspace.party_page", party_type=kind, party_id=p.id),
                    p.uscc,
                    p.region_code,
                )
            )
    secret = settings().SECRET_KEY
    digits = q.replace(" ", "")
    courier_where = [Courier.name.like(like)]
    if re.fullmatch(r"1\d{10}", digits):
        courier_where.append(Courier.phone_hash == identity.keyed_hash(secret, digits))
    if re.fullmatch(r"\d{17}[\dXx]", digits):
        courier_where.append(Courier.id_number_hash == identity.keyed_hash(secret, digits.upper()))
    for c in session.scalars(sa.select(Courier).where(sa.or_(*courier_where)).limit(LIMIT)):
        found.append(
            Result(
                "courier",
                c.name,
                url_for("workspace.party_page", party_type="courier", party_id=c.id),
                f"{c.id_number_masked} · {c.phone_masked}",
                c.region_code,
            )
        )
    return found


def logged_term(q: str, results: list[Result]) -> identity.Redacted:
    """The search term as the access log keeps it: mobile and ID numbers masked with their
    keyed hashes; a term that found a courier by name masked likewise (personal data)."""
    secret = settings().SECRET_KEY
    found = identity.redact_identifiers(secret, q)
    if not found.personal and any(r.kind == "courier" and q in r.label for r in results):
        found = identity.redact_name(secret, q)
    return found


def search(session: Session, viewer: Principal, q: str) -> list[Result]:
    """Everything ``q`` may name, most specific first."""
    q = q.strip()
    results: list[Result] = []
    results += _code(session, q)
    parcel = session.get(Parcel, q.upper()) if len(q) <= 40 else None
    if parcel is not None:
        merchant = session.get(Merchant, parcel.merchant_id)
        covered = [
            r for r in (merchant.region_code, parcel.consignee_region_code) if viewer.covers(r)
        ]
        results.append(
            Result(
                "parcel",
                parcel.waybill,
                url_for("workspace.parcel_page", waybill=parcel.waybill),
                f"{merchant.name} · {label('state', parcel.state)}",
                covered[0] if covered else merchant.region_code,
            )
        )
    results += _batches(session, q)
    results += _products(session, q)
    if len(q) >= 2:
        results += _parties(session, q)
    return [r for r in results if viewer.covers(r.region_code)]
