"""Test data that is not in the database: signed device events.

Every test that needs an event as a device sends it builds it here, signed by the
protocol's own :func:`devices.protocol.sign`, so the shape of an event and its signature
are written once. (Parties, products, batches, codes and devices are made in the database
by ``make``, tests/conftest.py.)

- :func:`signed_event` — one event, with every field the test gives;
- :class:`EventFactory` — one device's events, numbered 1, 2, 3 … as firmware numbers them;
- :func:`resigned` — an event changed (a field left out, another value) and signed again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from devices import protocol

#: The devices' clocks: China Standard Time, as the demo fleet and most firmware write it.
CST = timezone(timedelta(hours=8))
#: Where a device reports from unless a test says otherwise (Tianning, Changzhou).
PLACE = {"lat": 31.78, "lon": 119.95}


def signed_event(secret: str, type_: str, time: datetime | str, *, seq: int = 1, **fields) -> dict:
    """An event of ``type_`` at ``time`` (an aware datetime, written in its own offset, or a
    string sent as it is), number ``seq``, with a fresh ``event_id`` unless one is given,
    the other ``fields`` as given, and its ``sig`` made with ``secret``. A field given as
    None is left out, to test an event that lacks it."""
    body = {
        "event_id": str(uuid.uuid4()),
        "seq": seq,
        "type": type_,
        "time": time.isoformat() if isinstance(time, datetime) else time,
    } | fields
    body = {k: v for k, v in body.items() if v is not None}
    body["sig"] = protocol.sign(body, secret)
    return body


def resigned(event: dict, secret: str, **changes) -> dict:
    """``event`` with ``changes`` (None leaves the field out), signed again with ``secret``:
    a well-signed event that is wrong in one way."""
    body = {k: v for k, v in (event | changes).items() if k != "sig" and v is not None}
    body["sig"] = protocol.sign(body, secret)
    return body


class EventFactory:
    """The signed events of one device: each call numbers the next event (unless ``seq`` is
    given), writes its time in China Standard Time, and places it at :data:`PLACE` (unless
    the test gives ``lat``/``lon``, or ``place=None`` for events without one)."""

    def __init__(self, secret: str, place: dict | None = PLACE) -> None:
        self.secret = secret
        self.seq = 0
        self.place = place or {}

    def __call__(self, type_: str, when: datetime, seq: int | None = None, **fields) -> dict:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return signed_event(
            self.secret, type_, when.astimezone(CST), seq=seq, **(self.place | fields)
        )
