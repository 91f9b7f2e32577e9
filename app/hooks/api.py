"""/api/v1/webhooks: subscriptions to signed webhooks, and their delivery logs
(docs/webhooks.md). Delivery itself is the ``hooks deliver`` process, never the web app."""

from __future__ import annotations

from flask import Blueprint

from app.hooks import operations
from app.hooks.models import WebhookDelivery, WebhookSubscription
from app.outbox.feed import rfc3339
from app.schemas import SubscriptionIn
from app.web import db, parse_body, principal, query_int, settings, unit_of_work

bp = Blueprint("hooks", __name__)

#: The most delivery-log entries one page holds.
MAX_DELIVERIES_PAGE = 200


def subscription_json(sub: WebhookSubscription) -> dict:
    """A subscription as its subscriber reads it (never its secret)."""
    return {
        "id": sub.id,
        "url": sub.url,
        "topics": sub.topics,
        "scope": {"batch_id": sub.batch_id, "merchant_id": sub.merchant_id},
        "state": sub.state,
        "disabled_reason": sub.disabled_reason,
        "disabled_at": rfc3339(sub.disabled_at),
        "failures": sub.failures,
        "next_attempt_at": rfc3339(sub.next_attempt_at),
        "created_at": rfc3339(sub.created_at),
    }


def delivery_json(d: WebhookDelivery) -> dict:
    return {
        "id": d.id,
        "webhook_id": d.webhook_id,
        "attempt": d.attempt,
        "status": d.status,
        "response_code": d.response_code,
        "duration_ms": d.duration_ms,
        "error": d.error,
        "at": rfc3339(d.at),
    }


@bp.post("/webhooks/subscriptions")
@unit_of_work
def subscribe():
    """Subscribe: the answer carries the signing secret, shown this once."""
    body = parse_body(SubscriptionIn)
    config = settings()
    done = operations.subscribe(
        db(),
        principal(),
        body.url,
        body.topics,
        config.SECRET_KEY,
        production=config.TRACE_ENV == "production",
        batch_id=body.batch_id,
        merchant_id=body.merchant_id,
    )
    return {**subscription_json(done.subscription), "secret": done.secret}, 201


@bp.get("/webhooks/subscriptions")
def subscriptions():
    """The caller's subscriptions."""
    return {"items": [subscription_json(s) for s in operations.subscriptions(db(), principal())]}


@bp.get("/webhooks/subscriptions/<id:subscription_id>")
def subscription(subscription_id: int):
    return subscription_json(operations.get(db(), principal(), subscription_id))


@bp.delete("/webhooks/subscriptions/<id:subscription_id>")
@unit_of_work
def delete(subscription_id: int):
    operations.delete(db(), principal(), subscription_id)
    return "", 204


@bp.post("/webhooks/subscriptions/<id:subscription_id>/enable")
@unit_of_work
def enable(subscription_id: int):
    """Enable a disabled subscription: every message missed meanwhile follows, in order."""
    return subscription_json(operations.enable(db(), principal(), subscription_id))


@bp.get("/webhooks/subscriptions/<id:subscription_id>/deliveries")
def deliveries(subscription_id: int):
    """The delivery log, newest first: ``?before=<id>&limit=``; ``next`` is the ``before``
    of the following page."""
    limit = query_int("limit", 50, maximum=MAX_DELIVERIES_PAGE)
    found = operations.deliveries(db(), principal(), subscription_id, query_int("before"), limit)
    return {
        "items": [delivery_json(d) for d in found],
        "next": found[-1].id if len(found) == limit else None,
    }
