"""The working-day clock of administrative time limits (工作日): a party told of a decision
may respond within so many working days, weekends and public holidays not counted.

Days are counted in China Standard Time, where the decisions are made and read. A period of
``n`` working days that starts on a given moment ends at the end (24:00 CST) of the ``n``-th
working day after that moment's day: a decision made on a Friday at 16:00 with 7 working days
to respond becomes final when the Tuesday eleven days later has ended. Public
holidays, and the weekend days worked in their place (调休), are the operator's to configure
(``PUBLIC_HOLIDAYS``, ``WORKING_WEEKEND_DAYS``): the State Council publishes them each year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True)
class Calendar:
    """Which days are working days: Monday to Friday, except ``holidays``, plus the weekend
    days in ``working_weekend_days``."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    working_weekend_days: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day.weekday() < 5 or day in self.working_weekend_days


def parse_days(raw: str) -> frozenset[date]:
    """Days from a comma-separated list of ISO dates (``2027-01-01,2027-02-11``); ValueError
    names the first that is not one."""
    out = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a date like 2027-01-01") from None
    return frozenset(out)


def working_days_after(start: datetime, days: int, calendar: Calendar = Calendar()) -> datetime:
    """The end of the ``days``-th working day after ``start``'s day (in China Standard
    Time), as an aware UTC moment. ``days`` is at least 1."""
    if days < 1:
        raise ValueError("a response period is at least one working day")
    if start.tzinfo is None:
        raise ValueError("start must be an aware time")
    day = start.astimezone(CST).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    return datetime.combine(day + timedelta(days=1), time(0), CST).astimezone(UTC)


@dataclass(frozen=True)
class ResponsePeriod:
    """How long a party has to respond to a decision against it (default 7 working days)."""

    working_days: int = 7
    calendar: Calendar = field(default_factory=Calendar)

    def ends(self, decided_at: datetime) -> datetime:
        """When a decision made at ``decided_at`` becomes final, unless appealed before."""
        return working_days_after(decided_at, self.working_days, self.calendar)


def working_days_since(start: datetime, now: datetime, calendar: Calendar = Calendar()) -> int:
    """How many working days have begun since ``start``'s day (China Standard Time), up to
    and including ``now``'s day: 0 on the same day, 7 on the 7th working day after, when a
    period of 7 working days that started at ``start`` is in its last day (it ends at 24:00)."""
    if start.tzinfo is None or now.tzinfo is None:
        raise ValueError("start and now must be aware times")
    day, last = start.astimezone(CST).date(), now.astimezone(CST).date()
    counted = 0
    while day < last:
        day += timedelta(days=1)
        counted += calendar.is_working_day(day)
    return counted
