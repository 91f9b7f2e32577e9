"""Registering parties: validate with the domain, add, flush; the caller commits."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.db import point
from app.parties.models import Courier, LogisticsCompany, Merchant, MerchantKind
from tracecore import identity
from tracecore.access import Principal, Role
from tracecore.errors import Conflict, NotFound
from tracecore.regions import validate_region_code
from tracecore.uscc import validate_uscc


def _unique_uscc(session: Session, model: type, uscc: str) -> str:
    uscc = validate_uscc(uscc)
    if session.scalar(sa.select(model.id).where(model.uscc == uscc)) is not None:
        raise Conflict(f"a party with USCC {uscc} is already registered", field="uscc")
    return uscc


def register_merchant(
    session: Session,
    actor: Principal,
    *,
    name: str,
    uscc: str,
    kind: MerchantKind,
    region_code: str,
    lat: float | None = None,
    lon: float | None = None,
) -> Merchant:
    """A merchant (platform, shop, individual seller or producer), by an authority whose
    jurisdiction covers its region."""
    region_code = validate_region_code(region_code)
    authz.require_new_party(actor, region_code, "the merchant")
    merchant = Merchant(
        name=name,
        uscc=_unique_uscc(session, Merchant, uscc),
        kind=kind,
        region_code=region_code,
        location=point(lat, lon),
    )
    session.add(merchant)
    session.flush()
    return merchant


def register_logistics_company(
    session: Session,
    actor: Principal,
    *,
    name: str,
    uscc: str,
    region_code: str,
    lat: float | None = None,
    lon: float | None = None,
) -> LogisticsCompany:
    """A logistics company, by an authority whose jurisdiction covers its region."""
    region_code = validate_region_code(region_code)
    authz.require_new_party(actor, region_code, "the logistics company")
    company = LogisticsCompany(
        name=name,
        uscc=_unique_uscc(session, LogisticsCompany, uscc),
        region_code=region_code,
        location=point(lat, lon),
    )
    session.add(company)
    session.flush()
    return company


def register_courier(
    session: Session,
    actor: Principal,
    secret: str,
    *,
    name: str,
    id_number: str,
    phone: str,
    company_id: int,
    region_code: str,
    lat: float | None = None,
    lon: float | None = None,
) -> Courier:
    """A courier under the real name, bound to a company: by that company, or by an
    authority whose jurisdiction covers both the company's region and the courier's."""
    actor.require(Role.ADMIN, Role.REGULATOR, Role.LOGISTICS)
    company = session.get(LogisticsCompany, company_id)
    if company is None:
        raise NotFound(f"no logistics company with id {company_id}", field="company_id")
    authz.require(session, actor, company, "this logistics company")
    region_code = validate_region_code(region_code)
    if actor.is_authority:
        authz.require_new_party(actor, region_code, "the courier")
    id_number = identity.validate_resident_id(id_number)
    phone = identity.validate_mobile(phone)
    id_hash = identity.keyed_hash(secret, id_number)
    if session.scalar(sa.select(Courier.id).where(Courier.id_number_hash == id_hash)):
        raise Conflict("a courier with this ID number is already registered", field="id_number")
    courier = Courier(
        name=name,
        id_number_hash=id_hash,
        id_number_masked=identity.mask_id_number(id_number),
        phone_hash=identity.keyed_hash(secret, phone),
        phone_masked=identity.mask_phone(phone),
        company_id=company_id,
        region_code=region_code,
        location=point(lat, lon),
    )
    session.add(courier)
    session.flush()
    return courier


def get_party(session: Session, model: type, party_id: int):
    """A party by id; 404 naming the kind of party when there is none."""
    found = session.get(model, party_id)
    if found is None:
        kind = {
            "merchants": "merchant",
            "logistics_companies": "logistics company",
            "couriers": "courier",
        }[model.__tablename__]
        raise NotFound(f"no {kind} with id {party_id}")
    return found
