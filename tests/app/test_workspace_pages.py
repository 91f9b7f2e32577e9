"""The workspace as people read it (issue 15): Beijing time with the zone on every page and in
the typed filters, words instead of identifiers (Chinese, English on request), parties by
name, each finding's decision and reason on its row, evidence as a sentence, the CSV's names
and decisions, bilingual error pages, and the page of a code that was never issued."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest

from app.anomalies.findings import record_findings
from tests.app.test_events_api import ship
from tests.app.test_workspace import HTML, csrf, sign_in
from tracecore.anomalies import Finding
from tracecore.credit import Policy

#: 05:12 on 2 December in Beijing; still 1 December in UTC.
LATE_EVENING_UTC = datetime(2026, 12, 1, 21, 12, tzinfo=UTC)
#: 23:00 on 1 December in Beijing.
EVENING_UTC = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def regulator(client, make):
    """A regulator of Changzhou (3204), signed in."""
    return sign_in(client, *make.user("regulator", "3204", display_name="王监管"))


def found(app, *specs, at=LATE_EVENING_UTC) -> list[int]:
    """Findings detected at ``at``: (type, severity, subject, party, evidence)."""
    with app.extensions["trace"].sessionmaker() as s:
        made = record_findings(
            s,
            [
                Finding(t, sev, subject, (party,), evidence)
                for t, sev, subject, party, evidence in specs
            ],
            Policy(),
            at,
        )
        s.commit()
        by_key = {(a.type, a.subject): a.id for a in made}
        return [by_key[(t, str(subject[1]))] for t, _, subject, *_ in specs]


def row(html: str, anomaly_id: int) -> str:
    return re.search(rf'<tr data-anomaly="{anomaly_id}".*?</tr>', html, re.S).group(0)


# -- one clock ----------------------------------------------------------------------------------


def test_a_finding_stored_late_in_the_utc_evening_shows_the_next_morning_in_beijing(
    app, regulator, make
):
    """Does the queue show a finding detected at 2026-12-01T21:12Z as 05:12 on the 2nd,
    Beijing time, with the zone said?"""
    m = make.merchant()
    (a,) = found(app, ("brushing", "serious", ("merchant", m), ("merchant", m), {}))
    html = regulator.get("/workspace/anomalies", headers=HTML).text
    assert "2026-12-02 05:12 北京时间" in row(html, a)
    assert "2026-12-01 21:12" not in html


def test_typed_dates_are_beijing_days_and_until_includes_its_day(app, regulator, make):
    """ "Since 2026-12-02" holds what happened from midnight in Beijing on the 2nd, and
    "until 2026-12-01" everything of the 1st in Beijing, its evening included."""
    m = make.merchant()
    (evening,) = found(
        app, ("brushing", "serious", ("merchant", m), ("merchant", m), {}), at=EVENING_UTC
    )
    (morning,) = found(app, ("expired_sale", "major", ("code", "S1"), ("merchant", m), {}))

    def listed(**query):
        html = regulator.get("/workspace/anomalies", query_string=query, headers=HTML).text
        return {int(i) for i in re.findall(r'<tr data-anomaly="(\d+)"', html)}

    assert listed(since="2026-12-02") == {morning}
    assert listed(until="2026-12-01") == {evening}
    assert listed(since="2026-12-01", until="2026-12-02") == {evening, morning}


def test_histories_show_beijing_time_and_the_api_keeps_rfc_3339(regulator, world, make):
    ship(world)  # shelved at 2026-11-20T09:00Z: 17:00 in Beijing
    html = regulator.get(f"/workspace/codes/{world['serials'][0]}", headers=HTML).text
    assert "2026-11-20 17:00:00 北京时间" in html and "T09:00:00Z" not in html
    parcel = regulator.get("/workspace/parcels/SF1234567890", headers=HTML).text
    assert "北京时间" in parcel and "Z</td>" not in parcel
    api = regulator.get(
        f"/api/v1/codes/{world['serials'][0]}/history", headers=make.auth("regulator")
    ).get_json()
    assert api["events"][0]["time"] == "2026-11-20T09:00:00Z"


# -- words, not identifiers ----------------------------------------------------------------------


def test_the_queue_names_types_states_and_parties_in_chinese_or_english(app, regulator, make):
    company = make.company(name="顺达快递")
    courier = make.courier(company, name="李四")
    m = make.merchant(name="好味食品店")
    a, b = found(
        app,
        ("empty_parcel", "serious", ("waybill", "SF1"), ("courier", courier), {}),
        ("late_delivery", "minor", ("waybill", "SF2"), ("logistics_company", company), {}),
    )
    (c,) = found(app, ("expired_sale", "major", ("code", "S9"), ("merchant", m), {}))
    html = regulator.get("/workspace/anomalies", headers=HTML).text
    assert "空包" in row(html, a) and "严重" in row(html, a) and "待处理" in row(html, a)
    assert "李四" in row(html, a) and "courier #" not in html
    assert "顺达快递" in row(html, b) and "好味食品店" in row(html, c)
    assert "延误送达" in row(html, b) and ">late_delivery<" not in html
    english = regulator.get("/workspace/anomalies?lang=en", headers=HTML).text
    assert "Empty parcel" in row(english, a) and "Open" in row(english, a)
    assert '<html lang="en">' in english and '<html lang="zh-CN">' in html
    # the filter and the search keep the language asked for
    for form in ("queue-filters", "search"):
        kept = re.search(rf'<form[^>]*(id="{form}"|role="{form}").*?</form>', english, re.S)
        assert '<input type="hidden" name="lang" value="en">' in kept.group(0)
    assert 'name="lang"' not in html
    browser = regulator.get(
        "/workspace/anomalies", headers=HTML | {"Accept-Language": "en-US,en;q=0.8"}
    ).text
    assert "Late delivery" in row(browser, b)


def test_a_decision_shows_on_its_row_with_reason_and_decider_and_says_it_was_made(
    app, regulator, make
):
    m = make.merchant()
    (a,) = found(app, ("expired_sale", "major", ("code", "S1"), ("merchant", m), {}))
    resp = regulator.post(
        f"/workspace/anomalies/{a}/decision",
        data={"decision": "dismiss", "reason": "门店已证明日期无误", "csrf_token": csrf(regulator)},
        follow_redirects=True,
        headers=HTML,
    )
    assert f"异常 #{a} 已驳回" in resp.text  # the flash message, once
    shown = row(regulator.get("/workspace/anomalies", headers=HTML).text, a)
    assert "驳回" in shown and "门店已证明日期无误" in shown and "王监管" in shown
    assert "北京时间" in shown
    again = regulator.get("/workspace/anomalies", headers=HTML).text
    assert f"异常 #{a} 已驳回" not in again


def test_evidence_reads_as_a_sentence_with_its_events_linked(app, regulator, make):
    m = make.merchant()
    event = "0b6f8c2e-8d0a-4b7e-9c59-2f1f0f8f6a11"
    a, b = found(
        app,
        (
            "expired_sale",
            "serious",
            ("code", "S1"),
            ("merchant", m),
            {"event_ids": [event], "expires_on": "2026-11-01", "sold_on": "2026-11-20"},
        ),
        ("brushing", "serious", ("merchant", m), ("merchant", m), {"note": "旧格式", "n": 3}),
    )
    html = regulator.get("/workspace/anomalies", headers=HTML).text
    assert "2026-11-20 售出" in row(html, a) and "保质期至 2026-11-01" in row(html, a)
    assert f'href="/workspace/codes/S1#event-{event}"' in row(html, a)
    assert "note: 旧格式; n: 3" in row(html, b)
    assert "{&#34;" not in html and '{"' not in html  # never raw JSON
    code = regulator.get("/workspace/codes/S1", headers=HTML)  # never issued, but found
    assert code.status_code == 200


def test_the_csv_has_party_names_the_decision_its_reason_and_decider(app, regulator, make):
    m = make.merchant(name="好味食品店")
    a, b = found(
        app,
        ("expired_sale", "major", ("code", "S1"), ("merchant", m), {}),
        ("expired_sale", "major", ("code", "S2"), ("merchant", m), {}),
    )
    regulator.post(
        f"/workspace/anomalies/{a}/decision",
        data={"decision": "confirm", "reason": "抽检确认", "csrf_token": csrf(regulator)},
    )
    resp = regulator.get("/workspace/anomalies.csv")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[a]["party_name"] == "好味食品店" and by_id[a]["type_name"] == "销售过期商品"
    assert (by_id[a]["decision"], by_id[a]["reason"], by_id[a]["decider"]) == (
        "确认",
        "抽检确认",
        "王监管",
    )
    assert by_id[a]["detected_at"] == "2026-12-02T05:12:00+08:00"
    assert by_id[b]["decision"] == by_id[b]["reason"] == ""


# -- error pages and the code never issued -------------------------------------------------------


def test_error_pages_speak_chinese_and_english_and_the_api_keeps_its_shape(
    app, regulator, make, client
):
    missing = regulator.get("/workspace/codes/NOSUCHCODE00000", headers=HTML)
    assert missing.status_code == 404 and "找不到" in missing.text and "Not found" in missing.text
    there = make.merchant(region_code="441202", lat=23.05, lon=112.47)
    refused = regulator.get(f"/workspace/parties/merchant/{there}", headers=HTML)
    assert refused.status_code == 403 and "无权访问" in refused.text
    assert "Not allowed" in refused.text
    api = client.get("/api/v1/codes/NOSUCHCODE00000", headers={"Accept": "application/json"})
    assert api.status_code == 404 and set(api.get_json()) == {"error"}


def test_an_unknown_code_findings_subject_link_opens_a_page_that_says_so(
    app, regulator, make, outsider_factory
):
    m = make.merchant()
    (a,) = found(
        app,
        (
            "unknown_code",
            "serious",
            ("code", "FAKE0000000001"),
            ("merchant", m),
            {"code": "FAKE0000000001"},
        ),
    )
    html = regulator.get("/workspace/anomalies", headers=HTML).text
    link = re.search(r'href="(/workspace/codes/FAKE0000000001)"', row(html, a)).group(1)
    page = regulator.get(link, headers=HTML)
    assert page.status_code == 200 and "未登记的追溯码" in page.text
    assert f'data-anomaly="{a}"' in page.text
    assert outsider_factory().get(link, headers=HTML).status_code == 404


@pytest.fixture
def outsider_factory(app, make):
    """A regulator of Zhaoqing (4412), signed in on a client of its own."""
    return lambda: sign_in(app.test_client(), *make.user("regulator", "4412"))
