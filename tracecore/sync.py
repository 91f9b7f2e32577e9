"""What the service can know of a device's events: how far each device has synced.

Handhelds go offline for hours or days and deliver their scans in bursts (the protocol is
built for it). Until the handheld holding a parcel has delivered its events past a deadline,
the service does not know whether the parcel was late or stalled: it is *awaiting sync*, and
the time-based rules (:mod:`tracecore.anomalies`) do not judge it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class DeviceSync:
    """What the service knows of one device's delivery of its own events."""

    device_id: str
    #: When the service last received an event from it (the service's clock).
    last_heard_at: datetime | None
    #: The latest event time (its clock) among the events it delivered.
    synced_through: datetime | None
    #: Numbers it skipped that were asked for again and have not arrived (recently).
    open_gaps: bool = False

    def synced_past(self, moment: datetime) -> bool:
        """Has everything it recorded up to ``moment`` reached the service?"""
        return (
            not self.open_gaps and self.synced_through is not None and self.synced_through >= moment
        )

    def silent(self, now: datetime, hours: float) -> bool:
        """Not heard from for ``hours`` (never heard from: not silent, but unused)."""
        return self.last_heard_at is not None and now - self.last_heard_at > timedelta(hours=hours)


def awaiting_sync(deadline: datetime, holders: tuple[DeviceSync, ...]) -> bool:
    """Whether some device that may hold the parcel has not delivered past ``deadline``:
    the parcel's state at the deadline is not known yet, and no time-based rule judges it."""
    return any(not d.synced_past(deadline) for d in holders)
