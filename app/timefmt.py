"""One clock for people: every time a person reads is Beijing time (Asia/Shanghai, UTC+8,
no daylight saving) with the zone said, and every date a person types is read in that zone.

Plain functions (no Flask). The API keeps RFC 3339 with offsets; this module is only for
what people read and type. Templates use the ``beijing`` filter (registered app-wide by
:func:`app.workspace.words.register`, in the page's language)::

    {{ anomaly.detected_at|beijing }}            → 2026-12-02 05:12 北京时间
    {{ event.time|beijing(seconds=True) }}       → 2026-12-02 05:12:09 北京时间
    {{ batch.produced_on|beijing }}              → 2026-11-20   (a date has no zone)

Values may be aware datetimes, RFC 3339 strings (the histories' ``time`` fields), dates or
None (an empty string). A naive datetime is taken as UTC, as the database columns are.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from tracecore.errors import ValidationError

#: Beijing time. A fixed offset: China has had no daylight saving since 1991.
BEIJING = timezone(timedelta(hours=8), "CST")
ZONE_NAMES = {"zh": "北京时间", "en": "Beijing time"}


def beijing(value, lang: str = "zh", *, seconds: bool = False) -> str:
    """``value`` as a person in China reads it: ``2026-12-02 05:12 北京时间``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return value.isoformat() if isinstance(value, date) else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    shown = value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {ZONE_NAMES.get(lang, ZONE_NAMES['zh'])}"


def beijing_date(value) -> str:
    """The calendar day in Beijing of a moment (``2026-12-02``), for date inputs and CSV."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(BEIJING).date().isoformat()
    return value.isoformat()


def rfc3339_beijing(value: datetime | None) -> str:
    """A moment in Beijing time with its offset (``2026-12-02T05:12:09+08:00``): what a CSV
    gives, unambiguous for both programs and people."""
    if value is None:
        return ""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def parse_typed(raw: str, field: str, *, end_of_day: bool = False) -> datetime | None:
    """A date or time a person typed, read as Beijing time unless it names its offset;
    returned in UTC. ``end_of_day``: a bare date means the end of that day (an "until"
    filter includes the day typed), otherwise its start."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if end_of_day and len(raw) == 10:  # a bare date: YYYY-MM-DD
            moment += timedelta(days=1)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=BEIJING)
        # a moment UTC cannot hold (0001-01-01T00:00:00+00:01, 9999-12-31 until) is no date
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError(f"{field}: give a date like 2026-11-22", field=field) from None
