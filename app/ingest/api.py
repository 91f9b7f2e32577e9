"""/api/v1/events: the MQTT protocol over HTTP, for devices that cannot speak MQTT. The same
ingest run as the MQTT worker's, one message per request.

Anyone can post here: a request is authenticated only by its events' signatures. So the
requests that authenticate nothing (no event of them passed a registered device's signature:
an unknown device, a bad signature, an unreadable body) are limited per client address,
``UNAUTHENTICATED_EVENTS_RATE_LIMIT`` (app/__init__.py applies :func:`unauthenticated` as
the limit's ``deduct_when``); what they send is tallied, not kept one row each
(app/events/rejections.py). A device whose events verify is never counted. Over MQTT the
broker authenticates devices (devices/mosquitto/), so no such limit is needed there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, g, request

from app.errors import ApiError
from app.ingest.run import Inbound, Limits, ingest
from app.web import client_address, db, settings, unit_of_work

bp = Blueprint("ingest", __name__)


def limits() -> Limits:
    cfg = settings()
    return Limits(
        timedelta(seconds=cfg.EVENT_MAX_SKEW_S),
        timedelta(days=cfg.EVENT_MAX_AGE_DAYS),
        rules=cfg.ANOMALY_RULES == "on",
        thresholds=cfg.thresholds,
        policy=cfg.policy,
    )


@bp.post("/events")
@unit_of_work
def post_events():
    """The MQTT protocol over HTTP, for devices that cannot speak MQTT: the device id in the
    ``X-Device-Id`` header (or ``device_id`` in the body), each event signed as over MQTT.
    Answers ``{"acks": [...], "commands": [...]}`` exactly as MQTT would."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the events as application/json")
    payload = request.get_data(cache=True)
    device_id = request.headers.get("X-Device-Id", "").strip()
    if not device_id:
        try:
            body = request.get_json(silent=True)
            device_id = str(body.get("device_id", "")) if isinstance(body, dict) else ""
        except Exception:
            device_id = ""
    if not device_id:
        raise ApiError(
            422,
            "validation_failed",
            "name the device in the X-Device-Id header",
            field="X-Device-Id",
        )
    result = ingest(
        db(),
        settings().SECRET_KEY,
        [Inbound(device_id[:64], payload, datetime.now(UTC), client_address())],
        limits=limits(),
    )
    g.events_authenticated = result.authenticated[0]
    return {
        "acks": [a.to_json() for a in result.acks[0]],
        "commands": [c for _, c in result.commands],
    }


def unauthenticated(response: Response) -> bool:
    """Does this answer count against the client's limit of unauthenticated requests? Yes
    unless an event of its message passed a registered device's signature (an error answer
    before the events were read counts too)."""
    return not g.get("events_authenticated", False)
