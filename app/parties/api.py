"""/api/v1 endpoints for merchants, logistics companies and couriers."""

from __future__ import annotations

from flask import Blueprint

from app import authz, serialize
from app.accesslog.operations import log_access
from app.parties import operations
from app.parties.models import Courier, LogisticsCompany, Merchant
from app.schemas import CourierIn, LogisticsCompanyIn, MerchantIn
from app.web import db, parse_body, principal, settings, unit_of_work
from tracecore.access import Role

bp = Blueprint("parties", __name__)


@bp.post("/merchants")
@unit_of_work
def create_merchant():
    body = parse_body(MerchantIn)
    merchant = operations.register_merchant(db(), principal(), **body.model_dump())
    return serialize.merchant(merchant), 201


@bp.get("/merchants/<id:merchant_id>")
def get_merchant(merchant_id: int):
    """Public: a merchant's licence data is meant to be shown (亮照亮标)."""
    return serialize.merchant(operations.get_party(db(), Merchant, merchant_id))


@bp.post("/logistics-companies")
@unit_of_work
def create_logistics_company():
    body = parse_body(LogisticsCompanyIn)
    company = operations.register_logistics_company(db(), principal(), **body.model_dump())
    return serialize.logistics_company(company), 201


@bp.get("/logistics-companies/<id:company_id>")
def get_logistics_company(company_id: int):
    return serialize.logistics_company(operations.get_party(db(), LogisticsCompany, company_id))


@bp.post("/couriers")
@unit_of_work
def create_courier():
    body = parse_body(CourierIn)
    courier = operations.register_courier(
        db(), principal(), settings().SECRET_KEY, **body.model_dump()
    )
    return serialize.courier(courier, full_name=True), 201


@bp.get("/couriers/<id:courier_id>")
@unit_of_work
def get_courier(courier_id: int):
    """Authorities and the courier's own company only; the name in full only for them (a
    read of personal data: logged)."""
    actor = principal()
    actor.require(Role.ADMIN, Role.REGULATOR, Role.LOGISTICS)
    courier = operations.get_party(db(), Courier, courier_id)
    authz.require(db(), actor, courier, "this courier")
    log_access(db(), actor, "view", "courier", courier_id, personal_data=True)
    return serialize.courier(courier, full_name=True)
