"""Every model, imported in one place so the metadata is complete (Alembic, tests)."""

from app.accesslog.models import AccessEntry
from app.auth.models import ApiToken, User
from app.catalog.models import (
    Batch,
    BatchStatus,
    Certificate,
    InspectionResult,
    Product,
    ProductCategory,
)
from app.codes.models import CodeState, Issuance, TraceCode
from app.consumer.models import CheckRollup, Verification
from app.counterfeit.models import CounterfeitCheck, CounterfeitReport
from app.credit.models import Anomaly, Appeal, AuditEntry, Commitment, CreditRecord
from app.epcis.models import CaptureJob, EpcisEventId
from app.events.models import (
    CapturedEvent,
    CapturedEventEpc,
    Device,
    DeviceKind,
    Event,
    Parcel,
    ParcelItem,
    ParkedEvent,
    RejectedEvent,
    RejectionTally,
    SequenceGap,
)
from app.feedback.models import Complaint, DeliveryRating, Review
from app.hooks.models import WebhookDelivery, WebhookSubscription
from app.outbox.models import WebhookFeed
from app.parties.models import Courier, LogisticsCompany, Merchant, MerchantKind, PartyType
from tracecore.access import Role

__all__ = [
    "AccessEntry",
    "Anomaly",
    "ApiToken",
    "Appeal",
    "AuditEntry",
    "Batch",
    "BatchStatus",
    "CaptureJob",
    "CapturedEvent",
    "CapturedEventEpc",
    "Certificate",
    "CheckRollup",
    "CodeState",
    "Commitment",
    "Complaint",
    "CounterfeitCheck",
    "CounterfeitReport",
    "Courier",
    "CreditRecord",
    "DeliveryRating",
    "Device",
    "DeviceKind",
    "EpcisEventId",
    "Event",
    "InspectionResult",
    "Issuance",
    "LogisticsCompany",
    "Merchant",
    "MerchantKind",
    "Parcel",
    "ParcelItem",
    "ParkedEvent",
    "PartyType",
    "Product",
    "ProductCategory",
    "RejectedEvent",
    "RejectionTally",
    "Review",
    "Role",
    "SequenceGap",
    "TraceCode",
    "User",
    "Verification",
    "WebhookDelivery",
    "WebhookFeed",
    "WebhookSubscription",
]
