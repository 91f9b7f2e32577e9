"""Anomalies found in the trace, and the appeals of the parties they name."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Point, UTCDateTime, utcnow


class Anomaly(Base):
    """A finding of one rule about one subject, against one responsible party.

    Starts ``open`` (its credit record provisional); a regulator confirms or dismisses it.
    One ongoing anomaly per rule, subject and party: the unique key deduplicates findings.
    """

    __tablename__ = "anomalies"
    __table_args__ = (
        sa.UniqueConstraint(
            "type", "subject_type", "subject", "party_type", "party_id", name="uq_anomalies_finding"
        ),
        sa.Index("ix_anomalies_party", "party_type", "party_id"),
        # A code's or parcel's anomalies (its history, the consumer's scan); the unique key
        # above leads with the type and cannot serve them.
        sa.Index("ix_anomalies_subject", "subject_type", "subject"),
        sa.Index("ix_anomalies_status_detected_at", "status", "detected_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(32), index=True)
    severity: Mapped[str] = mapped_column(sa.String(8))
    #: open | confirmed | dismissed
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    #: code | waybill | batch | merchant
    subject_type: Mapped[str] = mapped_column(sa.String(12))
    subject: Mapped[str] = mapped_column(sa.String(64))
    party_type: Mapped[str] = mapped_column(sa.String(20))
    party_id: Mapped[int]
    #: GB/T 2260 code of the responsible party, for regulators' jurisdiction.
    region_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    #: Where it happened (the evidence's place), for map and spatial filters.
    location = mapped_column(Point(), nullable=True)
    evidence: Mapped[dict] = mapped_column(sa.JSON)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Appeal(Base):
    """The responsible party's appeal of an anomaly, with its statement; a regulator
    upholds it (the anomaly is dismissed) or rejects it."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    anomaly_id: Mapped[int] = mapped_column(sa.ForeignKey("anomalies.id"), index=True)
    statement: Mapped[str] = mapped_column(sa.String(2000))
    #: pending | upheld | rejected
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
