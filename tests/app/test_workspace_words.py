"""Words and the clock people read: the ``beijing`` filter and ``label`` every template uses."""

from datetime import UTC, date, datetime

import pytest
from flask import render_template_string

from app.timefmt import beijing, parse_typed
from app.workspace.words import word
from tracecore.errors import ValidationError


def test_a_moment_is_shown_in_beijing_time_with_the_zone():
    """A row stored at 2026-12-01T21:12Z reads 05:12 on the 2nd, Beijing time."""
    assert beijing(datetime(2026, 12, 1, 21, 12, 9, tzinfo=UTC)) == "2026-12-02 05:12 北京时间"
    assert beijing("2026-12-01T21:12:09Z", seconds=True) == "2026-12-02 05:12:09 北京时间"
    assert beijing(datetime(2026, 12, 1, 21, 12), "en") == "2026-12-02 05:12 Beijing time"
    assert beijing(date(2026, 12, 1)) == "2026-12-01" and beijing(None) == ""


def test_a_typed_date_is_read_as_beijing_time():
    assert parse_typed("2026-12-02", "since") == datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert parse_typed("2026-12-02", "until", end_of_day=True) == datetime(
        2026, 12, 2, 16, tzinfo=UTC
    )
    assert parse_typed("2026-12-02T00:00:00Z", "since") == datetime(2026, 12, 2, tzinfo=UTC)
    with pytest.raises(ValidationError):
        parse_typed("yesterday", "since")


def test_the_template_filter_and_label_follow_the_page_language(app):
    page = (
        "{{ at|beijing }} · {{ label('anomaly', 'empty_parcel') }}"
        " · {{ label('event', 'picked_up') }}"
    )
    at = datetime(2026, 12, 1, 21, 12, tzinfo=UTC)
    with app.test_request_context("/workspace/"):
        assert render_template_string(page, at=at) == "2026-12-02 05:12 北京时间 · 空包 · 快递揽收"
    with app.test_request_context("/workspace/?lang=en"):
        assert (
            render_template_string(page, at=at)
            == "2026-12-02 05:12 Beijing time · Empty parcel · Picked up"
        )
    with app.test_request_context("/workspace/", headers={"Accept-Language": "en-GB,en;q=0.9"}):
        assert "Empty parcel" in render_template_string(page, at=at)


def test_every_anomaly_type_has_a_name_and_unknown_values_show_as_they_are():
    from tracecore.anomalies import ANOMALY_TYPES

    assert all(word("anomaly", t) != t for t in ANOMALY_TYPES)
    assert word("anomaly", "something_new") == "something_new"


def test_a_silent_handhelds_subject_reads_as_the_device_and_when_it_was_last_heard(app):
    """A device_silent finding's subject (``DEVICE@20261202T055626Z``) is not shown raw."""
    page = "{{ subject_text('device', s) }} | {{ subject_text('waybill', 'SF1@x') }}"
    subject = "F782ADD056EF3BDE@20261202T055626Z"
    with app.test_request_context("/workspace/"):
        assert render_template_string(page, s=subject) == (
            "F782ADD056EF3BDE · 最后联系 2026-12-02 13:56 北京时间 | SF1@x"
        )
    with app.test_request_context("/workspace/?lang=en"):
        assert render_template_string(page, s=subject).startswith(
            "F782ADD056EF3BDE · last heard 2026-12-02 13:56 Beijing time"
        )
        assert render_template_string("{{ subject_text('device', 'X@bad') }}") == "X@bad"
