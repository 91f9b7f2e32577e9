"""Fixtures shared by the app tests: ``world`` (devices, a courier and units) is defined with
the event tests, ``two_regions`` (party A in Changzhou, B in Zhaoqing, a caller per role,
built once per module) in tests/app/authz_world.py; both are offered to every test here."""

from tests.app.authz_world import two_regions  # noqa: F401
from tests.app.test_events_api import world  # noqa: F401
