"""Every model, imported in one place so the metadata is complete (Alembic, tests)."""

from app.auth.models import ApiToken, Role
from app.catalog.models import (
    Batch,
    BatchStatus,
    Certificate,
    InspectionResult,
    Product,
    ProductCategory,
)
from app.codes.models import CodeState, Issuance, TraceCode
from app.parties.models import Courier, LogisticsCompany, Merchant, MerchantKind, PartyType

__all__ = [
    "ApiToken",
    "Batch",
    "BatchStatus",
    "Certificate",
    "CodeState",
    "Courier",
    "InspectionResult",
    "Issuance",
    "LogisticsCompany",
    "Merchant",
    "MerchantKind",
    "PartyType",
    "Product",
    "ProductCategory",
    "Role",
    "TraceCode",
]
