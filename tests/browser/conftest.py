"""Browser tests: the real app served over HTTP, opened in real headless Chromium.

Fixtures
--------
``live_server`` (session)
    The suite's ``app`` (the same database as ``make``, ``client`` and ``session``: SQLite +
    SpatiaLite, or PostgreSQL + PostGIS under ``TEST_DATABASE_URL``) served by werkzeug on a
    free loopback port, one thread per request. ``live_server.url`` is the base URL,
    ``live_server.url_for("/01/…")`` an absolute one. Whatever a test commits through
    ``make`` is visible to the browser, and the tables are emptied after each test as usual.
``browser`` (session)
    Debian's Chromium (``/usr/bin/chromium``) launched headless through Playwright with the
    flags this machine needs. If Chromium or Playwright is missing the test fails and says
    how to install it (``./scripts/test.sh`` does); nothing is skipped.
``page``
    A fresh browser context and page. A phone by default: 390 × 844 CSS pixels, device
    scale factor 2, mobile, touch, ``zh-CN``, Asia/Shanghai time. Mark the test
    ``@pytest.mark.viewport("desktop")`` for a 1280 × 800 desktop instead.
``new_page``
    A factory for tests that need several pages, e.g. a regulator's desktop and a
    consumer's phone in one test: ``new_page("desktop")``, ``new_page("phone")``.
``screenshot``
    ``screenshot(page)`` saves ``test-artifacts/screenshots/<test name>.png`` (a second
    argument adds a label: ``<test name>-<label>.png``) and returns the path.

Every page made by ``page`` or ``new_page`` is also photographed when the test fails
(``<test name>-failed.png``, ``-failed-2`` for a second page …), and an uncaught JavaScript
error or a Content-Security-Policy violation on any of them fails the test. Playwright's
``expect`` waits up to 5 s; other waits (``goto``, locator actions) give up after 10 s.

Example::

    from playwright.sync_api import expect

    def test_the_page_names_the_product(make, live_server, page, screenshot):
        serial = make.codes(make.batch(), 1)[0]
        page.goto(live_server.url_for(f"/api/v1/codes/{serial}"))
        expect(page.get_by_text(serial)).to_be_visible()
        screenshot(page)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.app.test_events_api import world  # noqa: F401 - the fixture, for browser tests

CHROMIUM = Path("/usr/bin/chromium")
#: As root on this machine Chromium needs --no-sandbox; the rest keep it off the network
#: (a closed network refuses its background connections, many at a time) and quick to start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {
    "phone": dict(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    ),
    "desktop": dict(viewport={"width": 1280, "height": 800}, device_scale_factor=1),
}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class LiveServer:
    url: str

    def url_for(self, path: str) -> str:
        return self.url + path


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass  # pytest shows the test's own output; a line per request would drown it


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[LiveServer]:
    """The app on a free loopback port, served from a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never a browser Playwright downloads)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium; "
            "./scripts/test.sh installs it (or: apt-get install chromium chromium-driver)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright is missing: ./scripts/bootstrap.sh installs the dev extras "
            "(or: .venv/bin/pip install -e '.[dev]')",
            pytrace=False,
        )
    with sync_playwright() as pw:
        # launch() gives Chromium a fresh --user-data-dir of its own in a temporary folder
        # and removes it on close (it refuses one passed in args).
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _artifact_name(item: pytest.Item) -> str:
    return re.sub(r"[^\w.-]+", "_", item.name).strip("_")


@pytest.fixture
def screenshot(request):
    """``screenshot(page, label="")`` → the saved PNG's path (the whole page, not the fold)."""

    def take(page, label: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = _artifact_name(request.node) + (f"-{label}" if label else "")
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def new_page(browser, request):
    """``new_page("phone" | "desktop")`` → a page in its own fresh context."""
    contexts = []
    errors: list[str] = []

    def make_page(viewport: str = "phone"):
        if viewport not in VIEWPORTS:
            raise ValueError(f"viewport is one of {sorted(VIEWPORTS)}, not {viewport!r}")
        context = browser.new_context(
            **VIEWPORTS[viewport], locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        # A Content-Security-Policy violation means part of the page did not load.
        page.on(
            "console",
            lambda msg: (
                errors.append(f"{page.url}: {msg.text}")
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )
        return page

    yield make_page

    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pages = [p for c in contexts for p in c.pages]
        for n, page in enumerate(pages, 1):
            suffix = "-failed" if n == 1 else f"-failed-{n}"
            try:
                page.screenshot(
                    path=str(ARTIFACTS / f"{_artifact_name(request.node)}{suffix}.png"),
                    full_page=True,
                )
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"no failure screenshot of {page.url}: {exc}")
    for context in contexts:
        context.close()
    if errors:
        pytest.fail("uncaught JavaScript errors:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def page(new_page, request):
    """A phone page; ``@pytest.mark.viewport("desktop")`` makes it a desktop one."""
    marker = request.node.get_closest_marker("viewport")
    return new_page(marker.args[0] if marker else "phone")
