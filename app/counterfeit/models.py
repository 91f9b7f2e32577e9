"""Counterfeits as consumers meet them: checks of codes that were never issued (or of a
genuine serial under another product's link), and consumers' reports of fakes."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

#: never_issued: no such serial; forged_link: a genuine serial under another GTIN or lot.
COUNTERFEIT_KINDS = ("never_issued", "forged_link")


class CounterfeitCheck(Base):
    """Checks of one fake code from one network on one day, summed up in one row.

    A check of an issued code is a :class:`~app.consumer.models.Verification`, tied to the
    code; a fake has no code row to tie to, so its checks are kept here, bounded: one row per
    code, network and day (later checks add to ``checks``), and a network records at most
    ``COUNTERFEIT_CHECKS_PER_DAY`` codes a day (a flood of made-up codes from one network
    costs a bounded number of rows)."""

    __tablename__ = "counterfeit_checks"
    __table_args__ = (
        # One row per code, network and day: later checks add to ``checks``.
        sa.UniqueConstraint("code", "network", "day", name="uq_counterfeit_checks_once_a_day"),
        sa.Index("ix_counterfeit_checks_network_day", "network", "day"),
        sa.Index("ix_counterfeit_checks_gtin_last_at", "gtin", "last_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The code as typed or scanned (the serial of a link), control characters removed.
    code: Mapped[str] = mapped_column(sa.String(64))
    #: never_issued | forged_link
    kind: Mapped[str] = mapped_column(sa.String(12))
    #: GTIN-14 and lot of the Digital Link, when the check came by one.
    gtin: Mapped[str | None] = mapped_column(sa.String(14))
    lot: Mapped[str | None] = mapped_column(sa.String(20))
    #: The county-level district, when the consumer shared it (in a report of the code).
    district_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: Keyed hashes of the first client's address and of the network (``app.web.client_source``).
    client_hash: Mapped[str] = mapped_column(sa.String(64))
    network: Mapped[str] = mapped_column(sa.String(64))
    #: The UTC day of these checks.
    day: Mapped[date]
    checks: Mapped[int] = mapped_column(default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CounterfeitReport(Base):
    """A consumer's report of a fake, from the never-issued or forged-link answer (or the
    API): what they bought, where, and optionally a description, a contact and a district."""

    __tablename__ = "counterfeit_reports"
    __table_args__ = (sa.Index("ix_counterfeit_reports_gtin_created_at", "gtin", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    #: never_issued | forged_link
    kind: Mapped[str] = mapped_column(sa.String(12))
    gtin: Mapped[str | None] = mapped_column(sa.String(14))
    lot: Mapped[str | None] = mapped_column(sa.String(20))
    #: What was bought, in the consumer's words.
    what: Mapped[str] = mapped_column(sa.String(200))
    #: Where it was bought (a shop, a market stall, an online store).
    where_bought: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    #: Personal data: shown to regulators only, each read logged; masked everywhere else.
    contact: Mapped[str | None] = mapped_column(sa.String(200))
    district_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: Keyed hashes of the client's address and network (rate limits; never the address).
    client_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    network: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
