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
from app.events.models import (
    Device,
    DeviceKind,
    Event,
    Parcel,
    ParcelItem,
    RejectedEvent,
    SequenceGap,
)
from app.parties.models import Courier, LogisticsCompany, Merchant, MerchantKind, PartyType

__all__ = [
    "ApiToken",
    "Batch",
    "BatchStatus",
    "Certificate",
    "CodeState",
    "Courier",
    "Device",
    "DeviceKind",
    "Event",
    "InspectionResult",
    "Issuance",
    "LogisticsCompany",
    "Merchant",
    "MerchantKind",
    "Parcel",
    "ParcelItem",
    "PartyType",
    "Product",
    "ProductCategory",
    "RejectedEvent",
    "Role",
    "SequenceGap",
    "TraceCode",
]
