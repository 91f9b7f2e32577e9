"""Fixtures shared by the app tests: ``world`` (devices, a courier and units) is defined with
the event tests and offered to every test here."""

from tests.app.test_events_api import world  # noqa: F401
