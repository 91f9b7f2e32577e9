"""Fixtures shared by the app tests: ``world`` (devices, a courier and units) is defined with
the event tests, ``two_regions`` (party A in Changzhou, B in Zhaoqing, a caller per role,
built once per module) in tests/app/authz_world.py; both are offered to every test here."""

from tests.app.authz_world import two_regions  # noqa: F401
from tests.app.test_events_api import world  # noqa: F401


def post_sign_in(client, data: dict, *, path: str = "/workspace/sign-in", **kw):
    """The sign-in form as a browser sends it: read first, for its anti-forgery token."""
    import re

    environ = kw.get("environ_base") or {}
    html = client.get("/workspace/sign-in", environ_base=environ).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return client.post(path, data={"csrf_token": token, **data}, **kw)
