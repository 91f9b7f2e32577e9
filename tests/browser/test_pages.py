"""The consumer's scan page and the regulator's workspace in real headless Chromium: what a
phone shows after a scan, a complaint filed from it, and a regulator's day (sign in, filter
the queue, confirm an anomaly, recall a batch) seen changing the consumer's page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.app.test_events_api import ship

# Chromium and a served app (its own threads and connections): slow, and data committed.
pytestmark = [pytest.mark.slow, pytest.mark.committed]


def no_sideways_scroll(page):
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_consumer_scans_sees_the_verdict_and_journey_and_complains(
    world, live_server, page, screenshot
):
    ship(world)
    serial = world["serials"][0]
    page.goto(live_server.url_for(f"/t/{serial}"))
    expect(page.locator("#verdict")).to_contain_text("正品，记录正常")
    journey = page.locator("#journey li")
    expect(journey).to_have_count(7)
    expect(journey.first).to_contain_text("已签收")  # newest first
    expect(journey.first).to_contain_text("常州市钟楼区")
    expect(journey.last).to_contain_text("上架")
    assert not re.search(r"快递员\d", page.content())  # the courier's name never shows
    no_sideways_scroll(page)
    screenshot(page, "scan")

    page.get_by_text("投诉", exact=True).click()
    page.select_option("#complaint-category", "quality")
    page.fill("#complaint-text", "茶叶受潮结块")
    page.get_by_role("button", name="提交投诉").click()
    expect(page.locator(".notice")).to_contain_text("投诉已提交")
    screenshot(page, "complained")


def test_the_scan_page_switches_to_english(world, live_server, page):
    page.goto(live_server.url_for(f"/t/{world['serials'][0]}"))
    page.get_by_role("link", name="English").click()
    expect(page.locator("#verdict")).to_contain_text("Genuine")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_a_regulator_confirms_an_anomaly_recalls_the_batch_and_the_consumer_sees_it(
    world, make, live_server, new_page, screenshot
):
    serial = world["serials"][0]
    pos = world["pos"]
    pos.post(pos.event("sold", 10, code=serial, data={"order_id": "O-1"}))
    pos.post(pos.event("sold", 20, code=serial, data={"order_id": "O-2"}))  # duplicate_sale
    username, password = make.user("regulator", "3204", display_name="常州监管员")

    desk = new_page("desktop")
    desk.goto(live_server.url_for("/workspace/anomalies"))
    desk.fill("#username", username)
    desk.fill("#password", password)
    desk.get_by_role("button", name="登录 Sign in").click()
    expect(desk.locator("nav.top")).to_contain_text("常州监管员")

    desk.select_option("#f-type", "duplicate_sale")
    desk.get_by_role("button", name="筛选 Filter").click()
    rows = desk.locator("table.anomalies tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-type", "duplicate_sale")
    screenshot(desk, "queue")
    rows.first.locator('input[name="reason"]').fill("两次销售记录属实")
    rows.first.get_by_role("button", name="确认 Confirm").click()
    expect(desk.locator("table.anomalies tbody tr").first).to_have_attribute(
        "data-status", "confirmed"
    )

    desk.goto(live_server.url_for(f"/workspace/batches/{world['batch']}"))
    desk.fill("#recall-reason", "包装密封不良 Bad seal")
    desk.get_by_role("button", name="召回该批次… Recall this batch…").click()
    expect(desk.locator("#recall-impact")).to_contain_text("3")
    desk.get_by_role("button", name="确认召回").click()
    expect(desk.locator("#recall-status")).to_contain_text("已召回")
    desk.get_by_role("link", name=re.compile("lot")).first.click()
    expect(desk.locator("#batch-status")).to_contain_text("已召回")
    expect(desk.locator(f'tr[data-serial="{serial}"]')).to_be_visible()
    screenshot(desk, "recalled")

    phone = new_page("phone")
    phone.goto(live_server.url_for(f"/t/{serial}"))
    verdict = phone.locator("#verdict")
    expect(verdict).to_contain_text("该批次已于")
    expect(verdict).to_contain_text("包装密封不良")
    expect(phone.locator('[data-warning="sold_twice"]')).to_be_visible()
    screenshot(phone, "consumer-after-recall")


def test_a_box_drawn_on_the_map_becomes_a_spatial_search(
    make, live_server, new_page, app, screenshot
):
    from tests.app.test_workspace import findings

    m = make.merchant()
    inside, outside = findings(
        app,
        ("expired_sale", "major", ("code", "S1"), ("merchant", m), 31.83, 119.97),
        ("expired_sale", "major", ("code", "S2"), ("merchant", m), 31.42, 119.48),
    )
    username, password = make.user("regulator", "3204")
    desk = new_page("desktop")
    desk.goto(live_server.url_for("/workspace/map"))
    desk.fill("#username", username)
    desk.fill("#password", password)
    desk.get_by_role("button", name="登录 Sign in").click()
    expect(desk.locator("circle.anomaly")).to_have_count(2)
    expect(desk.locator("svg.map path")).to_have_count(6)  # Changzhou's districts
    screenshot(desk, "map")
    dot = desk.locator(f'circle[data-anomaly="{inside}"]').bounding_box()
    x, y = dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2
    desk.mouse.move(x - 30, y - 30)
    desk.mouse.down()
    desk.mouse.move(x + 30, y + 30, steps=5)
    desk.mouse.up()
    desk.wait_for_url("**min_lon=**")
    expect(desk.locator("circle.anomaly")).to_have_count(1)
    expect(desk.locator(f'circle[data-anomaly="{inside}"]')).to_be_visible()
    assert outside != inside
    screenshot(desk, "map-box")
