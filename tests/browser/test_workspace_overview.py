"""The workspace's overview, a party page and the recall flow in real headless Chromium on a
desktop, each photographed and checked by axe-core for serious accessibility violations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.anomalies.findings import record_findings
from app.credit.models import Anomaly
from tests.app.test_events_api import ship
from tests.browser.axe import serious_violations
from tracecore.anomalies import Finding
from tracecore.credit import Policy

pytestmark = [pytest.mark.slow, pytest.mark.committed, pytest.mark.viewport("desktop")]


def signed_in(page, live_server, make, path: str):
    username, password = make.user("regulator", "3204", display_name="常州监管员")
    page.goto(live_server.url_for(path))
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="登录 Sign in").click()
    expect(page.locator("nav.top")).to_contain_text("常州监管员")


def some_findings(app, world):
    now = datetime.now(UTC)
    with app.extensions["trace"].sessionmaker() as s:
        for days, type_, severity, subject in [
            (1, "late_delivery", "minor", ("waybill", "SF1")),
            (3, "late_delivery", "minor", ("waybill", "SF2")),
            (3, "expired_sale", "major", ("code", world["serials"][1])),
            (12, "unknown_code", "serious", ("code", "X1")),
        ]:
            record_findings(
                s,
                [Finding(type_, severity, subject, (("merchant", world["merchant"]),), {})],
                Policy(),
                now - timedelta(days=days),
            )
        s.commit()


def open_findings(app) -> int:
    with app.extensions["trace"].sessionmaker() as s:
        return s.scalar(
            sa.select(sa.func.count()).select_from(Anomaly).where(Anomaly.status == "open")
        )


def test_the_overview_reads_without_javascript_and_is_accessible(
    app, world, make, live_server, page, screenshot
):
    ship(world)
    some_findings(app, world)
    signed_in(page, live_server, make, "/workspace/")
    expect(page.locator("#open-signals")).to_have_text(str(open_findings(app)))
    expect(page.locator("#trend svg.chart rect[class^=series]").first).to_be_visible()
    expect(page.locator("#riskiest tbody tr").first).to_contain_text("-")
    screenshot(page, "overview")
    assert serious_violations(page) == []


def test_a_merchants_page_links_everything_and_is_accessible(
    app, world, make, live_server, page, screenshot
):
    ship(world)
    some_findings(app, world)
    signed_in(page, live_server, make, f"/workspace/parties/merchant/{world['merchant']}")
    expect(page.locator("#credit-history svg.chart")).to_be_visible()
    page.locator("#batches a").first.click()
    expect(page.locator("#batch-status")).to_contain_text("正常")
    page.go_back()
    screenshot(page, "merchant")
    assert serious_violations(page) == []


def test_a_recall_shows_its_impact_then_its_reach(world, make, live_server, page, screenshot):
    ship(world)
    signed_in(page, live_server, make, f"/workspace/batches/{world['batch']}")
    page.fill("#recall-reason", "包装密封不良 Bad seal")
    page.get_by_role("button", name="召回该批次… Recall this batch…").click()
    expect(page.locator("#impact-units")).to_have_text("3")
    expect(page.locator("#impact-district")).to_contain_text("钟楼区")
    screenshot(page, "impact")
    assert serious_violations(page) == []
    page.get_by_role("button", name="确认召回").click()
    expect(page.locator("#recall-status")).to_contain_text("已召回")
    expect(page.locator("#reach-share")).to_have_text("0%")
    expect(page.locator("#reach-chart svg.chart")).to_be_visible()
    screenshot(page, "reach")
    assert serious_violations(page) == []
