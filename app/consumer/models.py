"""Consumers' checks of trace codes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Point, UTCDateTime, utcnow


class Verification(Base):
    """A consumer's check of a code on the scan page (a ``verified`` scan).

    The client is known only by a keyed hash of its network (an IPv4 /24, an IPv6 /48: its
    *source*; never its cookie or browser string, which a client chooses); the place only to
    about a kilometre, only when the consumer chose to share it, and once per source and
    code. Many sources checking one code in many districts is how a copied code shows
    itself.
    """

    __tablename__ = "verifications"
    __table_args__ = (
        sa.Index("ix_verifications_serial_at", "serial", "verified_at"),
        # One first check per client and code: a scan learns whether its client is new to
        # the code from its own insert (ON CONFLICT), not from reading the earlier checks.
        sa.Index(
            "uq_verifications_first_check",
            "serial",
            "client_hash",
            unique=True,
            postgresql_where=sa.text("new_client"),
            sqlite_where=sa.text("new_client"),
        ),
        # The checks a source placed, by source: a place counts once per source and code,
        # and for a bounded number of codes a day (app.consumer.checks.share_place).
        sa.Index(
            "ix_verifications_placed_by_source",
            "client_hash",
            "verified_at",
            postgresql_where=sa.text("district_code IS NOT NULL"),
            sqlite_where=sa.text("district_code IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.String(16), sa.ForeignKey("trace_codes.serial"))
    #: Keyed hash of the client's network (its source: ``app.consumer.pages``).
    client_hash: Mapped[str] = mapped_column(sa.String(64))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The county-level district of the shared place, when there is one.
    district_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: Rounded to two decimals (about a kilometre) before it is stored.
    location = mapped_column(Point(), nullable=True)
    #: This source's first check of this code: the distinct clients are these checks.
    new_client: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class CheckRollup(Base):
    """A code's checks before :attr:`upto`, summed up (PostgreSQL's scan).

    A scan reads this row and counts only the checks since :attr:`upto`, so a code checked
    a hundred thousand times (a label copied onto a run of fakes) costs a scan about what a
    genuine code costs. The row is brought forward by a scan that finds many checks since
    it (``app.consumer.scan_pg.roll_up_checks``), never to less than a minute ago: a
    check is committed within its request, well inside that minute."""

    __tablename__ = "check_rollups"

    serial: Mapped[str] = mapped_column(
        sa.String(16), sa.ForeignKey("trace_codes.serial"), primary_key=True
    )
    #: The checks summed here are those with ``verified_at`` before this.
    upto: Mapped[datetime] = mapped_column(UTCDateTime)
    checks: Mapped[int]
    #: Distinct clients among those checks.
    clients: Mapped[int]
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The distinct districts of those checks with a shared place.
    districts: Mapped[list[str]] = mapped_column(
        sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    )
