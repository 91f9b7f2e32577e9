"""/api/v1/events: the MQTT protocol over HTTP, for devices that cannot speak MQTT. The same
ingest run as the MQTT worker's, one message per request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, request

from app.errors import ApiError
from app.ingest.run import Inbound, Limits, ingest
from app.web import db, settings, unit_of_work

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
        [Inbound(device_id[:64], payload, datetime.now(UTC))],
        limits=limits(),
    )
    return {
        "acks": [a.to_json() for a in result.acks[0]],
        "commands": [c for _, c in result.commands],
    }
