"""The anomaly scenario suite, end to end through ingestion, rules and sweep."""

import pytest

from app.ingest import scenarios

# Simulated days of traffic, seconds each.
pytestmark = pytest.mark.slow


def test_a_clean_day_raises_no_anomaly(app):
    """Does a simulated day of honest traffic (handhelds offline for hours across the sweeps,
    and the clean cases: a handheld offline across a promise, a parcel idle at a station
    while its handheld had not synced, lockers, a long-haul hand-over, a return resold,
    clocks in UTC offsets, poor fixes with honest accuracy, a household's several orders)
    pass with every event accepted and no finding ever raised, not even for a while?"""
    report = scenarios.run(app, shops=3, couriers=2, codes_per_shop=80, inject=0)
    assert report.events_sent > 1000 and report.accepted == report.events_sent
    assert {k: len(s.found) for k, s in report.scores.items() if s.found} == {}
    assert report.withdrawn == 0 and report.clean_parties_accused == 0


def test_every_injected_anomaly_is_found_and_nothing_else(app):
    """With two cases of every anomaly type injected into a day, are precision and recall at
    least 0.99 for every type?"""
    report = scenarios.run(app, shops=3, couriers=2, codes_per_shop=80, inject=2)
    assert set(report.scores) == set(scenarios.ALL_TYPES)
    weak = {
        kind: (round(s.precision, 3), round(s.recall, 3))
        for kind, s in report.scores.items()
        if s.precision < 0.99 or s.recall < 0.99
    }
    assert weak == {}, report.table()
    assert all(s.expected for s in report.scores.values())
    assert report.clean_parties_accused == 0
    # brushing at two shops, one each way (one doorstep; many doorsteps signed at one spot)
    assert len(report.scores["brushing"].expected) == 2
