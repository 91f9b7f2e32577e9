"""Request bodies of the JSON API, validated with pydantic (types, ranges, no unknown fields).

Domain rules (check digits, character sets, ownership) are checked by the use cases, so the
CLI and the API give the same answers.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.catalog.models import InspectionResult, ProductCategory
from app.events.models import DeviceKind
from app.parties.models import MerchantKind

Name = Annotated[str, Field(min_length=1, max_length=200)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Uscc = Annotated[str, Field(min_length=1, max_length=32)]
RegionCode = Annotated[str, Field(min_length=1, max_length=12)]
#: A row's id: 1 to 2**31 - 1, the databases' integer key (app.web.MAX_ID).
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
#: The most codes one request may issue; the service may allow fewer (MAX_CODES_PER_REQUEST,
#: which the contract states: app.openapi).
MAX_CODES = 1_000_000


def _no_control_characters(value):
    """Text anywhere in a body (nested lists and objects too) holds no NUL or other C0
    control character but tab and newline: PostgreSQL refuses NUL in text, and none is
    meaningful in a name, a review or a reason."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("text may not contain control characters (NUL and the like)")
    elif isinstance(value, list | tuple):
        for item in value:
            _no_control_characters(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_control_characters(key)
            _no_control_characters(item)
    return value


#: C0 control characters but tab, newline and carriage return, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value):
        return _no_control_characters(value)


class MerchantIn(Body):
    name: Name
    uscc: Uscc
    kind: MerchantKind
    region_code: RegionCode
    lat: Lat | None = None
    lon: Lon | None = None


class LogisticsCompanyIn(Body):
    name: Name
    uscc: Uscc
    region_code: RegionCode
    lat: Lat | None = None
    lon: Lon | None = None


class CourierIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    phone: Annotated[str, Field(min_length=1, max_length=32)]
    company_id: Id
    region_code: RegionCode
    lat: Lat | None = None
    lon: Lon | None = None


class ProductIn(Body):
    gtin: Annotated[str, Field(min_length=1, max_length=32)]
    name: Name
    category: ProductCategory
    merchant_id: Id


class OriginIn(Body):
    name: Name
    lat: Lat
    lon: Lon


class CertificateIn(Body):
    issuer: Name
    number: Annotated[str, Field(min_length=1, max_length=64)]
    result: InspectionResult
    issued_on: date
    report_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class BatchIn(Body):
    product_id: Id
    lot: Annotated[str, Field(min_length=1, max_length=64)]
    produced_on: date
    expires_on: date
    origin: OriginIn
    quantity: Annotated[int, Field(ge=1, le=1_000_000_000)]
    certificates: Annotated[list[CertificateIn], Field(max_length=50)] = []


class IssueCodesIn(Body):
    count: Annotated[int, Field(ge=1, le=MAX_CODES)]
    #: Issue even when the batch's issued total would pass its quantity.
    allow_over_quantity: bool = False


class DeviceIn(Body):
    kind: DeviceKind
    owner_type: Literal["merchant", "courier"]
    owner_id: Id


class DecisionIn(Body):
    #: confirm | dismiss for anomalies; uphold | reject for appeals
    decision: Literal["confirm", "dismiss", "uphold", "reject"]
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class AnomalySelection(Body):
    """The anomaly queue's filters, for a bulk decision (only open findings are taken)."""

    type: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    severity: Literal["minor", "major", "serious"] | None = None
    party_type: Literal["merchant", "logistics_company", "courier"] | None = None
    party_id: RowId | None = None
    #: A region-code prefix of the responsible party: 2, 4 or 6 digits.
    region_code: Annotated[str, Field(pattern=r"^(\d{2}|\d{4}|\d{6})$")] | None = None
    #: Detected at or after (RFC 3339 with an offset).
    since: AwareDatetime | None = None
    #: Detected before.
    until: AwareDatetime | None = None


class BulkDecisionIn(Body):
    """Confirm or dismiss many findings with one reason: ``ids`` or ``filter``, not both."""

    decision: Literal["confirm", "dismiss"]
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    #: At most app.anomalies.decisions.BULK_CAP (5,000), which the use case checks.
    ids: Annotated[list[RowId], Field(min_length=1)] | None = None
    filter: AnomalySelection | None = None
    #: Decide nothing; answer how many would be decided.
    preview: bool = False


class AppealIn(Body):
    statement: Annotated[str, Field(min_length=1, max_length=2000)]


class RecordIn(Body):
    kind: Literal["sanction", "commendation"]
    reason: Annotated[str, Field(min_length=1, max_length=300)]


class RecallIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class SubscriptionIn(Body):
    """A webhook subscription: where, which topics (tracecore.webhooks.TOPICS), and an
    optional scope (one batch, or one merchant)."""

    url: Annotated[str, Field(min_length=1, max_length=500)]
    topics: Annotated[
        list[Literal["decision", "list", "notice", "recall", "finding", "events", "exchange"]],
        Field(min_length=1, max_length=7),
    ]
    batch_id: Id | None = None
    merchant_id: Id | None = None


Stars = Annotated[int, Field(ge=1, le=5)]


class DeliveryRatingIn(Body):
    courier: Stars
    company: Stars
    tags: Annotated[list[str], Field(max_length=6)] = []


class ReviewIn(Body):
    rating: Stars
    text: Annotated[str, Field(max_length=1000)] = ""


class CounterfeitReportIn(Body):
    """A consumer's report of a fake (``POST /api/v1/counterfeit-reports``)."""

    #: The code as printed on the unit, or the Digital Link its QR code holds.
    code: Annotated[str, Field(min_length=1, max_length=300)]
    #: What was bought, and where (a shop, a market, an online store).
    what: Annotated[str, Field(min_length=1, max_length=200)]
    where_bought: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    #: Personal data: shown to regulators only.
    contact: Annotated[str, Field(max_length=200)] | None = None
    #: Where the consumer is, only if they chose to share it: kept as its district alone.
    lat: Lat | None = None
    lon: Lon | None = None


class ComplaintIn(Body):
    category: Literal["counterfeit", "quality", "delivery", "privacy", "other"]
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    #: Personal data: shown to regulators only.
    contact: Annotated[str, Field(max_length=200)] | None = None
