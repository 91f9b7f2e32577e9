"""Parties: the merchants, logistics companies and couriers that hold goods and answer for them."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Point, UTCDateTime, enum_column, utcnow


class MerchantKind(enum.StrEnum):
    PLATFORM = "platform"  #: e-commerce platform (电商平台)
    SHOP = "shop"  #: shop on a platform or offline (网店/门店)
    INDIVIDUAL = "individual"  #: individual seller (个人卖家)
    PRODUCER = "producer"  #: producer or manufacturer (生产者)


class PartyType(enum.StrEnum):
    MERCHANT = "merchant"
    LOGISTICS_COMPANY = "logistics_company"
    COURIER = "courier"


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: Unified social credit code (统一社会信用代码, GB 32100), check character verified.
    uscc: Mapped[str] = mapped_column(sa.String(18), unique=True)
    kind: Mapped[MerchantKind] = mapped_column(enum_column(MerchantKind, "merchant_kind"))
    #: GB/T 2260 administrative region code of the registered address.
    region_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    location = mapped_column(Point(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogisticsCompany(Base):
    __tablename__ = "logistics_companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    uscc: Mapped[str] = mapped_column(sa.String(18), unique=True)
    region_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    location = mapped_column(Point(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    couriers: Mapped[list[Courier]] = relationship(back_populates="company")


class Courier(Base):
    """A courier registered under the real name (实名) and bound to one logistics company.

    The resident ID number and the phone are never stored in clear: a keyed hash lets a
    regulator match a known number, and a masked form is what anyone is shown.
    """

    __tablename__ = "couriers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    #: HMAC-SHA256 (keyed with SECRET_KEY) of the resident ID number, hex.
    id_number_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: e.g. 320402********1234
    id_number_masked: Mapped[str] = mapped_column(sa.String(18))
    #: HMAC-SHA256 of the phone number, hex.
    phone_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: e.g. 138****5678
    phone_masked: Mapped[str] = mapped_column(sa.String(11))
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("logistics_companies.id"), index=True)
    #: Where the courier may work (GeoJSON Polygon or MultiPolygon, WGS 84); scans outside
    #: it are out_of_area anomalies. Null: no area set, no check.
    service_area = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=True
    )
    region_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    location = mapped_column(Point(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company: Mapped[LogisticsCompany] = relationship(back_populates="couriers")


#: The model of each kind of party that credit records and anomalies name.
PARTY_MODELS = {"merchant": Merchant, "logistics_company": LogisticsCompany, "courier": Courier}
