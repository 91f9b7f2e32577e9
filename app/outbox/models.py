"""The webhook feed's rows."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

#: Row ids of the feed: one per ingest batch, per decision...
_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class WebhookFeed(Base):
    """One change to tell subscribers of, written by the use case that made it in its own
    transaction (a transactional outbox). Delivered in (xid, id) order: on PostgreSQL
    ``xid`` is the writing transaction's id and a row is delivered only once every
    transaction older than it has ended (so none commits below a cursor later); SQLite
    writes one transaction at a time and stores 0."""

    __tablename__ = "webhook_feed"
    __table_args__ = (sa.Index("ix_webhook_feed_xid_id", "xid", "id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    xid: Mapped[int] = mapped_column(sa.BigInteger)
    #: One of tracecore.webhooks.TOPICS.
    topic: Mapped[str] = mapped_column(sa.String(12))
    #: What happened, e.g. finding.confirmed, list.entered, batch.recalled, events.
    kind: Mapped[str] = mapped_column(sa.String(40))
    #: The party it is about (who may receive it) and its region (which regulators).
    party_type: Mapped[str | None] = mapped_column(sa.String(20))
    party_id: Mapped[int | None]
    region_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: For subscriptions scoped to a batch or a merchant.
    batch_id: Mapped[int | None]
    merchant_id: Mapped[int | None]
    #: The payload's data; for ``events``, the event ids of the ingest batch.
    data: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
