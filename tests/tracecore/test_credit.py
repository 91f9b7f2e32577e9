"""Credit scoring: fading records, grades, red and black lists."""

from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest

from tracecore.credit import (
    BLACK,
    RED,
    Policy,
    Record,
    grade,
    public_from,
    public_standing,
    rating_points,
    risk,
    score,
    standing,
)
from tracecore.credit import Appeal as CreditAppeal

NOW = datetime(2026, 11, 22, tzinfo=UTC)
P = Policy()


def days_ago(n):
    return NOW - timedelta(days=n)


def test_a_new_party_starts_at_800_grade_b():
    """Does a party with no records stand at 800, grade B, on no list?"""
    assert astuple(standing([], NOW)) == (800, "B", None)


@pytest.mark.parametrize(
    "value,letter",
    [(900, "A"), (899, "B"), (750, "B"), (749, "C"), (600, "C"), (599, "D"), (0, "D")],
)
def test_grade_boundaries(value, letter):
    """Are the grade boundaries A ≥ 900, B ≥ 750, C ≥ 600?"""
    assert grade(value) == letter


def test_old_records_fade_out_linearly():
    """Does a -120 anomaly count fully today, half after half a year, nothing after a year?"""

    def with_age(d):
        return score([Record("anomaly", -120, days_ago(d), "serious")], NOW)

    assert (with_age(0), with_age(182.5), with_age(365), with_age(400)) == (680, 740, 800, 800)


def test_score_stays_within_0_and_1000():
    """Can records push the score below 0 or above 1000?"""
    assert score([Record("sanction", -150, NOW)] * 10, NOW) == 0
    assert score([Record("commendation", 50, NOW)] * 10, NOW) == 1000


def test_ratings_are_capped_together():
    """Can a handful of one-star ratings sink a party? (All ratings move it ±60 at most.)"""
    bad = [Record("rating", rating_points(1), NOW)] * 100
    assert score(bad, NOW) == 800 - P.rating_cap
    assert rating_points(3) == 0 and rating_points(5) == 2 * P.rating_step
    with pytest.raises(ValueError):
        rating_points(6)


def test_a_confirmed_serious_anomaly_black_lists_for_the_clean_period():
    """Does a confirmed serious anomaly black-list the party until it is a year old?"""
    fresh = [Record("anomaly", -120, days_ago(30), "serious", confirmed=True)]
    old = [Record("anomaly", -120, days_ago(400), "serious", confirmed=True)]
    assert standing(fresh, NOW).list == BLACK
    assert standing(old, NOW).list is None


def test_a_provisional_serious_anomaly_does_not_black_list():
    """Is the black list reserved for confirmed findings (or a very low score)?"""
    assert standing([Record("anomaly", -120, NOW, "serious")], NOW).list is None


def test_a_low_score_black_lists():
    """Does a score under 450 black-list the party even without a confirmed serious anomaly?"""
    assert standing([Record("sanction", -150, NOW)] * 3, NOW).list == BLACK


def test_red_list_needs_grade_a_a_commitment_and_a_clean_year():
    """Grade A + commitment + no serious anomaly in a year: red; any one missing: not."""
    good = [Record("commendation", 50, NOW)] * 2 + [Record("commitment", 20, NOW)]
    assert astuple(standing(good, NOW)) == (920, "A", RED)
    uncommitted = [Record("commendation", 50, NOW)] * 3
    assert standing(uncommitted, NOW).list is None
    tainted = [
        *good,
        Record("commendation", 50, NOW),
        Record("anomaly", -120, days_ago(300), "serious"),
    ]
    assert standing(tainted, NOW).grade == "A" and standing(tainted, NOW).list is None


# -- due process: public standing, risk signals, finality -----------------------------------


def test_an_undecided_serious_finding_is_a_risk_signal_not_public_standing():
    """Does an open serious finding leave the public standing as it was, and show in the
    risk indicator only?"""
    finding = Record("anomaly", -120, days_ago(1), "serious", public_from=None)
    assert astuple(public_standing([finding], NOW)) == (800, "B", None)
    assert astuple(standing([finding], NOW))[0] == 680  # all records: what it would cost
    found = risk(["serious", "minor", "minor"])
    assert (found.open, found.points, found.by_severity["minor"]) == (3, -140, 2)


def test_a_confirmed_serious_finding_counts_publicly_only_from_its_final_date():
    """Is a confirmed serious finding off the public standing before its final date and
    black-listing after it?"""
    final = days_ago(-2)  # two days from now
    confirmed = Record("anomaly", -120, days_ago(5), "serious", confirmed=True, public_from=final)
    assert public_standing([confirmed], NOW).list is None
    assert public_standing([confirmed], NOW + timedelta(days=3)).list == BLACK


def test_an_appeal_in_the_period_holds_the_record_until_it_is_decided():
    """Does an appeal filed before the final date keep the record private while pending,
    and make it public from its rejection when that is later than the final date?"""
    final = days_ago(0)
    filed = days_ago(3)
    assert public_from(final, [CreditAppeal(filed, "pending")]) is None
    rejected = CreditAppeal(filed, "rejected", days_ago(-4))
    assert public_from(final, [rejected]) == days_ago(-4)
    early = CreditAppeal(filed, "rejected", days_ago(2))
    assert public_from(final, [early]) == final
    assert public_from(final, [CreditAppeal(filed, "upheld", days_ago(1))]) is None


def test_an_appeal_after_the_period_holds_nothing():
    """Does an appeal filed after the final date leave the record public meanwhile?"""
    final = days_ago(10)
    assert public_from(final, [CreditAppeal(days_ago(2), "pending")]) == final
    assert public_from(None, []) is None
