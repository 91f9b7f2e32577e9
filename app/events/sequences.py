"""Sequence numbers: each device numbers its events; the ingest run records the gaps and
asks the device to resend them, and fills gaps as the missing events arrive.

The last step of an ingest batch: it locks the batch's devices until the commit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import among
from app.events import writers
from app.events.models import Device, SequenceGap


def track_sequences(
    session: Session,
    seen_seqs: dict[str, list[int]],
    now: datetime,
    heard: dict[str, tuple[datetime, datetime]] | None = None,
) -> list[tuple[str, dict]]:
    """Record the gaps in these devices' numbers (device id -> numbers that passed the
    signature check), fill those now received, and return the resend commands to publish,
    (device id, command). ``heard``: device id -> (latest received time, latest event
    time) of the events stored from it, to move its ``last_heard_at`` and
    ``synced_through`` on (never back)."""
    if not seen_seqs:
        return []
    # One writer per device at a time, from here to the commit: the batch's last step,
    # so that workers storing the same devices' events in parallel wait for each other
    # only this long (locked in id order; max_seq as committed by the one before). NO KEY
    # UPDATE, as the UPDATE of max_seq takes: FOR UPDATE would conflict with the KEY
    # SHARE locks that the foreign-key checks of other batches' event inserts hold on
    # the same devices, and two workers would deadlock. Core, not the ORM: two columns
    # of a few dozen devices, read and written once per batch. (SQLite ignores the lock.)
    db = session.connection()
    locked = db.execute(
        sa.select(Device.id, Device.max_seq, Device.last_heard_at, Device.synced_through)
        .where(among(session, Device.id, seen_seqs))
        .order_by(Device.id)
        .with_for_update(key_share=True)
    ).all()
    max_seqs: dict[str, int] = {row.id: row.max_seq for row in locked}
    if heard:
        writers.set_heard(session, _moved_on(locked, heard))
    #: Only read if some number is not past the device's highest (a resend, a
    #: redelivery, another worker's batch): most batches have none to fill.
    gaps: dict[str, list[SequenceGap]] | None = None
    commands = []
    raised: dict[str, int] = {}
    for device_id, seqs in seen_seqs.items():
        highest = max_seqs[device_id]
        for seq in sorted(set(seqs)):
            if seq > highest:
                if seq > highest + 1:
                    gaps = gaps if gaps is not None else _open_gaps(session, seen_seqs)
                    gap = SequenceGap(
                        device_id=device_id,
                        first_seq=highest + 1,
                        last_seq=seq - 1,
                        detected_at=now,
                        resend_requested_at=now,
                    )
                    session.add(gap)
                    gaps[device_id].append(gap)
                    commands.append(
                        (
                            device_id,
                            {
                                "command": "resend",
                                "from_seq": gap.first_seq,
                                "to_seq": gap.last_seq,
                            },
                        )
                    )
                highest = raised[device_id] = seq
            else:
                gaps = gaps if gaps is not None else _open_gaps(session, seen_seqs)
                _fill(session, gaps[device_id], seq)
    writers.set_max_seqs(session, raised)
    session.flush()
    return commands


def _moved_on(locked: list, heard: dict[str, tuple[datetime, datetime]]) -> dict[str, tuple]:
    """The devices whose last-heard or synced-through time moves on, with both new values."""
    out = {}
    for row in locked:
        if row.id not in heard:
            continue
        received, synced = heard[row.id]
        new = (
            max(received, row.last_heard_at or received),
            max(synced, row.synced_through or synced),
        )
        if new != (row.last_heard_at, row.synced_through):
            out[row.id] = new
    return out


def _open_gaps(session: Session, devices: dict[str, list[int]]) -> dict[str, list[SequenceGap]]:
    """The open gaps of these devices."""
    gaps: dict[str, list[SequenceGap]] = defaultdict(list)
    for gap in session.scalars(
        sa.select(SequenceGap).where(among(session, SequenceGap.device_id, devices))
    ):
        gaps[gap.device_id].append(gap)
    return gaps


def _fill(session: Session, gaps: list[SequenceGap], seq: int) -> None:
    """A number arrived late: close, shrink or split the gap it was in."""
    for gap in gaps:
        if gap.first_seq <= seq <= gap.last_seq:
            if gap.first_seq == gap.last_seq:
                session.delete(gap)
                gaps.remove(gap)
            elif seq == gap.first_seq:
                gap.first_seq += 1
            elif seq == gap.last_seq:
                gap.last_seq -= 1
            else:
                upper = SequenceGap(
                    device_id=gap.device_id,
                    first_seq=seq + 1,
                    last_seq=gap.last_seq,
                    detected_at=gap.detected_at,
                    resend_requested_at=gap.resend_requested_at,
                )
                gap.last_seq = seq - 1
                session.add(upper)
                gaps.append(upper)
            return
