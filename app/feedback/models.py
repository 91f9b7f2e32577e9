"""Feedback as stored: delivery ratings, reviews and complaints."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class DeliveryRating(Base):
    """A rating of a parcel's courier and company, once per parcel per rater."""

    __tablename__ = "delivery_ratings"
    __table_args__ = (sa.UniqueConstraint("waybill", "rater", name="uq_delivery_ratings_rater"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    waybill: Mapped[str] = mapped_column(sa.ForeignKey("parcels.waybill"))
    #: consignee | merchant
    rater: Mapped[str] = mapped_column(sa.String(10))
    courier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("couriers.id"), index=True)
    logistics_company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("logistics_companies.id"), index=True
    )
    courier_stars: Mapped[int]
    company_stars: Mapped[int]
    #: late | damaged | rude | not_to_door | careful | on_time
    tags: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Review(Base):
    """A consumer's review of a product unit, by its code."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.ForeignKey("trace_codes.serial"), index=True)
    rating: Mapped[int]
    text: Mapped[str] = mapped_column(sa.String(1000), default="")
    #: Keyed hash of the client's address (IPv4, IPv6 /64), for rate limiting; never the
    #: address itself, nor the client's cookie (``app.web.client_source``).
    client_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: Keyed hash of the client's network (IPv4 /24, IPv6 /48); NULL before revision 0010.
    network: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Complaint(Base):
    """A consumer's complaint by a unit's code, naming the party responsible through custody."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.ForeignKey("trace_codes.serial"), index=True)
    #: counterfeit | quality | delivery | privacy | other
    category: Mapped[str] = mapped_column(sa.String(12))
    text: Mapped[str] = mapped_column(sa.String(2000))
    #: Personal data: shown to regulators only.
    contact: Mapped[str | None] = mapped_column(sa.String(200))
    party_type: Mapped[str] = mapped_column(sa.String(20))
    party_id: Mapped[int]
    anomaly_id: Mapped[int | None] = mapped_column(sa.ForeignKey("anomalies.id"))
    #: Keyed hashes of the client's address and network, as for reviews.
    client_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    network: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
