"""Rejected events: a row each where they are evidence about a party, a tally where not.

Anyone can send events naming any device id: over HTTP without authentication, over MQTT to
a broker that lets them in. So a rejection is recorded according to who sent it:

- a registered device's rejected events are evidence about its owner (a clock that drifts,
  a scan of a counterfeit, a kind of device reporting what it may not): they are kept one
  row each in ``rejected_events``, up to :attr:`Caps.rows_per_device` an hour per device;
  beyond that they are tallied too;
- what an unregistered device id sends is counted in ``rejection_tallies``: one row per
  hour, client address, claimed device id and reason, with a count, the first and last
  time seen, and the first one kept as a sample. At most :attr:`Caps.tallies_per_hour` rows
  are opened an hour; the senders beyond are counted together under ``*``. So the rows a
  flood leaves are bounded whatever its size, and it costs one statement per batch.

Either way a payload is kept as devices/redaction.py keeps it: the protocol's fields, no
personal data. Like every use case this only writes; the caller flushes and commits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import among
from app.events.models import PAYLOAD_KEEP, RejectedEvent, RejectionTally
from app.events.writers import add_to_tallies
from devices.redaction import clean_text, kept_event, kept_message, subject

#: A tally counts one hour.
WINDOW = timedelta(hours=1)
#: What a tally keeps of its sample (1 KiB).
SAMPLE_KEEP = 1024
#: The address and device id under which the senders beyond an hour's cap are counted.
OTHERS = "*"


@dataclass(frozen=True)
class Caps:
    """How many rows rejections may open, per hour."""

    #: Rejected events kept one row each, per registered device and hour.
    rows_per_device: int = 100
    #: Tallies opened per hour (each a sender and a reason).
    tallies_per_hour: int = 200


class Rejection(NamedTuple):
    """One rejected event, or one message rejected whole, as the ingest run saw it."""

    #: The device id the sender claimed.
    device_id: str
    event_id: str | None
    reason: str
    message: str
    #: The event as read (any JSON value), or the bytes of a message rejected whole.
    payload: Any
    received_at: datetime
    #: The client's address over HTTP; empty over MQTT.
    address: str = ""


def record(
    session: Session, rejections: list[Rejection], registered: set[str], caps: Caps = Caps()
) -> None:
    """Keep ``rejections``: the ``registered`` devices' as rows (up to their cap), the rest
    in tallies (see the module's docstring)."""
    if not rejections:
        return
    rows: list[Rejection] = []
    tallied: list[Rejection] = []
    evidence = [r for r in rejections if r.device_id in registered]
    if evidence:
        room = _rows_left(session, evidence, caps.rows_per_device)
        for r in evidence:
            key = (r.device_id, window_of(r.received_at))
            if room[key] > 0:
                room[key] -= 1
                rows.append(r)
            else:
                tallied.append(r)
    tallied += [r for r in rejections if r.device_id not in registered]
    if rows:
        session.execute(sa.insert(RejectedEvent), [rejected_row(r) for r in rows])
    if tallied:
        _tally(session, tallied, caps.tallies_per_hour)


def rejected_row(r: Rejection) -> dict:
    """The ``rejected_events`` row of one rejection, its payload as kept, its subject found."""
    whole = isinstance(r.payload, bytes)
    serial, waybill = (None, None) if whole else subject(r.payload)
    return {
        "device_id": clean_text(r.device_id)[:64] or None,
        "event_id": clean_text(r.event_id)[:64] if r.event_id else None,
        "reason": r.reason[:32],
        "message": clean_text(r.message)[:300],
        "payload": _kept(r)[:PAYLOAD_KEEP],
        "serial": serial,
        "waybill": waybill,
        "received_at": r.received_at,
    }


def window_of(moment: datetime) -> datetime:
    """The start of the hour ``moment`` is counted in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def _kept(r: Rejection) -> str:
    return kept_message(r.payload) if isinstance(r.payload, bytes) else kept_event(r.payload)


def _rows_left(
    session: Session, evidence: list[Rejection], cap: int
) -> Counter[tuple[str, datetime]]:
    """(device id, hour) -> how many more rows its rejections may open."""
    left: Counter[tuple[str, datetime]] = Counter()
    devices = {r.device_id for r in evidence}
    for window in {window_of(r.received_at) for r in evidence}:
        kept = dict(
            session.execute(
                sa.select(RejectedEvent.device_id, sa.func.count())
                .where(
                    among(session, RejectedEvent.device_id, devices),
                    RejectedEvent.received_at >= window,
                    RejectedEvent.received_at < window + WINDOW,
                )
                .group_by(RejectedEvent.device_id)
            ).all()
        )
        for device in devices:
            left[(device, window)] = cap - kept.get(device, 0)
    return left


def _tally(session: Session, rejections: list[Rejection], cap: int) -> None:
    """Add ``rejections`` to their hour's tallies, opening at most ``cap`` an hour."""
    groups: dict[tuple, list[Rejection]] = {}
    for r in rejections:
        key = (window_of(r.received_at), r.address[:64], clean_text(r.device_id)[:64], r.reason)
        groups.setdefault(key, []).append(r)
    for window in {key[0] for key in groups}:
        _fold_beyond_cap(session, groups, window, cap)
    rows = []
    for (window, address, device_id, reason), found in sorted(groups.items()):
        first = found[0]
        rows.append(
            {
                "window_start": window,
                "address": address,
                "device_id": device_id,
                "reason": reason,
                "count": len(found),
                "first_seen_at": min(r.received_at for r in found),
                "last_seen_at": max(r.received_at for r in found),
                "message": clean_text(first.message)[:300],
                "sample": _kept(first)[:SAMPLE_KEEP],
            }
        )
    add_to_tallies(session, rows)


def _fold_beyond_cap(session: Session, groups: dict[tuple, list], window: datetime, cap: int):
    """Count the senders that would open more than ``cap`` tallies in ``window`` under
    :data:`OTHERS` instead (the tallies they already have go on counting)."""
    ours = [key for key in groups if key[0] == window]
    opened = session.scalar(
        sa.select(sa.func.count())
        .select_from(RejectionTally)
        .where(RejectionTally.window_start == window)
    )
    if opened + len(ours) <= cap:
        return
    present = set(
        session.execute(
            sa.select(
                RejectionTally.address, RejectionTally.device_id, RejectionTally.reason
            ).where(
                RejectionTally.window_start == window,
                among(session, RejectionTally.device_id, {key[2] for key in ours}),
            )
        ).all()
    )
    room = cap - opened
    for key in ours:
        if tuple(key[1:]) in present or key[1:3] == (OTHERS, OTHERS):
            continue
        if room > 0:
            room -= 1
            continue
        others = (window, OTHERS, OTHERS, key[3])
        groups.setdefault(others, []).extend(groups.pop(key))
