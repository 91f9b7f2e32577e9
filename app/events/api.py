"""/api/v1 endpoints: the device registry, histories, rejected events. (Events over HTTP:
:mod:`app.ingest.api`.)"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint

from app import authz
from app.accesslog.operations import log_access
from app.codes import operations as codes
from app.codes.api import code_answer
from app.db import commit_without_flush_wait
from app.events import history, registry
from app.events.models import RejectedEvent, RejectionTally
from app.schemas import DeviceIn
from app.web import db, parse_body, principal, query_int, query_text, settings, unit_of_work
from devices import protocol
from tracecore.access import Role

bp = Blueprint("events", __name__)
#: The most units one page of a batch's forward trace holds (``limit``; 100 by default).
MAX_TRACE_PAGE = 1000
#: The most rejected events one answer holds.
MAX_REJECTED = 200


def device_json(device, secret: str | None = None) -> dict:
    out = {
        "device_id": device.id,
        "kind": device.kind.value,
        "owner_type": device.owner_type,
        "owner_id": device.owner_id,
        "disabled": device.disabled_at is not None,
        "topics": {
            "events": protocol.topic_events(device.id),
            "acks": protocol.topic_acks(device.id),
            "commands": protocol.topic_commands(device.id),
        },
    }
    if secret is not None:
        out["secret"] = secret
    return out


@bp.post("/devices")
@unit_of_work
def create_device():
    """Register a device; the secret is in this answer only."""
    body = parse_body(DeviceIn)
    device, secret = registry.register_device(
        db(), principal(), settings().SECRET_KEY, **body.model_dump()
    )
    return device_json(device, secret), 201


@bp.get("/devices/<device_id>")
def get_device(device_id: str):
    return device_json(registry.get_device(db(), principal(), device_id))


@bp.post("/devices/<device_id>/disable")
@unit_of_work
def disable_device(device_id: str):
    return device_json(registry.disable_device(db(), principal(), device_id))


@bp.get("/codes/<serial>/history")
@unit_of_work
def code_history(serial: str):
    viewer = principal()
    code = codes.find_code(db(), serial)
    answer = history.code_history(db(), viewer, code.serial, code_answer(code))
    # Authorities see exact delivery points (next to a consumer's home): that is logged.
    log_access(db(), viewer, "view", "code", code.serial, personal_data=viewer.is_authority)
    if not viewer.is_authority:  # a read of personal data is logged durably
        commit_without_flush_wait(db())
    return answer


@bp.get("/parcels/<waybill>/history")
@unit_of_work
def parcel_history(waybill: str):
    viewer = principal()
    answer = history.parcel_history(db(), viewer, waybill)
    log_access(db(), viewer, "view", "parcel", answer["waybill"], personal_data=viewer.is_authority)
    if not viewer.is_authority:  # a read of personal data is logged durably
        commit_without_flush_wait(db())
    return answer


@bp.get("/batches/<id:batch_id>/trace")
@unit_of_work
def batch_trace(batch_id: int):
    limit = query_int("limit", 100, maximum=MAX_TRACE_PAGE)
    after = query_text("after", 16)
    viewer = principal()
    answer = history.batch_trace(db(), viewer, batch_id, after=after, limit=limit)
    # As for a unit's history: authorities see exact delivery points, and that is logged.
    log_access(db(), viewer, "view", "batch", batch_id, personal_data=viewer.is_authority)
    return answer


@bp.get("/rejected-events")
@unit_of_work
def rejected_events():
    """What devices sent that was not stored, and why (authorities only, each those of its
    jurisdiction: :func:`app.authz.rejected_events_visible`), newest first; filtered by
    device, reason, or the serial or waybill an event names (indexed). The payloads are kept
    without personal data (devices/redaction.py), but exact points remain: the read is
    logged."""
    viewer = principal()
    viewer.require(Role.ADMIN, Role.REGULATOR)
    device_id, reason = query_text("device_id", 64), query_text("reason", 32)
    log_access(db(), viewer, "view", "rejected_events", device_id or "*", personal_data=True)
    query = (
        sa.select(RejectedEvent)
        .where(authz.rejected_events_visible(viewer))
        .order_by(RejectedEvent.id.desc())
        .limit(MAX_REJECTED)
    )
    if device_id:
        query = query.where(RejectedEvent.device_id == device_id)
    if reason:
        query = query.where(RejectedEvent.reason == reason)
    for name, length in (("serial", 20), ("waybill", 32)):
        value = query_text(name, length)
        if value:
            query = query.where(getattr(RejectedEvent, name) == value)
    return {
        "items": [
            {
                "id": r.id,
                "device_id": r.device_id,
                "event_id": r.event_id,
                "reason": r.reason,
                "message": r.message,
                "serial": r.serial,
                "waybill": r.waybill,
                "payload": r.payload,
                "received_at": _time(r.received_at),
            }
            for r in db().scalars(query)
        ]
    }


@bp.get("/rejected-events/tallies")
@unit_of_work
def rejection_tallies():
    """What unregistered senders sent (and registered devices beyond their hourly cap of
    rows), counted per hour, client address, claimed device id and reason; the most recently
    seen first (authorities only). Client addresses may identify a person: the read is
    logged."""
    viewer = principal()
    viewer.require(Role.ADMIN, Role.REGULATOR)
    log_access(
        db(),
        viewer,
        "view",
        "rejection_tallies",
        query_text("device_id", 64) or "*",
        personal_data=True,
    )
    query = (
        sa.select(RejectionTally)
        .where(authz.rejected_events_visible(viewer, RejectionTally.device_id))
        .order_by(RejectionTally.last_seen_at.desc())
        .limit(200)
    )
    for name, length in (("device_id", 64), ("reason", 32), ("address", 64)):
        value = query_text(name, length)
        if value:
            query = query.where(getattr(RejectionTally, name) == value)
    return {"items": [tally_json(t) for t in db().scalars(query)]}


def tally_json(t: RejectionTally) -> dict:
    return {
        "window_start": _time(t.window_start),
        "address": t.address,
        "device_id": t.device_id,
        "reason": t.reason,
        "count": t.count,
        "first_seen_at": _time(t.first_seen_at),
        "last_seen_at": _time(t.last_seen_at),
        "message": t.message,
        "sample": t.sample,
    }


def _time(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")
