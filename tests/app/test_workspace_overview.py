"""The workspace as a working tool (issue 15): the overview home page, party pages that
answer questions, recall with an impact step and its reach, a map that says what it draws."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.anomalies.findings import record_findings
from app.catalog.models import Batch
from app.consumer.models import Verification
from app.credit.models import Anomaly, Appeal, CreditRecord
from app.workspace import maps, overview
from tests.app.test_events_api import T0, ship
from tests.app.test_workspace import HTML, csrf, sign_in
from tracecore.anomalies import Finding
from tracecore.credit import Policy

NOW = T0 + timedelta(days=1)  # the world's events happen on T0


@pytest.fixture
def regulator(client, make):
    """A regulator of Changzhou (3204), signed in."""
    return sign_in(client, *make.user("regulator", "3204"))


@pytest.fixture
def outsider(app, make):
    """A regulator of Zhaoqing (4412), signed in on another client."""
    return sign_in(app.test_client(), *make.user("regulator", "4412"))


@pytest.fixture
def fixed_now(monkeypatch):
    monkeypatch.setattr(overview, "clock", lambda: NOW)
    return NOW


def found(session, at: datetime, *specs) -> list[int]:
    """Open findings detected at ``at``: (type, severity, subject, party)."""
    made = record_findings(
        session,
        [Finding(t, sev, subject, (party,), {}) for t, sev, subject, party in specs],
        Policy(),
        at,
    )
    session.commit()
    return [a.id for a in made]


def section(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"(.*?)</(section|table|ul)>', html, re.S)
    assert match, f"no #{element_id}"
    return match.group(1)


def cells(text: str) -> list[list[str]]:
    """The text of each body row's cells (header rows left out)."""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", text, re.S):
        found = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        if "<td" in row:
            rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in found])
    return rows


# -- the overview ----------------------------------------------------------------------------


def test_the_overview_counts_open_signals_by_age_against_the_working_day_clock(
    regulator, outsider, make, session, fixed_now
):
    """Are open findings counted by severity and by working days since detection, with those
    past the 7-working-day clock apart, and only inside the jurisdiction?"""
    m = make.merchant()
    far = make.merchant(region_code="441202")
    found(
        session,
        NOW - timedelta(hours=1),
        ("late_delivery", "minor", ("waybill", "W1"), ("merchant", m)),
    )
    found(
        session, NOW - timedelta(days=5), ("expired_sale", "major", ("code", "S1"), ("merchant", m))
    )
    found(
        session,
        NOW - timedelta(days=20),
        ("unknown_code", "serious", ("code", "S2"), ("merchant", m)),
    )
    found(session, NOW, ("brushing", "major", ("merchant", far), ("merchant", far)))
    html = regulator.get("/workspace/", headers=HTML).text
    assert re.search(r'id="open-signals">3<', html)
    ages = dict(cells(section(html, "backlog-age")))
    # 5 calendar days back from Saturday 21 Nov: Monday 16th, 4 working days ago.
    assert ages == {"0–2": "1", "3–7": "1", ">7": "1"}
    assert 'class="overdue" data-age="&gt;7"' in html
    theirs = outsider.get("/workspace/", headers=HTML).text
    assert re.search(r'id="open-signals">1<', theirs)


def test_the_overview_counts_appeals_and_decisions_in_their_response_period(
    regulator, make, session, fixed_now
):
    m = make.merchant()
    appealed, confirmed = found(
        session,
        NOW - timedelta(days=1),
        ("late_delivery", "minor", ("waybill", "W1"), ("merchant", m)),
        ("late_delivery", "minor", ("waybill", "W2"), ("merchant", m)),
    )
    session.add(
        Appeal(
            anomaly_id=appealed, statement="快递延误非我方原因", created_at=NOW - timedelta(days=14)
        )
    )
    a = session.get(Anomaly, confirmed)
    a.status, a.decided_at, a.final_at = "confirmed", NOW, datetime.now(UTC) + timedelta(days=9)
    session.commit()
    waiting = section(regulator.get("/workspace/", headers=HTML).text, "decisions-waiting")
    assert re.search(r"Appeals to decide: <strong>1</strong>", waiting)
    assert "over the clock: 1" in waiting
    assert re.search(r"not public yet\): <strong>1</strong>", waiting)


def test_the_overview_charts_findings_per_day_by_type_for_30_or_90_days(
    regulator, make, session, fixed_now
):
    m = make.merchant()
    found(
        session,
        NOW - timedelta(days=2),
        ("late_delivery", "minor", ("waybill", "W1"), ("merchant", m)),
    )
    found(
        session,
        NOW - timedelta(days=2),
        ("late_delivery", "minor", ("waybill", "W2"), ("merchant", m)),
    )
    found(
        session,
        NOW - timedelta(days=60),
        ("expired_sale", "major", ("code", "S1"), ("merchant", m)),
    )
    month = regulator.get("/workspace/", headers=HTML).text
    assert dict(cells(section(month, "by-type"))) == {"延误送达": "2"}
    chart = section(month, "trend")
    assert '<svg class="chart"' in chart and "<title>11-19 延误送达: 2</title>" in chart
    quarter = regulator.get("/workspace/?days=90", headers=HTML).text
    assert dict(cells(section(quarter, "by-type"))) == {"延误送达": "2", "销售过期商品": "1"}


def test_the_overview_gives_findings_per_10000_events_by_district(
    regulator, world, session, fixed_now
):
    """Findings of a district (by the responsible party's) over its parties' events."""
    ship(world)  # 7 events: 3 by the merchant (320411), 4 by the courier (320411)
    found(
        session,
        NOW,
        ("late_delivery", "minor", ("waybill", "SF1234567890"), ("merchant", world["merchant"])),
    )
    n = session.scalar(
        sa.select(sa.func.count()).select_from(Anomaly).where(Anomaly.region_code == "320411")
    )
    html = regulator.get("/workspace/", headers=HTML).text
    rows = {r[0]: r[1:] for r in cells(section(html, "district-table"))}
    assert rows["常州市新北区"] == [str(n), "7", f"{n * 10_000 / 7:.1f}"]
    assert 'class="level-5" data-region="320411"' in html
    assert '<a href="/workspace/anomalies?region_code=320411"><path class="level-5"' in html


def test_the_overview_lists_the_riskiest_and_the_lowest_graded_parties(
    regulator, make, session, fixed_now
):
    risky, sanctioned, clean = (
        make.merchant(name="风险店"),
        make.merchant(name="失信店"),
        make.merchant(),
    )
    found(
        session,
        NOW,
        ("unknown_code", "serious", ("code", "S1"), ("merchant", risky)),
        ("expired_sale", "major", ("code", "S2"), ("merchant", risky)),
        ("late_delivery", "minor", ("waybill", "W1"), ("merchant", clean)),
    )
    at = datetime.now(UTC) - timedelta(days=30)
    session.add(
        CreditRecord(
            party_type="merchant",
            party_id=sanctioned,
            kind="sanction",
            points=-150,
            reason="虚假宣传",
            effective_at=at,
            created_at=at,
            public_from=at + timedelta(days=9),
        )
    )
    session.commit()
    html = regulator.get("/workspace/", headers=HTML).text
    riskiest = cells(section(html, "riskiest"))
    assert riskiest[0][0].startswith("风险店") and riskiest[0][1:] == ["2", "-160"]
    assert riskiest[1][1:] == ["1", "-10"]
    lowest = cells(section(html, "lowest"))
    assert len(lowest) == 1 and lowest[0][0].startswith("失信店") and lowest[0][1] == "C"


def test_the_overview_shows_recalls_with_the_share_of_units_reached(
    regulator, world, session, fixed_now
):
    ship(world)
    recall(regulator, world["batch"])
    recalled_at = session.get(Batch, world["batch"]).recalled_at
    session.add(
        Verification(
            serial=world["serials"][0],
            client_hash="c" * 64,
            verified_at=recalled_at + timedelta(minutes=5),
            new_client=True,
        )
    )
    session.commit()
    html = section(regulator.get("/workspace/", headers=HTML).text, "recalls")
    assert f"/workspace/batches/{world['batch']}/recall" in html and "33% (1/3)" in html


def test_the_overview_masks_couriers_names(regulator, world, session, fixed_now):
    found(
        session, NOW, ("late_delivery", "minor", ("waybill", "W1"), ("courier", world["courier"]))
    )
    html = section(regulator.get("/workspace/", headers=HTML).text, "riskiest")
    name = re.search(r'/workspace/parties/courier/\d+">([^<]+)<', html).group(1)
    assert "*" in name


# -- party pages -----------------------------------------------------------------------------


def test_a_merchants_page_lists_products_batches_devices_complaints_and_credit_history(
    regulator, world, make
):
    ship(world)
    html = regulator.get(f"/workspace/parties/merchant/{world['merchant']}", headers=HTML).text
    assert f'href="/workspace/batches/{world["batch"]}"' in section(html, "batches")
    assert "/workspace/search?q=" in section(html, "products")
    devices = section(html, "devices")
    assert world["shelf"].device_id in devices and world["pos"].device_id in devices
    history = section(html, "credit-history")
    assert '<svg class="chart"' in history and history.count("<circle") == 13
    assert "未签署 not signed" in section(html, "commitment")


def test_a_companys_page_lists_its_couriers_with_their_findings(regulator, world, session):
    found(
        session, NOW, ("late_delivery", "minor", ("waybill", "W1"), ("courier", world["courier"]))
    )
    html = regulator.get(
        f"/workspace/parties/logistics_company/{world['company']}", headers=HTML
    ).text
    rows = cells(section(html, "couriers"))
    assert len(rows) == 1 and rows[0][2:] == ["1", "1"]
    assert f'href="/workspace/parties/courier/{world["courier"]}"' in html


def test_a_couriers_page_links_its_company_parcels_and_handhelds(regulator, world):
    ship(world)
    html = regulator.get(f"/workspace/parties/courier/{world['courier']}", headers=HTML).text
    assert f'href="/workspace/parties/logistics_company/{world["company"]}"' in section(
        html, "company"
    )
    assert 'href="/workspace/parcels/SF1234567890"' in section(html, "parcels")
    assert world["handheld"].device_id in section(html, "devices")


def test_custody_rows_and_events_link_to_the_holders_pages(regulator, world):
    ship(world)
    html = regulator.get(f"/workspace/codes/{world['serials'][0]}", headers=HTML).text
    custody = section(html, "custody")
    assert f"/workspace/parties/merchant/{world['merchant']}" in custody
    assert f"/workspace/parties/courier/{world['courier']}" in custody
    parcel_page = regulator.get("/workspace/parcels/SF1234567890", headers=HTML).text
    assert f"/workspace/parties/courier/{world['courier']}" in section(parcel_page, "custody")
    # and each event's reporting party, in both histories
    for page in (html, parcel_page):
        events = "".join(re.findall(r'<tr id="event-.*?</tr>', page, re.S))
        assert f'href="/workspace/parties/courier/{world["courier"]}"' in events
    assert f'href="/workspace/parties/merchant/{world["merchant"]}"' in "".join(
        re.findall(r'<tr id="event-.*?</tr>', html, re.S)
    )


# -- recall with care ------------------------------------------------------------------------


def recall(client, batch: int):
    form = {"reason": "标签错误", "csrf_token": csrf(client), "confirmed": "yes"}
    assert client.post(f"/workspace/batches/{batch}/recall", data=form).status_code == 303


def test_a_recall_first_shows_its_impact_and_recalls_nothing(regulator, world, session):
    """Does the first post show units by state, by district and their holders, and leave
    the batch as it was?"""
    ship(world)
    s = world["shelf"]
    s.post(s.event("shelved", 5, code=world["serials"][1]))
    form = {"reason": "标签错误", "csrf_token": csrf(regulator)}
    html = regulator.post(f"/workspace/batches/{world['batch']}/recall", data=form).text
    assert re.search(r'id="impact-units">3<', html)
    rows = re.findall(
        r'<tr data-state="(\w+)"><td>(.*?)</td><td>(\d+)</td>', section(html, "impact-state")
    )
    assert {state: n for state, _, n in rows} == {"signed": "1", "shelved": "1", "issued": "1"}
    assert {state: name for state, name, _ in rows}["signed"] == "已签收"  # named, no identifier
    districts = dict(cells(section(html, "impact-district")))
    # Scanned units where they were last scanned (the shelf and the doorstep: Zhonglou), the
    # unit never scanned at its merchant's registered district (Xinbei).
    assert districts == {"常州市钟楼区": "2", "常州市新北区": "1"}
    holders = cells(section(html, "impact-holders"))
    assert holders == [[f"经营者 {name_of(session, world['merchant'])}", "2"]]
    assert session.get(Batch, world["batch"]).status.value == "active"


def name_of(session, merchant_id: int) -> str:
    from app.parties.models import Merchant

    return session.get(Merchant, merchant_id).name


def test_a_recall_needs_a_reason_before_the_impact(regulator, world):
    resp = regulator.post(
        f"/workspace/batches/{world['batch']}/recall",
        data={"reason": " ", "csrf_token": csrf(regulator)},
    )
    assert resp.status_code == 422 and "reason" in resp.text


def test_after_a_recall_its_reach_is_shown(regulator, world, session):
    """Reached: a consumer checked the code after the recall; the rest by where they are."""
    ship(world)
    recall(regulator, world["batch"])
    recalled_at = session.get(Batch, world["batch"]).recalled_at
    session.add_all(
        [
            Verification(
                serial=world["serials"][0],
                client_hash="a" * 64,
                verified_at=recalled_at - timedelta(days=1),
            ),
            Verification(
                serial=world["serials"][1],
                client_hash="b" * 64,
                verified_at=recalled_at + timedelta(hours=2),
            ),
        ]
    )
    session.commit()
    html = regulator.get(f"/workspace/batches/{world['batch']}/recall", headers=HTML).text
    assert re.search(r'id="reach-share">33%<', html)
    reach = dict(
        (r[0], r[1])
        for r in cells(section(html, "reach").replace("<th", "<td").replace("</th>", "</td>"))
    )
    assert reach["消费者召回后扫码获知 Consumers told (checked the code since)"] == "1"
    assert reach["未触达，在消费者手中 with consumers · not reached"] == "1"  # the signed one
    assert reach["未触达，在库或在架 on shelves · not reached"] == "1"
    assert '<svg class="chart"' in section(html, "reach-chart")


# -- the map ---------------------------------------------------------------------------------


def test_map_points_link_to_their_history_and_say_how_many_are_drawn(regulator, world, monkeypatch):
    ship(world)
    html = regulator.get("/workspace/map?city=3204&days=90", headers=HTML).text
    assert '<a href="/workspace/parcels/SF1234567890"><circle class="event"' in html
    assert f'<a href="/workspace/codes/{world["serials"][0]}"><circle class="event"' in html
    assert "Events: 7 drawn of 7" in html
    monkeypatch.setattr(maps, "MAX_EVENTS", 2)
    html = regulator.get("/workspace/map?city=3204&days=90", headers=HTML).text
    assert "Events: 2 drawn of 7 (最新的 the newest" in html


def test_a_kept_count_is_served_while_it_is_counted_again_in_the_background(monkeypatch):
    """Is a fresh value served as kept, an old one served at once while one background
    count (in a session of its own) replaces it, a failed count leaving the old one, and
    a maximum age of 0 counting in the request?"""
    import contextlib
    import threading
    import time

    kept = overview.Kept()
    clock = [1000.0]
    monkeypatch.setattr(overview.time, "time", lambda: clock[0])
    request_session, own_sessions, used = object(), [], {}
    counted = threading.Event()

    @contextlib.contextmanager
    def sessions():
        own_sessions.append(object())
        yield own_sessions[-1]

    def count(value):
        def compute(session):
            used[value] = session
            counted.set()
            return value

        return compute

    assert kept.get(("events",), 600, count(1), request_session, sessions) == (1, 1000.0)
    clock[0] = 1599.0  # fresh: kept, nothing counted
    assert kept.get(("events",), 600, count(2), request_session, sessions) == (1, 1000.0)
    counted.clear()
    clock[0] = 1600.0  # old: still served, counted again in the background
    assert kept.get(("events",), 600, count(3), request_session, sessions) == (1, 1000.0)
    assert counted.wait(5)
    for _ in range(100):
        if kept.get(("events",), 600, count(4), request_session, None)[0] == 3:
            break
        time.sleep(0.01)
    assert kept.get(("events",), 600, count(4), request_session, None) == (3, 1600.0)
    assert len(own_sessions) == 1

    def broken(session):
        raise RuntimeError("the database went away")

    clock[0] = 2300.0
    assert kept.get(("events",), 600, broken, request_session, sessions)[0] == 3
    for _ in range(100):  # the failed refresh ends; the old value stays
        if not kept._refreshing:
            break
        time.sleep(0.01)
    assert kept.get(("events",), 600, count(5), request_session, None)[0] == 3
    assert kept.get(("events",), 0, count(6), request_session, sessions) == (6, 2300.0)
    assert used == {1: request_session, 3: own_sessions[0], 6: request_session}


def test_party_code_and_audit_pages_name_kinds_reasons_and_parties_in_words(
    app, regulator, make, world, session
):
    """Do the party page (devices, risk by severity, a finding's credit record), the code
    page (a complaint's category and party) and the audit trail (a decision, its target)
    read in words, Chinese by default and English under ?lang=en, with no identifier?"""
    from app.feedback.models import Complaint
    from tests.app.test_workspace import sign_in

    ship(world)
    found(
        session, NOW, ("late_delivery", "major", ("waybill", "W1"), ("merchant", world["merchant"]))
    )
    session.add(
        Complaint(
            serial=world["serials"][0],
            category="quality",
            text="包装破损",
            party_type="merchant",
            party_id=world["merchant"],
            client_hash="0" * 64,
        )
    )
    session.commit()
    party = f"/workspace/parties/merchant/{world['merchant']}"
    zh, en = (regulator.get(party, query_string=q, headers=HTML).text for q in ({}, {"lang": "en"}))
    assert "货架扫码器" in section(zh, "devices") and "Shelf scanner" in section(en, "devices")
    assert "较重 1" in zh and "Major 1" in en
    assert "延误送达 (运单 W1)" in zh and "Late delivery (Waybill W1)" in en
    for page in (zh, en):
        for identifier in ("shelf_scanner", "pos_scanner", "late_delivery (", "major 1"):
            assert identifier not in page
    code = regulator.get(f"/workspace/codes/{world['serials'][0]}", headers=HTML).text
    merchant = name_of(session, world["merchant"])
    row = re.search(r"<td>包装破损</td>.*?</tr>", code, re.S)
    assert "质量问题" in code and merchant in row.group(0) and "商家 #" not in row.group(0)
    anomaly = session.scalars(sa.select(Anomaly).where(Anomaly.subject == "W1")).one()
    decide = {"decision": "dismiss", "reason": "补传", "csrf_token": csrf(regulator)}
    regulator.post(f"/workspace/anomalies/{anomaly.id}/decision", data=decide)
    admin = sign_in(app.test_client(), *make.user("admin"))
    trail = section(
        admin.get("/workspace/audit", query_string={"lang": "en"}, headers=HTML).text, "decisions"
    )
    assert "Finding dismissed" in trail and f"Finding {anomaly.id}" in trail
    assert "anomaly.dismiss" not in trail
