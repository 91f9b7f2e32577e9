"""The regulator's workspace: sign-in and sessions, jurisdiction, the anomaly queue, the
map's spatial filters, recalls, credit actions, exports, search and the access log."""

import csv
import io
import re
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.accesslog.models import AccessEntry
from app.anomalies.findings import record_findings
from app.auth.models import User
from app.credit.models import Anomaly, AuditEntry
from tests.app.conftest import post_sign_in
from tests.app.test_events_api import ship
from tracecore.anomalies import Finding
from tracecore.credit import Policy

HTML = {"Accept": "text/html"}


def sign_in(client, username, password):
    resp = post_sign_in(client, {"username": username, "password": password}, headers=HTML)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def csrf(client) -> str:
    html = client.get("/workspace/", headers=HTML).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def regulator(client, make):
    """A regulator of Changzhou (3204), signed in."""
    return sign_in(client, *make.user("regulator", "3204"))


@pytest.fixture
def outsider(app, make):
    """A regulator of Zhaoqing (4412), signed in on another client."""
    return sign_in(app.test_client(), *make.user("regulator", "4412"))


def findings(app, *specs):
    """Anomalies straight from findings: (type, severity, subject, party, lat, lon)."""
    with app.extensions["trace"].sessionmaker() as s:
        made = record_findings(
            s,
            [
                Finding(t, sev, subject, (party,), {"lat": lat, "lon": lon})
                for t, sev, subject, party, lat, lon in specs
            ],
            Policy(),
            datetime.now(UTC),
        )
        s.commit()
        by_key = {(a.type, a.subject): a.id for a in made}
        return [by_key[(t, str(subject[1]))] for t, _, subject, *_ in specs]


# -- signing in ---------------------------------------------------------------------------------


def test_pages_need_a_signed_in_regulator(client, make):
    resp = client.get("/workspace/anomalies", headers=HTML)
    assert resp.status_code == 302 and "/workspace/sign-in" in resp.headers["Location"]
    assert client.post("/workspace/batches/1/recall", data={}).status_code == 401


def test_a_wrong_password_is_refused_and_logged(client, make, session):
    username, _ = make.user("regulator")
    resp = post_sign_in(client, {"username": username, "password": "wrong password!"})
    assert resp.status_code == 401 and "Wrong username or password" in resp.text
    entry = session.scalars(sa.select(AccessEntry)).one()
    assert (entry.action, entry.target_id) == ("sign_in_failed", username)


def test_the_sign_in_form_carries_and_checks_its_anti_forgery_token(client, make):
    """Is a sign-in posted without the form's token (another site signing a browser in to an
    account of its choosing) refused, and the one read from the form accepted?"""
    username, password = make.user("regulator")
    form = client.get("/workspace/sign-in", headers=HTML).text
    assert re.search(r'name="csrf_token" value="[^"]+"', form)
    forged = client.post(
        "/workspace/sign-in", data={"username": username, "password": password}, headers=HTML
    )
    assert forged.status_code == 400 and "表单已过期" in forged.text
    assert client.get("/workspace/", headers=HTML).status_code == 302  # not signed in
    api = client.post("/workspace/sign-in", data={"username": username, "password": password})
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "bad_form_token"
    assert post_sign_in(client, {"username": username, "password": password}).status_code == 302


def test_passwords_are_stored_as_scrypt_hashes(make, session):
    username, password = make.user("regulator")
    stored = session.scalar(sa.select(User.password_hash).where(User.username == username))
    assert stored.startswith("scrypt:") and password not in stored


def test_merchants_cannot_use_the_workspace(client, make):
    username, password = make.user("merchant", party_id=make.merchant())
    resp = post_sign_in(client, {"username": username, "password": password})
    assert resp.status_code == 401


def test_the_session_cookie_is_httponly_and_samesite(client, make):
    username, password = make.user("regulator")
    resp = post_sign_in(client, {"username": username, "password": password})
    cookie = next(v for k, v in resp.headers.items() if k == "Set-Cookie" and "trace_session" in v)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_an_idle_session_ends(regulator):
    assert regulator.get("/workspace/", headers=HTML).status_code == 200
    with regulator.session_transaction() as s:
        s["seen_at"] = int(time.time()) - 31 * 60
    resp = regulator.get("/workspace/", headers=HTML)
    assert resp.status_code == 302 and "sign-in" in resp.headers["Location"]


def test_a_form_without_the_session_token_is_refused(regulator, make):
    resp = regulator.post(
        f"/workspace/batches/{make.batch()}/recall", data={"reason": "x"}, headers=HTML
    )
    assert resp.status_code == 400


def test_sign_in_never_redirects_off_site(client, make):
    username, password = make.user("regulator")
    resp = post_sign_in(
        client,
        {"username": username, "password": password},
        path="/workspace/sign-in?next=//evil.example/x",
    )
    assert resp.headers["Location"].endswith("/workspace/")


# -- the anomaly queue and jurisdiction ---------------------------------------------------------


def test_the_queue_shows_only_the_jurisdiction_and_filters(app, regulator, outsider, make):
    here = make.merchant(region_code="320411")
    there = make.merchant(region_code="441202", lat=23.05, lon=112.47)
    a, b, c = findings(
        app,
        ("expired_sale", "major", ("code", "S1"), ("merchant", here), 31.83, 119.97),
        ("brushing", "serious", ("merchant", here), ("merchant", here), 31.78, 119.98),
        ("expired_sale", "major", ("code", "S2"), ("merchant", there), 23.05, 112.47),
    )
    html = regulator.get("/workspace/anomalies", headers=HTML).get_data(as_text=True)
    assert f'data-anomaly="{a}"' in html and f'data-anomaly="{b}"' in html
    assert f'data-anomaly="{c}"' not in html
    filtered = regulator.get(
        "/workspace/anomalies", query_string={"type": "brushing"}, headers=HTML
    ).get_data(as_text=True)
    assert f'data-anomaly="{b}"' in filtered and f'data-anomaly="{a}"' not in filtered
    theirs = outsider.get("/workspace/anomalies", headers=HTML).get_data(as_text=True)
    assert f'data-anomaly="{c}"' in theirs and f'data-anomaly="{a}"' not in theirs


def test_a_district_filter_is_a_spatial_query(app, regulator, make):
    """Xinbei (320411) holds one of the two points; the other is in Wujin."""
    m = make.merchant()
    inside, outside = findings(
        app,
        ("expired_sale", "major", ("code", "S1"), ("merchant", m), 31.83, 119.97),
        ("expired_sale", "major", ("code", "S2"), ("merchant", m), 31.70, 119.94),
    )
    html = regulator.get(
        "/workspace/anomalies", query_string={"district": "320411"}, headers=HTML
    ).get_data(as_text=True)
    assert f'data-anomaly="{inside}"' in html and f'data-anomaly="{outside}"' not in html
    box = {"min_lon": 119.90, "min_lat": 31.65, "max_lon": 119.99, "max_lat": 31.75}
    html = regulator.get("/workspace/map", query_string=box, headers=HTML).get_data(as_text=True)
    assert f'data-anomaly="{outside}"' in html and f'data-anomaly="{inside}"' not in html
    assert html.count("<path") == 6  # Changzhou's six districts, from the bundled boundaries


def test_confirming_an_anomaly_records_who_and_why(app, regulator, make, session):
    (a,) = findings(
        app, ("expired_sale", "major", ("code", "S1"), ("merchant", make.merchant()), 31.8, 119.9)
    )
    resp = regulator.post(
        f"/workspace/anomalies/{a}/decision",
        data={"decision": "confirm", "reason": "核实属实", "csrf_token": csrf(regulator)},
    )
    assert resp.status_code == 303
    assert session.get(Anomaly, a).status == "confirmed"
    entry = session.scalars(sa.select(AuditEntry)).one()
    assert entry.action == "anomaly.confirm" and entry.reason == "核实属实"
    assert entry.actor_user_id is not None


def test_a_regulator_cannot_act_outside_the_jurisdiction(app, outsider, make, session):
    m = make.merchant(region_code="320411")
    (a,) = findings(app, ("expired_sale", "major", ("code", "S1"), ("merchant", m), 31.8, 119.9))
    token = csrf(outsider)
    resp = outsider.post(
        f"/workspace/anomalies/{a}/decision",
        data={"decision": "dismiss", "reason": "x", "csrf_token": token},
        headers=HTML,
    )
    assert resp.status_code == 403 and session.get(Anomaly, a).status == "open"
    batch = make.batch(make.product(m))
    resp = outsider.post(
        f"/workspace/batches/{batch}/recall", data={"reason": "x", "csrf_token": token}
    )
    assert resp.status_code == 403
    assert outsider.get(f"/workspace/batches/{batch}", headers=HTML).status_code == 403
    assert outsider.get(f"/workspace/parties/merchant/{m}", headers=HTML).status_code == 403


def test_api_tokens_carry_a_jurisdiction_too(client, app, make):
    m = make.merchant(region_code="320411")
    (a,) = findings(app, ("expired_sale", "major", ("code", "S1"), ("merchant", m), 31.8, 119.9))
    from app.auth.operations import create_token

    with app.extensions["trace"].sessionmaker() as s:
        token = create_token(s, "regulator", jurisdiction="4412")[0]
        s.commit()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/anomalies", headers=auth).get_json()["items"] == []
    resp = client.post(
        f"/api/v1/anomalies/{a}/decision",
        json={"decision": "confirm", "reason": "x"},
        headers=auth,
    )
    assert resp.status_code == 403


def test_the_anomaly_csv_is_the_filtered_queue_and_safe_for_spreadsheets(app, regulator, make):
    m = make.merchant()
    findings(
        app,
        ("expired_sale", "major", ("code", "=HYPERLINK(1)"), ("merchant", m), 31.8, 119.9),
        ("brushing", "serious", ("merchant", m), ("merchant", m), 31.8, 119.9),
    )
    resp = regulator.get("/workspace/anomalies.csv", query_string={"type": "expired_sale"})
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["id", "type", "severity"] and len(rows) == 2
    assert rows[1][1] == "expired_sale" and rows[1][5] == "'=HYPERLINK(1)"


# -- recall, forward trace, credit ---------------------------------------------------------------


@pytest.mark.committed("postgresql")  # the scan: on PostgreSQL, connections of its own
def test_a_recall_from_the_button_reaches_the_consumer_page(client, regulator, world):
    ship(world)
    batch = world["batch"]
    html = regulator.get(f"/workspace/batches/{batch}", headers=HTML).get_data(as_text=True)
    assert 'id="recall-form"' in html and world["serials"][0] in html
    form = {"reason": "标签错误 Wrong label", "csrf_token": csrf(regulator)}
    asked = regulator.post(f"/workspace/batches/{batch}/recall", data=form)
    assert asked.status_code == 200 and 'id="recall-confirm"' in asked.text
    resp = regulator.post(f"/workspace/batches/{batch}/recall", data={**form, "confirmed": "yes"})
    assert resp.status_code == 303
    html = regulator.get(f"/workspace/batches/{batch}", headers=HTML).get_data(as_text=True)
    assert "已召回 Recalled" in html and "钟楼区" in html  # the signed unit's district
    public = client.get(f"/t/{world['serials'][0]}", headers={"Accept": "application/json"})
    assert [w["kind"] for w in public.get_json()["verdict"]["warnings"]] == ["recalled"]
    rows = regulator.get(f"/workspace/batches/{batch}/trace.csv").get_data(as_text=True)
    assert rows.count("\n") == 1 + 3 and "signed" in rows


def test_a_sanction_waits_for_its_response_period_on_the_party_page(regulator, make):
    """Does the party page show a new sanction as a decision not final yet: the public score
    unchanged, the outlook lowered, the final date given?"""
    m = make.merchant()
    before = regulator.get(f"/workspace/parties/merchant/{m}", headers=HTML).text
    assert "800" in before
    resp = regulator.post(
        f"/workspace/parties/merchant/{m}/records",
        data={"kind": "sanction", "reason": "虚假宣传", "csrf_token": csrf(regulator)},
    )
    assert resp.status_code == 303
    after = regulator.get(f"/workspace/parties/merchant/{m}", headers=HTML).text
    credit = re.search(r'<dd id="credit">(.*?)</dd>', after).group(1)
    outlook = re.search(r'<dd id="outlook">(.*?)</dd>', after).group(1)
    assert "800" in credit and "650" in outlook
    assert 'id="pending"' in after and "虚假宣传" in after


def test_the_party_page_shows_the_risk_indicator(app, regulator, make):
    """Are a party's open findings its risk indicator on the page, apart from its credit?"""
    m = make.merchant()
    findings(
        app,
        ("expired_sale", "major", ("code", "S1"), ("merchant", m), 31.8, 119.9),
        ("unknown_code", "serious", ("code", "S2"), ("merchant", m), 31.8, 119.9),
    )
    page = regulator.get(f"/workspace/parties/merchant/{m}", headers=HTML).text
    assert "800" in re.search(r'<dd id="credit">(.*?)</dd>', page).group(1)
    risk = re.search(r'<dd id="risk">(.*?)</dd>', page).group(1)
    assert risk.startswith("2 ") and "-160" in risk


def test_bulk_decision_from_the_queue_asks_how_many_then_decides(app, regulator, make, session):
    """From the queue filtered to one type, does the bulk form show how many open findings
    it takes, decide nothing until confirmed, then dismiss exactly those, each audited?"""
    m = make.merchant(region_code="320411")
    ids = findings(
        app,
        *[
            ("late_delivery", "minor", ("waybill", f"SF{n}"), ("merchant", m), 31.8, 119.9)
            for n in range(3)
        ],
        ("expired_sale", "major", ("code", "S1"), ("merchant", m), 31.8, 119.9),
    )
    queue = regulator.get(
        "/workspace/anomalies", query_string={"type": "late_delivery"}, headers=HTML
    ).text
    assert 'id="bulk-decision"' in queue and 'name="type" value="late_delivery"' in queue
    form = {"type": "late_delivery", "reason": "设备离线补传", "csrf_token": csrf(regulator)}
    asked = regulator.post("/workspace/anomalies/decisions", data={**form, "decision": "dismiss"})
    assert asked.status_code == 200
    assert "<strong>3</strong>" in re.search(r'<p id="bulk-count">(.*?)</p>', asked.text).group(1)
    assert {session.get(Anomaly, a).status for a in ids} == {"open"}
    done = regulator.post(
        "/workspace/anomalies/decisions",
        data={**form, "decision": "dismiss", "confirmed": "yes"},
    )
    assert done.status_code == 303 and "decided=3" in done.headers["Location"]
    session.expire_all()
    assert [session.get(Anomaly, a).status for a in ids] == ["dismissed"] * 3 + ["open"]
    audited = session.scalars(
        sa.select(AuditEntry.target_id).where(AuditEntry.action == "anomaly.dismiss")
    ).all()
    assert sorted(audited) == sorted(str(a) for a in ids[:3])
    without_token = regulator.post(
        "/workspace/anomalies/decisions", data={"type": "late_delivery", "decision": "dismiss"}
    )
    assert without_token.status_code in (400, 403)


def test_bulk_decision_of_ticked_rows_decides_those_and_shows_each_reason(
    app, regulator, make, session
):
    """Ticking two rows of the queue: does the bulk form ask about exactly those two, skip
    one already decided, decide nothing until confirmed, then show the decision and the
    one reason on each decided row while the unticked one stays open?"""
    m = make.merchant(region_code="320411")
    ids = findings(
        app,
        *[
            ("late_delivery", "minor", ("waybill", f"SF{n}"), ("merchant", m), 31.8, 119.9)
            for n in range(3)
        ],
    )
    queue = regulator.get("/workspace/anomalies", query_string={"status": "open"}, headers=HTML)
    for i in ids:
        assert f'name="ids" value="{i}" form="bulk"' in queue.text
    form = {
        "scope": "rows",
        "ids": [str(ids[0]), str(ids[2])],
        "decision": "confirm",
        "reason": "现场核实属实",
        "csrf_token": csrf(regulator),
    }
    asked = regulator.post("/workspace/anomalies/decisions", data=form, headers=HTML)
    assert asked.status_code == 200
    assert "<strong>2</strong>" in re.search(r'<p id="bulk-count">(.*?)</p>', asked.text).group(1)
    assert f"#{ids[0]}, #{ids[2]}" in asked.text
    assert {session.get(Anomaly, a).status for a in ids} == {"open"}
    done = regulator.post(
        "/workspace/anomalies/decisions", data={**form, "confirmed": "yes"}, headers=HTML
    )
    assert done.status_code == 303 and "decided=2" in done.headers["Location"]
    session.expire_all()
    assert [session.get(Anomaly, a).status for a in ids] == ["confirmed", "open", "confirmed"]
    shown = regulator.get(done.headers["Location"], headers=HTML).text
    assert "2 findings confirmed" in shown
    for i in (ids[0], ids[2]):
        row = re.search(rf'<tr data-anomaly="{i}".*?</tr>', shown, re.S).group(0)
        assert "现场核实属实" in row and "确认" in row
    again = regulator.post("/workspace/anomalies/decisions", data=form, headers=HTML)
    assert "2 already decided, skipped" in again.text and "<strong>0</strong>" in again.text


def test_a_bulk_decision_of_rows_needs_a_ticked_row(regulator):
    """Rows chosen but none ticked, or a number that is not one: a 4xx page, nothing done."""
    form = {"scope": "rows", "decision": "confirm", "reason": "x", "csrf_token": csrf(regulator)}
    none = regulator.post("/workspace/anomalies/decisions", data=form, headers=HTML)
    assert none.status_code == 422 and "勾选" in none.text
    bad = regulator.post(
        "/workspace/anomalies/decisions", data={**form, "ids": ["1x"]}, headers=HTML
    )
    assert bad.status_code == 422 and "Traceback" not in bad.text


# -- search, histories, personal data and the access log ----------------------------------------


def test_search_finds_codes_parcels_parties_and_couriers_by_phone(regulator, world, make):
    """A search with one hit goes straight to it; with several it lists them."""
    ship(world)
    serial = world["serials"][0]
    make.merchant()  # a second merchant: "商户" finds two

    def found(q):
        resp = regulator.get("/workspace/search", query_string={"q": q}, headers=HTML)
        if resp.status_code == 302:
            return resp.location
        return re.findall(r'data-kind="([a-z_]+)"', resp.text)

    assert found(serial) == f"/workspace/codes/{serial}"
    assert found("SF1234567890") == "/workspace/parcels/SF1234567890"
    assert found("商户").count("merchant") == 2
    courier = make.courier(world["company"], phone="13800000001")
    assert found("138 0000 0001") == f"/workspace/parties/courier/{courier}"
    assert found("nothing-like-this") == []


def test_search_leaves_out_what_is_outside_the_jurisdiction(outsider, world):
    html = outsider.get(
        "/workspace/search", query_string={"q": world["serials"][0]}, headers=HTML
    ).text
    assert 'data-kind="code"' not in html


def test_viewing_a_parcel_is_logged_as_personal_data_and_admins_read_the_log(
    app, regulator, world, make, session
):
    ship(world)
    html = regulator.get("/workspace/parcels/SF1234567890", headers=HTML).text
    assert "31.8" in html  # the consignee point, for regulators only
    entry = session.scalars(sa.select(AccessEntry).where(AccessEntry.target_type == "parcel")).one()
    assert entry.personal_data and entry.actor_user_id is not None
    assert regulator.get("/workspace/audit", headers=HTML).status_code == 403
    admin = sign_in(app.test_client(), *make.user("admin"))
    log = admin.get("/workspace/audit", headers=HTML).text
    assert "SF1234567890" in log and "是 yes" in log


def test_the_access_log_cannot_be_edited(app, regulator, session):
    regulator.get("/workspace/", headers=HTML)
    regulator.get("/workspace/search", query_string={"q": "x"}, headers=HTML)
    with pytest.raises(sa.exc.DatabaseError):
        session.execute(sa.update(AccessEntry).values(detail="changed"))
        session.flush()
    session.rollback()


def test_the_code_page_shows_history_complaints_and_rejected_events(regulator, world, client):
    ship(world)
    html = regulator.get(f"/workspace/codes/{world['serials'][0]}", headers=HTML).text
    assert "快递揽收" in html and "已签收" in html and "快递员" in html  # words, not identifiers
    assert "picked_up" not in html


def test_api_history_reads_by_authorities_are_logged(client, make, world, session):
    ship(world)
    resp = client.get("/api/v1/parcels/SF1234567890/history", headers=make.auth("regulator"))
    assert resp.status_code == 200 and "consignee" in resp.get_json()
    entry = session.scalars(sa.select(AccessEntry)).one()
    assert (entry.target_type, entry.personal_data) == ("parcel", True)
    assert entry.actor_token_id is not None


def test_no_page_needs_inline_styles_or_scripts(regulator, world, client):
    """The Content-Security-Policy forbids inline styles and scripts: the pages have none."""
    ship(world)
    pages = [
        regulator.get(path, headers=HTML).text
        for path in (
            "/workspace/",
            "/workspace/anomalies",
            "/workspace/map",
            f"/workspace/batches/{world['batch']}",
            f"/workspace/codes/{world['serials'][0]}",
            "/workspace/parcels/SF1234567890",
        )
    ]
    pages.append(client.get(f"/t/{world['serials'][0]}", headers=HTML).text)
    for html in pages:
        assert ' style="' not in html and "<style" not in html
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def _copy_cookie(source, target):
    """A second browser with the first one's session cookie (a copied or stolen cookie)."""
    cookie = source.get_cookie("trace_session")
    target.set_cookie("trace_session", cookie.value)
    return target


def test_a_session_cookie_copied_before_sign_out_opens_nothing_after(app, client, make):
    """Does signing out end the session on the server, so that a copy of its cookie replayed
    afterwards is sent to the sign-in page and cannot post a form?"""
    sign_in(client, *make.user("regulator", "3204"))
    copy = _copy_cookie(client, app.test_client())
    token = csrf(copy)
    assert copy.get("/workspace/", headers=HTML).status_code == 200  # the copy works, for now
    resp = client.post("/workspace/sign-out", data={"csrf_token": csrf(client)})
    assert resp.status_code == 302
    resp = copy.get("/workspace/", headers=HTML)
    assert resp.status_code == 302 and "/workspace/sign-in" in resp.headers["Location"]
    resp = copy.post("/workspace/anomalies/1/decision", data={"csrf_token": token})
    assert resp.status_code == 401


def test_an_admin_ends_every_session_of_a_user(app, client, make, runner):
    """Does `flask trace user sign-out NAME` end the user's sessions at once?"""
    username, password = make.user("regulator", "3204")
    sign_in(client, username, password)
    assert client.get("/workspace/", headers=HTML).status_code == 200
    result = runner.invoke(args=["trace", "user", "sign-out", username])
    assert result.exit_code == 0, result.output
    resp = client.get("/workspace/", headers=HTML)
    assert resp.status_code == 302 and "/workspace/sign-in" in resp.headers["Location"]
    sign_in(client, username, password)  # a new sign-in works again
    assert client.get("/workspace/", headers=HTML).status_code == 200
