"""Webhook subscriptions and the delivery log (the feed: :mod:`app.outbox.models`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

#: Row ids of the delivery log: one per attempt.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class WebhookSubscription(Base):
    """A party's or an authority's subscription: where to POST which topics, and how far
    delivery has got (the cursor: the last feed row delivered or passed over)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    #: Some of tracecore.webhooks.TOPICS.
    topics: Mapped[list] = mapped_column(sa.JSON)
    #: Optional scope: only this batch's, or this merchant's, things.
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("batches.id"))
    merchant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("merchants.id"))
    #: Who subscribed, as their token said: what they may receive is judged by this.
    role: Mapped[str] = mapped_column(sa.String(16))
    party_id: Mapped[int | None]
    #: A regulator's region-code prefixes, comma-separated (empty: nationwide).
    jurisdiction: Mapped[str] = mapped_column(sa.String(200), default="")
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_tokens.id"))
    #: Random; the signing secret is HMAC(SECRET_KEY, salt), never stored.
    salt: Mapped[str] = mapped_column(sa.String(32))
    #: active | disabled
    state: Mapped[str] = mapped_column(sa.String(8), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(300))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last feed row delivered or passed over, as (xid, id): the feed's delivery order.
    cursor_xid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    cursor_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Failed attempts in a row, since when, and when to try again.
    failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The deliverer process working on it, until when (a lease: another takes over after).
    leased_by: Mapped[str | None] = mapped_column(sa.String(32))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One attempt to deliver one feed row to one subscription."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_subscription_id", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_subscriptions.id"))
    #: The ``webhook-id`` header: the same for every attempt of the same message.
    webhook_id: Mapped[str] = mapped_column(sa.String(40))
    feed_id: Mapped[int] = mapped_column(sa.BigInteger)
    #: 1 for the first attempt of this message, 2 for its first retry...
    attempt: Mapped[int]
    #: delivered | failed
    status: Mapped[str] = mapped_column(sa.String(10))
    response_code: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(sa.String(300))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
