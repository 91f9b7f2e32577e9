"""The anomaly queue's bulk decisions in real headless Chromium on a desktop: ticked rows,
then a filter, each decided with one reason after a confirmation that says how many;
photographed and checked by axe-core for serious accessibility violations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.credit.models import Anomaly
from tests.app.test_events_api import ship
from tests.browser.axe import serious_violations
from tests.browser.test_workspace_overview import signed_in, some_findings

pytestmark = [pytest.mark.slow, pytest.mark.committed, pytest.mark.viewport("desktop")]


def statuses(app) -> dict[str, str]:
    """Each finding's status by its type and subject."""
    with app.extensions["trace"].sessionmaker() as s:
        return {f"{a.type} {a.subject}": a.status for a in s.scalars(sa.select(Anomaly))}


def ids_of(app, type_: str) -> list[int]:
    with app.extensions["trace"].sessionmaker() as s:
        return list(s.scalars(sa.select(Anomaly.id).where(Anomaly.type == type_)))


def test_a_regulator_decides_ticked_rows_then_a_filter_with_one_reason(
    app, world, make, live_server, page, screenshot
):
    ship(world)
    some_findings(app, world)
    signed_in(page, live_server, make, "/workspace/anomalies?status=open")
    before = statuses(app)
    expect(page.locator("table.anomalies tbody tr")).to_have_count(len(before))
    expired, unknown = ids_of(app, "expired_sale")[0], ids_of(app, "unknown_code")[0]

    # By row: tick two, one reason, confirm… → the count → confirm → each row says so.
    page.locator(f"#pick-{expired}").check()
    page.locator(f"#pick-{unknown}").check()
    page.locator("#bulk-decision summary").click()
    expect(page.locator("#scope-rows")).to_be_checked()
    page.fill("#bulk-reason", "现场核查属实 Checked on site")
    screenshot(page, "ticked")
    assert serious_violations(page) == []
    page.get_by_role("button", name="确认 Confirm…").click()
    expect(page.locator("#bulk-count strong").first).to_have_text("2")
    expect(page.locator("#bulk-rows")).to_contain_text(f"#{expired}")
    screenshot(page, "rows-confirm")
    assert serious_violations(page) == []
    page.get_by_role("button", name="确定处理 2 条").click()
    expect(page.locator("p.notice")).to_contain_text("2 findings confirmed")
    for i in (expired, unknown):
        row = page.locator(f'tr[data-anomaly="{i}"]')
        expect(row.locator("td.decision")).to_contain_text("现场核查属实 Checked on site")
        expect(row).to_have_attribute("data-status", "confirmed")
    assert statuses(app)[f"expired_sale {world['serials'][1]}"] == "confirmed"
    late = [k for k in before if k.startswith("late_delivery")]
    assert [statuses(app)[k] for k in late] == ["open"] * len(late)

    # By filter: the late deliveries, dismissed in one go.
    page.goto(live_server.url_for("/workspace/anomalies?type=late_delivery&status=open"))
    page.locator("#bulk-decision summary").click()
    page.locator("#scope-filter").check()
    page.fill("#bulk-reason", "设备离线补传 Late upload")
    page.get_by_role("button", name="驳回 Dismiss…").click()
    expect(page.locator("#bulk-count strong").first).to_have_text(str(len(late)))
    page.get_by_role("button", name=f"确定处理 {len(late)} 条").click()
    expect(page.locator("p.notice")).to_contain_text(f"{len(late)} findings dismissed")
    rows = page.locator("table.anomalies tbody tr")
    expect(rows).to_have_count(len(late))
    for n in range(len(late)):
        expect(rows.nth(n).locator("td.decision")).to_contain_text("设备离线补传 Late upload")
        expect(rows.nth(n)).to_have_attribute("data-status", "dismissed")
    screenshot(page, "decided")
    assert serious_violations(page) == []
    after = statuses(app)
    assert {after[k] for k in late} == {"dismissed"}
    assert {k for k, v in after.items() if v == "open"} == set(before) - set(late) - {
        f"expired_sale {world['serials'][1]}",
        "unknown_code X1",
    }
