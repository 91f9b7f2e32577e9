"""The lifecycle of a unit and of a parcel, as a pure state machine over events.

A unit's state is the name of the last lawful event (or ``issued``). Parcel events (pickup to
signature) apply to every unit packed in the parcel. An event the lifecycle does not allow is
kept as evidence but marked with the reason, and does not move the state: a second sale
without a return, a signature with no pickup, a shelving after a signature.

Events are replayed in event-time order (ties broken by arrival), so a handheld that was
offline for a day and delivers its scans late is placed where they happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from tracecore.vocabulary import WITH_COURIER, EventType, ParcelState, UnitState

ISSUED = UnitState.ISSUED
PACKED = ParcelState.PACKED

#: event type -> the states it may follow. The new state is the event type.
ALLOWED_AFTER: dict[str, frozenset[str]] = {
    EventType.SHELVED: frozenset({ISSUED, EventType.SHELVED, EventType.RETURNED}),
    EventType.SOLD: frozenset({ISSUED, EventType.SHELVED, EventType.RETURNED}),
    EventType.PACKED: frozenset({ISSUED, EventType.SHELVED, EventType.SOLD, EventType.RETURNED}),
    EventType.PICKED_UP: frozenset({PACKED}),
    EventType.IN_TRANSIT: frozenset(
        {EventType.PICKED_UP, EventType.IN_TRANSIT, EventType.DELIVERY_FAILED}
    ),
    EventType.OUT_FOR_DELIVERY: frozenset(
        {EventType.PICKED_UP, EventType.IN_TRANSIT, EventType.DELIVERY_FAILED}
    ),
    EventType.DELIVERY_FAILED: frozenset({EventType.OUT_FOR_DELIVERY, EventType.IN_TRANSIT}),
    EventType.SIGNED: WITH_COURIER,
    EventType.RETURNED: frozenset({*WITH_COURIER, EventType.SIGNED}),
}

UNIT_STATES = tuple(UnitState)
PARCEL_STATES = tuple(ParcelState)


class Step(NamedTuple):
    """One event as the lifecycle sees it (a named tuple: one is built per event replayed,
    and a frozen dataclass costs several times as much to build)."""

    event_id: str
    type: str
    time: datetime
    #: Arrival order, to break ties between events with the same time.
    order: int = 0
    #: Who reported it (the device's owner), for custody: e.g. {"type": "courier", "id": 3}.
    party: Any = None


@dataclass
class Replay:
    state: str
    #: event_id -> why the lifecycle does not allow it
    violations: dict[str, str] = field(default_factory=dict)
    #: The lawful steps, in order.
    lawful: list[Step] = field(default_factory=list)


def replay(steps: Iterable[Step], initial: str = ISSUED) -> Replay:
    """Apply ``steps`` in time order from ``initial``; return the state and the violations."""
    result = Replay(initial)
    for step in sorted(steps, key=lambda s: (s.time, s.order)):
        allowed = ALLOWED_AFTER.get(step.type)
        if allowed is None:
            raise ValueError(f"unknown event type {step.type!r}")
        if result.state not in allowed:
            result.violations[step.event_id] = f"{step.type} is not allowed after {result.state}"
            continue
        result.state = step.type
        result.lawful.append(step)
    return result


@dataclass(frozen=True)
class Custody:
    """Who held the unit from ``start`` until ``end`` (None: still holds it)."""

    party: Any
    start: datetime | None
    end: datetime | None


def custody(lawful: list[Step], first_holder: Any, consignee: Any = None) -> list[Custody]:
    """Holders over time: the merchant until the pickup scan, then the scanning courier (a
    hand-over to another courier changes custody), then the consignee from the signature.
    A return puts it back with the courier until a merchant shelves it again."""
    periods: list[Custody] = []
    holder, since = first_holder, None
    for step in lawful:
        if step.type == EventType.SIGNED:
            new = consignee
        elif step.type in WITH_COURIER or step.type == EventType.RETURNED:
            new = step.party
        elif step.type in (EventType.SHELVED, EventType.SOLD, EventType.PACKED):
            new = step.party if step.party is not None else holder
        else:
            new = holder
        if new != holder:
            periods.append(Custody(holder, since, step.time))
            holder, since = new, step.time
    periods.append(Custody(holder, since, None))
    return periods


# -- which companies' couriers may report on a parcel ------------------------------------------

#: The start of the violation mark of a courier's event on a parcel its company was not
#: entrusted with. Unlike the lifecycle's marks, it is decided when the event is stored (it
#: depends on who the courier works for, which the replay does not read) and kept by the
#: replay, which leaves such events out: custody does not move.
NOT_ENTRUSTED = "not entrusted"


class Report(NamedTuple):
    """A courier's event on a parcel, as :func:`unentrusted` judges it."""

    event_id: str
    time: datetime
    #: Arrival order, to break ties between events with the same time.
    order: int
    #: The logistics company of the reporting courier.
    company: int | None
    #: For a hand-over (an ``in_transit`` with ``data.handover_to``): the receiving company.
    handover_to: int | None = None


def unentrusted(parcel_company: int, reports: Iterable[Report]) -> Mapping[str, str]:
    """The couriers' events on one parcel made by a company not entrusted with it at the
    time, event_id -> violation mark.

    The parcel's company is entrusted from the start; a hand-over recorded by a courier of
    an entrusted company (an ``in_transit`` naming ``handover_to``) entrusts the receiving
    company from its time on. A hand-over by a company not entrusted entrusts nobody. Trust
    only grows: the first company may still report after a hand-over (a late scan of its
    own, a return)."""
    trusted = {parcel_company}
    out = {}
    for r in sorted(reports, key=lambda r: (r.time, r.order)):
        if r.company not in trusted:
            out[r.event_id] = (
                f"{NOT_ENTRUSTED}: a courier of company {r.company} on a parcel of company "
                f"{parcel_company}, with no hand-over to it"
            )
        elif r.handover_to is not None:
            trusted.add(r.handover_to)
    return out
