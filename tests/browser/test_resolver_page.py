"""The page at a unit's Digital Link, as a phone that scanned its QR code shows it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tracecore.serials import grouped

# Chromium and a served app (its own threads and connections): slow, and data committed.
pytestmark = [pytest.mark.slow, pytest.mark.committed]


def test_a_scanned_code_shows_product_and_serial_on_a_phone(
    make, client, live_server, page, screenshot
):
    """Opening a unit's Digital Link shows what it is, fitted to the phone's width."""
    merchant = make.merchant(name="常州溧阳天目湖茶业有限公司")
    product = make.product(merchant, name="天目湖白茶 250g 明前特级礼盒装")
    serial = make.codes(make.batch(product, lot="TMH2026/03"), 1)[0]
    uri = client.get(f"/api/v1/codes/{serial}").get_json()["uri"]

    response = page.goto(live_server.url_for(urlsplit(uri).path))

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_text("天目湖白茶 250g 明前特级礼盒装").first).to_be_visible()
    expect(page.get_by_text(grouped(serial))).to_be_visible()  # in fours, as on its label
    expect(page.get_by_text("常州溧阳天目湖茶业有限公司").first).to_be_visible()
    # The page lays out at the phone's own width (it declares a device-width viewport)
    # and nothing sticks out sideways.
    width = page.evaluate("window.innerWidth")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert width == 390, "the page is laid out wider than the phone (zoomed out to fit)"
    assert scroll_width <= width, "the page scrolls sideways on a phone"
    assert screenshot(page).stat().st_size > 0
