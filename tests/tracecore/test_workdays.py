"""The working-day clock of response periods: weekends and public holidays skipped, days
counted in China Standard Time."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tracecore.workdays import (
    Calendar,
    ResponsePeriod,
    parse_days,
    working_days_after,
    working_days_since,
)

CST = timezone(timedelta(hours=8))


def test_seven_working_days_from_a_friday_skip_two_weekends():
    """Does a decision on Friday 2027-01-08 become final when Tuesday the 19th has ended?"""
    decided = datetime(2027, 1, 8, 16, 0, tzinfo=CST)
    assert working_days_after(decided, 7) == datetime(2027, 1, 20, 0, 0, tzinfo=CST)


def test_the_day_is_china_standard_time():
    """Is 2027-01-08 20:00 UTC (Saturday 04:00 in Beijing) counted from the Saturday?"""
    late_friday_utc = datetime(2027, 1, 8, 20, 0, tzinfo=UTC)
    assert working_days_after(late_friday_utc, 1) == datetime(2027, 1, 12, 0, 0, tzinfo=CST)


def test_public_holidays_are_skipped_and_worked_weekend_days_count():
    """Spring Festival 2027: with 02-08..02-12 off and Saturday 02-06 worked, does one working
    day after Friday 02-05 end on the Saturday, and the next after that on 02-15?"""
    calendar = Calendar(
        holidays=frozenset(date(2027, 2, d) for d in range(8, 13)),
        working_weekend_days=frozenset({date(2027, 2, 6)}),
    )
    friday = datetime(2027, 2, 5, 10, 0, tzinfo=CST)
    assert working_days_after(friday, 1, calendar) == datetime(2027, 2, 7, tzinfo=CST)
    assert working_days_after(friday, 2, calendar) == datetime(2027, 2, 16, tzinfo=CST)


def test_a_holiday_on_a_weekday_lengthens_the_period():
    """Does New Year's Day (a Friday in 2027) push a Thursday decision's end from the end of
    Monday 01-11 to the end of Tuesday 01-12?"""
    thursday = datetime(2026, 12, 31, 9, 0, tzinfo=CST)
    assert working_days_after(thursday, 7) == datetime(2027, 1, 12, tzinfo=CST)
    with_holiday = working_days_after(thursday, 7, Calendar(frozenset({date(2027, 1, 1)})))
    assert with_holiday == datetime(2027, 1, 13, tzinfo=CST)


def test_the_response_period_reads_its_calendar():
    period = ResponsePeriod(3, Calendar(parse_days("2027-01-11, 2027-01-12")))
    monday = datetime(2027, 1, 4, 9, 0, tzinfo=CST)
    assert period.ends(monday) == datetime(2027, 1, 8, tzinfo=CST)
    friday = datetime(2027, 1, 8, 9, 0, tzinfo=CST)
    assert period.ends(friday) == datetime(2027, 1, 16, tzinfo=CST)


@pytest.mark.parametrize("raw", ["2027-13-01", "tomorrow", "2027-01-01,x"])
def test_bad_dates_are_named(raw):
    with pytest.raises(ValueError, match="is not a date"):
        parse_days(raw)


def test_a_period_needs_a_day_and_an_aware_start():
    with pytest.raises(ValueError):
        working_days_after(datetime(2027, 1, 4, tzinfo=CST), 0)
    with pytest.raises(ValueError):
        working_days_after(datetime(2027, 1, 4), 1)


def test_working_days_since_counts_the_working_days_begun_after_the_start_day():
    """A finding of Friday evening (Beijing) is 0 working days old that Friday, 1 on
    Monday, 7 on the Tuesday after next (when a 7-working-day period is in its last day)."""
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 18:00 in Beijing
    assert working_days_since(friday, friday + timedelta(hours=5)) == 0
    assert working_days_since(friday, datetime(2026, 11, 23, 1, 0, tzinfo=UTC)) == 1
    assert working_days_since(friday, datetime(2026, 12, 1, 15, 0, tzinfo=UTC)) == 7
    assert working_days_since(friday, datetime(2026, 12, 1, 16, 0, tzinfo=UTC)) == 8
