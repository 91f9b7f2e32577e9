"""Parked events: a courier's scan that overtook the shop's packing of its parcel.

Devices send on their own connections, in no order between them, so a handheld's pickup
can arrive before the shop's ``packed``. Such an event is kept, signature checked, and
applied when the packing arrives (:func:`take_parked`, run by the ingest batch that packs
the waybill); the sweep rejects it if that never comes (:func:`expire_parked`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.events.models import ParkedEvent, RejectedEvent
from app.events.rejections import Rejection, rejected_row


def parked_row(event_id: str, device_id: str, waybill: str, raw: dict, received_at) -> dict:
    """The row that keeps one event, exactly as the device sent it, until its packing."""
    return {
        "event_id": event_id,
        "device_id": device_id,
        "waybill": waybill,
        "payload": json.dumps(raw, ensure_ascii=False),
        "received_at": received_at,
    }


def take_parked(session: Session, waybills: set[str]) -> list[tuple[str, bytes, datetime]]:
    """Remove the events parked for these (just packed) waybills and return them as
    messages to ingest, (device id, payload, received at), in the order they arrived."""
    if not waybills:
        return []
    waiting = list(
        session.scalars(
            sa.select(ParkedEvent).where(ParkedEvent.waybill.in_(waybills)).order_by(ParkedEvent.id)
        )
    )
    if not waiting:
        return []
    session.execute(sa.delete(ParkedEvent).where(ParkedEvent.id.in_([p.id for p in waiting])))
    return [
        (p.device_id, json.dumps({"events": [json.loads(p.payload)]}).encode(), p.received_at)
        for p in waiting
    ]


def expire_parked(session: Session, now: datetime, max_age: timedelta) -> int:
    """Parked events whose waybill was never packed within ``max_age`` are rejected
    (``unknown_waybill``), where regulators read them (kept as devices/redaction.py keeps a
    rejected event: a parked event was signed by a registered device, so it is a row, and
    they are as few as the parked events); returns how many."""
    stale = list(
        session.scalars(sa.select(ParkedEvent).where(ParkedEvent.received_at < now - max_age))
    )
    if not stale:
        return 0
    session.execute(
        sa.insert(RejectedEvent),
        [
            rejected_row(
                Rejection(
                    p.device_id,
                    p.event_id,
                    "unknown_waybill",
                    f"no parcel with waybill {p.waybill} was packed within "
                    f"{max_age.total_seconds() / 3600:.0f} h",
                    json.loads(p.payload),
                    p.received_at,
                )
            )
            for p in stale
        ],
    )
    session.execute(sa.delete(ParkedEvent).where(ParkedEvent.id.in_([p.id for p in stale])))
    session.flush()
    return len(stale)
