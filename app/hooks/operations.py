"""Webhook subscriptions, as their subscribers manage them: subscribe (the secret shown
once), list, read, delete, enable again, and read the delivery log. Each use case flushes;
the request commits.

Who may subscribe: a merchant or a logistics company (its token) to its own parties'
things, an authority (admin, regulator) to those of its jurisdiction; public topics (lists,
notices, recalls) to anyone's. A scope (a batch, a merchant) must be one the subscriber may
act on. The signing secret is derived from the service's key and a random salt, never
stored (docs/decisions/0015-webhook-secrets-derived.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import authz
from app.catalog.models import Batch
from app.hooks.models import WebhookDelivery, WebhookSubscription
from app.outbox import feed
from app.parties.models import Merchant
from tracecore import webhooks
from tracecore.access import Principal, Role, parse_jurisdiction
from tracecore.errors import Conflict, NotFound, ValidationError

#: The most subscriptions one party (or one authority's office) may have.
MAX_PER_SUBSCRIBER = 20


@dataclass(frozen=True)
class Subscribed:
    subscription: WebhookSubscription
    #: ``whsec_…``: shown this once.
    secret: str


def subscriber(sub: WebhookSubscription) -> Principal:
    """Who the subscription delivers to, as the principal whose rights decide what it gets."""
    return Principal(
        Role(sub.role),
        sub.party_id,
        token_id=sub.token_id,
        jurisdiction=parse_jurisdiction(sub.jurisdiction),
    )


def signing_key(service_key: str, sub: WebhookSubscription) -> bytes:
    """The subscription's signing key (derived, never stored)."""
    return webhooks.secret_bytes(service_key, sub.salt)


def subscribe(
    session: Session,
    actor: Principal,
    url: str,
    topics: list[str],
    service_key: str,
    *,
    production: bool,
    batch_id: int | None = None,
    merchant_id: int | None = None,
) -> Subscribed:
    """A new subscription, delivering what happens from now on."""
    url = webhooks.check_url(url.strip(), production)
    wanted = webhooks.check_topics(topics)
    if batch_id is not None and merchant_id is not None:
        raise ValidationError("scope a subscription to a batch or to a merchant, not both")
    if batch_id is not None:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"no batch with id {batch_id}", field="batch_id")
        authz.require(session, actor, batch, "this batch")
    if merchant_id is not None:
        merchant = session.get(Merchant, merchant_id)
        if merchant is None:
            raise NotFound(f"no merchant with id {merchant_id}", field="merchant_id")
        authz.require(session, actor, merchant, "this merchant")
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookSubscription)
        .where(authz.subscriptions_visible(actor))
    )
    if count >= MAX_PER_SUBSCRIBER:
        raise Conflict(f"at most {MAX_PER_SUBSCRIBER} subscriptions; delete one first")
    cursor_xid, cursor_id = feed.end(session)
    sub = WebhookSubscription(
        url=url,
        topics=list(wanted),
        batch_id=batch_id,
        merchant_id=merchant_id,
        role=actor.role.value,
        party_id=actor.party_id,
        jurisdiction=",".join(actor.jurisdiction),
        token_id=actor.token_id,
        salt=secrets.token_hex(16),
        state="active",
        cursor_xid=cursor_xid,
        cursor_id=cursor_id,
        failures=0,
        created_at=datetime.now(UTC),
    )
    session.add(sub)
    session.flush()
    return Subscribed(sub, webhooks.secret_text(signing_key(service_key, sub)))


def subscriptions(session: Session, actor: Principal) -> list[WebhookSubscription]:
    """The subscriptions the caller manages, oldest first."""
    return list(
        session.scalars(
            sa.select(WebhookSubscription)
            .where(authz.subscriptions_visible(actor))
            .order_by(WebhookSubscription.id)
        )
    )


def get(session: Session, actor: Principal, subscription_id: int) -> WebhookSubscription:
    """One subscription of the caller's; 404 when none, 403 when another's."""
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"no subscription with id {subscription_id}")
    authz.require_subscription(actor, sub)
    return sub


def delete(session: Session, actor: Principal, subscription_id: int) -> None:
    """Delete a subscription and its delivery log."""
    sub = get(session, actor, subscription_id)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id))
    session.delete(sub)
    session.flush()


def enable(session: Session, actor: Principal, subscription_id: int) -> WebhookSubscription:
    """Enable a disabled subscription again: delivery resumes where it stopped (every
    message missed meanwhile, in order), at once."""
    sub = get(session, actor, subscription_id)
    sub.state, sub.disabled_reason, sub.disabled_at = "active", None, None
    sub.failures, sub.failing_since, sub.next_attempt_at = 0, None, None
    session.flush()
    return sub


def deliveries(
    session: Session,
    actor: Principal,
    subscription_id: int,
    before: int | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """The subscription's delivery log, newest first, a page at a time (``before``: the
    last id of the page before)."""
    sub = get(session, actor, subscription_id)
    query = sa.select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))
