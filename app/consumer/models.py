"""Consumers' checks of trace codes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Point, UTCDateTime, utcnow


class Verification(Base):
    """A consumer's check of a code on the scan page (a ``verified`` scan).

    The client is known only by a keyed hash of a random cookie (or, without cookies, of its
    address and browser); the place only to about a kilometre, and only when the consumer
    chose to share it. Many clients checking one code in many districts is how a copied code
    shows itself.
    """

    __tablename__ = "verifications"
    __table_args__ = (sa.Index("ix_verifications_serial_at", "serial", "verified_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.String(16), sa.ForeignKey("trace_codes.serial"))
    client_hash: Mapped[str] = mapped_column(sa.String(64))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The county-level district of the shared place, when there is one.
    district_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: Rounded to two decimals (about a kilometre) before it is stored.
    location = mapped_column(Point(), nullable=True)
