"""Counterfeits as consumers meet them (issue 16): checks of never-issued codes and forged
links recorded, bounded per network; the report-a-fake form and API; the counterfeit map;
and the counterfeit_cluster finding, which names the product's merchant as its victim."""

import re

import pytest
import sqlalchemy as sa

from app.accesslog.models import AccessEntry
from app.catalog.models import Batch, Product
from app.counterfeit import operations as counterfeit
from app.counterfeit.models import CounterfeitCheck, CounterfeitReport
from app.credit.models import Anomaly, CreditRecord
from tests.app.test_workspace import HTML, sign_in

#: A place inside each of five districts of Changzhou (3204).
PLACES = {
    "320402": (31.8, 120.05),
    "320404": (31.8, 119.85),
    "320411": (31.93, 119.9),
    "320412": (31.57, 119.88),
    "320413": (31.72, 119.53),
}


def from_network(i: int) -> dict:
    """A client on network 10.0.i.0/24."""
    return {"REMOTE_ADDR": f"10.0.{i}.5"}


def fake_link(gtin: str, lot: str, n: int) -> str:
    """The path of a Digital Link under a real product with a serial never issued."""
    return f"/01/{gtin}/10/{lot}/21/{fake_serial(n)}"


def fake_serial(n: int) -> str:
    """A serial never issued, written with letters only (a typed 0, 1, 8 or 9 is read as the
    letter it is mistaken for, and the page redirects to that spelling)."""
    return "ZZZZZZZZZZZZZ" + f"{n:03d}".translate(str.maketrans("0123456789", "ABCDEFGHJK"))


@pytest.fixture
def product(make, session):
    """A product of a merchant in Changzhou with one batch: (merchant id, gtin, lot, serial)."""
    merchant = make.merchant()
    batch_id = make.batch(make.product(merchant))
    (serial,) = make.codes(batch_id, 1)
    batch = session.get(Batch, batch_id)
    gtin = session.get(Product, batch.product_id).gtin
    return merchant, gtin, batch.lot, serial


def rows(session, model):
    session.expire_all()
    return session.scalars(sa.select(model).order_by(model.id)).all()


def report_form(client, path: str, env: dict) -> dict:
    """The report form's fields from the never-issued page at ``path``."""
    page = client.get(path, headers=HTML, environ_base=env)
    assert page.status_code == 404
    html = page.get_data(as_text=True)
    assert 'id="report-fake"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    code = re.search(r'name="code" value="([^"]*)"', html).group(1)
    return {"csrf_token": token, "code": code}


# -- checks of fakes ---------------------------------------------------------------------------


def test_a_never_issued_code_is_recorded_once_a_day_per_network(client, session):
    """Are a never-issued code's checks recorded (they were not: the checks table refers to
    issued codes), one row per network and day however often that network checks it?"""
    for env in (from_network(1), from_network(1), {"REMOTE_ADDR": "10.0.1.77"}, from_network(2)):
        assert client.get("/t/ZZZZZZZZZZZZZZZZ", environ_base=env).status_code == 404
    found = rows(session, CounterfeitCheck)
    assert [(r.code, r.kind, r.checks) for r in found] == [
        ("ZZZZZZZZZZZZZZZZ", "never_issued", 3),
        ("ZZZZZZZZZZZZZZZZ", "never_issued", 1),
    ]
    assert found[0].network != found[1].network and found[0].gtin is None


def test_a_forged_link_is_recorded_with_its_gtin_and_lot(client, session, make, product):
    """Is a genuine serial under another product's link recorded as a forged link, with the
    GTIN and lot the link claims?"""
    _, _, lot, serial = product
    other = session.get(Product, make.product()).gtin
    path = f"/01/{other}/10/{lot}/21/{serial}"
    assert client.get(path, environ_base=from_network(3)).status_code == 404
    (row,) = rows(session, CounterfeitCheck)
    assert (row.code, row.kind, row.gtin, row.lot) == (serial, "forged_link", other, lot)


def test_a_code_typed_then_scanned_from_its_link_counts_for_the_links_product(
    app, client, session, make, product
):
    """A consumer types a fake's code (no link, so no GTIN), then scans the label's QR code
    (the link names the product). Does the network's one row of the day learn the product,
    so that the Changzhou regulator's map counts both checks under it? (It kept no GTIN, and
    no regulator saw the checks.)"""
    _, gtin, lot, _ = product
    env = from_network(5)
    assert client.get(f"/t/{fake_serial(7)}", environ_base=env).status_code == 404
    assert client.get(fake_link(gtin, lot, 7), environ_base=env).status_code == 404
    assert client.get(f"/t/{fake_serial(7)}", environ_base=env).status_code == 404
    (row,) = rows(session, CounterfeitCheck)
    assert (row.code, row.gtin, row.lot, row.checks) == (fake_serial(7), gtin, lot, 3)
    local = sign_in(app.test_client(), *make.user("regulator", "3204"))
    html = local.get("/workspace/counterfeits", headers=HTML).get_data(as_text=True)
    listed = re.search(rf'<tr data-gtin="{gtin}">(.*?)</tr>', html).group(1)
    cells = re.findall(r"<td>(.*?)</td>", listed)
    assert cells[3:6] == ["1", "3", "0"]  # networks, checks, reports


def test_a_network_records_a_bounded_number_of_fake_codes_a_day(client, session, monkeypatch):
    """Does a flood of made-up codes from one network cost a bounded number of rows (the
    checks are still answered)?"""
    monkeypatch.setattr(counterfeit, "COUNTERFEIT_CHECKS_PER_DAY", 3)
    for n in range(5):
        resp = client.get(f"/t/{fake_serial(n)}", environ_base=from_network(4))
        assert resp.status_code == 404
    assert len(rows(session, CounterfeitCheck)) == 3


def test_the_code_as_typed_is_kept_without_control_characters():
    """Is the code kept as evidence bounded and free of invisible characters?"""
    assert counterfeit.typed_code("ab\u200bc\x00  d\n" + "x" * 100) == "abc d " + "x" * 58


# -- reports -----------------------------------------------------------------------------------


def test_report_a_fake_from_the_never_issued_page(client, session, product):
    """Does the never-issued page carry a report form that files a report (contact and
    district kept, the district also placing the network's check) and thanks the consumer?"""
    _, gtin, lot, _ = product
    path, env = fake_link(gtin, lot, 1), from_network(5)
    fields = report_form(client, path, env)
    lat, lon = PLACES["320404"]
    resp = client.post(
        "/report-fake",
        data={
            **fields,
            "what": "大米",
            "where_bought": "菜市场",
            "description": "包装粗糙",
            "contact": "13800138000",
            "share_district": "1",
            "lat": str(lat),
            "lon": str(lon),
        },
        environ_base=env,
    )
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/report-fake/sent")
    assert client.get(resp.headers["Location"], headers=HTML).status_code == 200
    (report,) = rows(session, CounterfeitReport)
    assert (report.kind, report.gtin, report.lot, report.district_code) == (
        "never_issued",
        gtin,
        lot,
        "320404",
    )
    assert report.contact == "13800138000" and report.what == "大米"
    (check,) = rows(session, CounterfeitCheck)
    assert check.district_code == "320404"


def test_the_report_form_needs_its_token_and_a_what(client, session, product):
    """Is a report without the page's token refused (400), and one without what was bought
    answered on the page with the reason (422), nothing stored?"""
    _, gtin, lot, _ = product
    path, env = fake_link(gtin, lot, 2), from_network(6)
    fields = report_form(client, path, env)
    sent = {"what": "x", "where_bought": "y"}
    forged = client.post(
        "/report-fake", data={**fields, **sent, "csrf_token": "0" * 64}, environ_base=env
    )
    assert forged.status_code == 400 and forged.get_json()["error"]["code"] == "bad_form_token"
    empty = client.post(
        "/report-fake", data={**fields, "where_bought": "y"}, headers=HTML, environ_base=env
    )
    assert empty.status_code == 422 and 'role="alert"' in empty.get_data(as_text=True)
    assert rows(session, CounterfeitReport) == []


def test_reports_are_rate_limited_per_address(client, product):
    """Is a client that sends reports past COUNTERFEIT_REPORTS_PER_HOUR answered 429?"""
    _, gtin, lot, _ = product
    body = {"code": fake_link(gtin, lot, 3), "what": "x", "where_bought": "y"}
    statuses = [
        client.post(
            "/api/v1/counterfeit-reports", json=body, environ_base=from_network(7)
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_the_report_api_never_returns_the_contact_and_refuses_a_genuine_code(client, product):
    """Does the API keep the contact to itself, refuse a report of a genuine unit's own
    code (409), and a place given by halves (422)?"""
    _, gtin, lot, serial = product
    body = {"code": fake_link(gtin, lot, 4), "what": "x", "where_bought": "y"}
    resp = client.post("/api/v1/counterfeit-reports", json={**body, "contact": "13800138000"})
    assert resp.status_code == 201 and "13800138000" not in resp.get_data(as_text=True)
    assert resp.get_json()["kind"] == "never_issued"
    genuine = client.post(
        "/api/v1/counterfeit-reports", json={**body, "code": f"/01/{gtin}/10/{lot}/21/{serial}"}
    )
    assert genuine.status_code == 409
    half = client.post("/api/v1/counterfeit-reports", json={**body, "lat": 31.8})
    assert half.status_code == 422


# -- the finding and the map -------------------------------------------------------------------


def sightings_from_five_districts(client, gtin: str, lot: str) -> None:
    """Five networks in five districts: each checks a fake under the product's GTIN, and
    reports it with its district."""
    for i, (_district, (lat, lon)) in enumerate(PLACES.items(), start=20):
        env, path = from_network(i), fake_link(gtin, lot, i)
        assert client.get(path, environ_base=env).status_code == 404
        report = {
            "code": path,
            "what": "大米",
            "where_bought": f"店铺{i}",
            "contact": f"1380013{i:04d}",
            "lat": lat,
            "lon": lon,
        }
        resp = client.post("/api/v1/counterfeit-reports", json=report, environ_base=env)
        assert resp.status_code == 201, resp.get_json()


def test_fakes_from_many_networks_raise_a_finding_that_names_the_merchant_as_victim(
    client, session, make, product
):
    """Do checks and reports of fakes of one product from five networks raise one
    counterfeit_cluster finding naming its merchant as the victim, with no credit record,
    so that neither its public credit nor its risk indicator moves?"""
    merchant, gtin, lot, _ = product
    own = make.auth("merchant", merchant)
    before = client.get(f"/api/v1/credit/merchant/{merchant}", headers=own).get_json()
    sightings_from_five_districts(client, gtin, lot)
    (anomaly,) = session.scalars(sa.select(Anomaly).where(Anomaly.type == "counterfeit_cluster"))
    assert (anomaly.party_type, anomaly.party_id, anomaly.subject) == ("merchant", merchant, gtin)
    assert anomaly.evidence["networks"] == 5 and anomaly.evidence["reports"] == 5
    assert anomaly.evidence["districts"] == sorted(PLACES)
    assert (
        session.scalars(sa.select(CreditRecord).where(CreditRecord.anomaly_id == anomaly.id)).all()
        == []
    )
    after = client.get(f"/api/v1/credit/merchant/{merchant}", headers=own).get_json()
    assert after["risk"] == before["risk"] and after["risk"]["open_findings"] == 0
    assert (after["score"], after["grade"]) == (before["score"], before["grade"])
    shown = client.get(f"/api/v1/anomalies/{anomaly.id}", headers=own).get_json()
    assert shown["party"]["role"] == "victim" and shown["subject"] == {"gtin": gtin}
    appeal = client.post(
        f"/api/v1/anomalies/{anomaly.id}/appeal", json={"statement": "not us"}, headers=own
    )
    assert appeal.status_code == 409


def test_fewer_networks_than_the_threshold_raise_no_finding(client, session, product):
    """Do four networks (one short of the threshold) leave the product without a finding?"""
    _, gtin, lot, _ = product
    for i in range(30, 34):
        client.get(fake_link(gtin, lot, i), environ_base=from_network(i))
    assert session.scalar(sa.select(Anomaly).where(Anomaly.type == "counterfeit_cluster")) is None


def test_the_counterfeit_map_shows_where_fakes_are_met_inside_the_jurisdiction(
    app, client, session, make, product
):
    """Does a Changzhou regulator's counterfeit map show the product's fakes by district
    (with the reports' contacts, the read logged as personal data), filtered by GTIN and
    merchant, while a Zhaoqing regulator sees none of it, and the API masks contacts?"""
    merchant, gtin, lot, _ = product
    sightings_from_five_districts(client, gtin, lot)
    local = sign_in(app.test_client(), *make.user("regulator", "3204"))
    html = local.get(f"/workspace/counterfeits?gtin={gtin}", headers=HTML).get_data(as_text=True)
    for district in PLACES:
        assert f'<circle class="anomaly" data-district="{district}"' in html
    assert "13800130020" in html and f'data-gtin="{gtin}"' in html
    logged = session.scalars(
        sa.select(AccessEntry).where(AccessEntry.target_type == "counterfeit_map")
    ).all()
    assert [e.personal_data for e in logged] == [True]
    other = local.get(f"/workspace/counterfeits?merchant_id={make.merchant()}", headers=HTML)
    assert f'data-gtin="{gtin}"' not in other.get_data(as_text=True)
    far = sign_in(app.test_client(), *make.user("regulator", "4412"))
    far_html = far.get("/workspace/counterfeits", headers=HTML).get_data(as_text=True)
    assert f'data-gtin="{gtin}"' not in far_html and "13800130020" not in far_html
    api = client.get(
        f"/api/v1/counterfeit-map?merchant_id={merchant}", headers=make.auth("regulator")
    ).get_json()
    assert [d["district_code"] for d in api["districts"]] == sorted(PLACES)
    (listed,) = api["products"]
    assert (listed["gtin"], listed["networks"], listed["reports"]) == (gtin, 5, 5)
    assert all(r["contact"].startswith("1***") for r in api["reports"])
    refused = client.get("/api/v1/counterfeit-map", headers=make.auth("merchant", merchant))
    assert refused.status_code == 403


def test_reports_through_the_page_from_five_districts_raise_the_finding_and_fill_the_map(
    app, client, session, make, product
):
    """End to end as consumers do it: five phones on five networks, in five districts, each
    opens a fake's page and sends its report form with "share my district": is the
    merchant named as the victim of one finding, with its credit unchanged, and does the
    regulator's map show the five districts?"""
    merchant, gtin, lot, _ = product
    before = client.get(f"/api/v1/credit/merchant/{merchant}").get_json()
    for i, (lat, lon) in enumerate(PLACES.values(), start=40):
        path, env = fake_link(gtin, lot, i), from_network(i)
        sent = client.post(
            "/report-fake",
            data={
                **report_form(client, path, env),
                "what": "大米",
                "where_bought": f"店铺{i}",
                "share_district": "1",
                "lat": str(lat),
                "lon": str(lon),
            },
            environ_base=env,
        )
        assert sent.status_code == 303, sent.get_data(as_text=True)
    (anomaly,) = session.scalars(sa.select(Anomaly).where(Anomaly.type == "counterfeit_cluster"))
    assert (anomaly.party_type, anomaly.party_id) == ("merchant", merchant)
    assert anomaly.evidence["districts"] == sorted(PLACES)
    after = client.get(f"/api/v1/credit/merchant/{merchant}").get_json()
    assert (after["score"], after["grade"]) == (before["score"], before["grade"])
    api = client.get(f"/api/v1/counterfeit-map?gtin={gtin}", headers=make.auth("regulator"))
    assert [d["district_code"] for d in api.get_json()["districts"]] == sorted(PLACES)
    regulator = sign_in(app.test_client(), *make.user("regulator", "3204"))
    html = regulator.get(f"/workspace/counterfeits?gtin={gtin}", headers=HTML).text
    for district in PLACES:
        assert f'<circle class="anomaly" data-district="{district}"' in html
    newest = re.search(
        r'<tr data-report="\d+"><td>([^<]*)</td><td><code>[^<]*</code> \(([^)]*)\)', html
    )
    assert newest.group(1).endswith(" 北京时间") and newest.group(2) == "从未登记的码"


def test_a_refused_report_of_a_forged_link_keeps_its_forged_link_verdict(
    client, session, make, product
):
    """When a report from a forged link's page is refused, does the page come back as the
    forged-link verdict (it came back as never issued), with the reason?"""
    _, _, lot, serial = product
    other = session.get(Product, make.product()).gtin
    path, env = f"/01/{other}/10/{lot}/21/{serial}", from_network(8)
    page = client.get(path, headers=HTML, environ_base=env).get_data(as_text=True)
    assert 'data-look="forged_link"' in page
    refused = client.post(
        "/report-fake",
        data={**report_form(client, path, env), "where_bought": "y"},
        headers=HTML,
        environ_base=env,
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'role="alert"' in html
    assert 'data-look="forged_link"' in html
