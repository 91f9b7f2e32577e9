"""Products (GTIN), their production batches (lots) and the batches' inspection certificates."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Point, UTCDateTime, enum_column, utcnow
from app.parties.models import Merchant


class ProductCategory(enum.StrEnum):
    """Key-product categories named by the e-commerce integrity policies (重点产品)."""

    EDIBLE_AGRICULTURAL = "edible_agricultural"  #: 食用农产品
    FOOD = "food"  #: 食品
    DRUG = "drug"  #: 药品
    AGRICULTURAL_INPUT = "agricultural_input"  #: 农业投入品
    SPECIAL_EQUIPMENT = "special_equipment"  #: 特种设备
    HAZARDOUS_CHEMICAL = "hazardous_chemical"  #: 危险化学品
    RARE_EARTH = "rare_earth"  #: 稀土
    OTHER = "other"


class BatchStatus(enum.StrEnum):
    ACTIVE = "active"
    RECALLED = "recalled"


class InspectionResult(enum.StrEnum):
    PASSED = "passed"  #: 合格
    FAILED = "failed"  #: 不合格


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Always the 14-digit form, check digit verified.
    gtin: Mapped[str] = mapped_column(sa.String(14), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    category: Mapped[ProductCategory] = mapped_column(
        enum_column(ProductCategory, "product_category")
    )
    merchant_id: Mapped[int] = mapped_column(sa.ForeignKey("merchants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    merchant: Mapped[Merchant] = relationship()


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "lot", name="uq_batches_product_id_lot"),
        sa.CheckConstraint("expires_on >= produced_on", name="expiry_after_production"),
        sa.CheckConstraint("quantity > 0", name="positive_quantity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"), index=True)
    #: Lot number, GS1 AI (10): up to 20 characters of the GS1 AI character set.
    lot: Mapped[str] = mapped_column(sa.String(20))
    produced_on: Mapped[date]
    expires_on: Mapped[date]
    origin_name: Mapped[str] = mapped_column(sa.String(200))
    origin = mapped_column(Point(), nullable=False)
    #: Units produced; issuance may not exceed it unless the caller insists.
    quantity: Mapped[int]
    #: Trace codes issued so far for this batch (kept with the issuance, atomically).
    issued_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[BatchStatus] = mapped_column(
        enum_column(BatchStatus, "batch_status"), default=BatchStatus.ACTIVE
    )
    #: When and why a regulator recalled the batch (status recalled).
    recalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recall_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    product: Mapped[Product] = relationship()
    certificates: Mapped[list[Certificate]] = relationship(
        back_populates="batch", order_by="Certificate.id", cascade="all, delete-orphan"
    )


class Certificate(Base):
    """An inspection certificate (检验检疫证明) of a batch."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id"), index=True)
    issuer: Mapped[str] = mapped_column(sa.String(200))
    number: Mapped[str] = mapped_column(sa.String(64))
    result: Mapped[InspectionResult] = mapped_column(
        enum_column(InspectionResult, "inspection_result")
    )
    issued_on: Mapped[date]
    #: SHA-256 (hex) of the electronic inspection report, so a copy can be checked.
    report_sha256: Mapped[str] = mapped_column(sa.String(64))

    batch: Mapped[Batch] = relationship(back_populates="certificates")
