"""Webhooks (docs/webhooks.md): subscriptions, and their delivery logs."""

from __future__ import annotations

from app import schemas
from app.openapi.common import operation, path_id, query_int


def paths() -> dict:
    return {
        "/webhooks/subscriptions": {
            "post": operation(
                "Subscribe to signed webhooks (docs/webhooks.md): a party to its own parties' "
                "things, an authority to its jurisdiction's, anyone to the public topics (list, "
                "notice, recall); optional scope: a batch or a merchant of yours. The answer "
                "carries the signing secret (whsec_...), shown this once",
                auth="token",
                body=schemas.SubscriptionIn,
                ok=201,
                errors=(404, 409),
            ),
            "get": operation("Your webhook subscriptions", auth="token"),
        },
        "/webhooks/subscriptions/{subscription_id}": {
            "get": operation(
                "A webhook subscription: its state, and why it was disabled",
                auth="token",
                parameters=[path_id("subscription_id")],
            ),
            "delete": operation(
                "Delete a webhook subscription and its delivery log",
                auth="token",
                ok=204,
                produces=(),
                parameters=[path_id("subscription_id")],
                errors=(405,),
            ),
        },
        "/webhooks/subscriptions/{subscription_id}/enable": {
            "post": operation(
                "Enable a disabled subscription again: every message missed meanwhile follows, "
                "in order",
                auth="token",
                parameters=[path_id("subscription_id")],
            )
        },
        "/webhooks/subscriptions/{subscription_id}/deliveries": {
            "get": operation(
                "A subscription's delivery log, newest first ({items, next}): status, response "
                "code, duration, error, attempt",
                auth="token",
                parameters=[
                    path_id("subscription_id"),
                    query_int("before", description="the last id of the page before"),
                    query_int("limit", 1, 200, default=50),
                ],
            )
        },
    }
