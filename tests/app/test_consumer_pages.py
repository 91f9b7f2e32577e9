"""The consumer's scan page: verdicts from the data, the journey at district level, the
check itself, the forms, and what must never show."""

import re
import time
from datetime import UTC, date, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import psycopg
import pytest
import sqlalchemy as sa

from app.consumer.models import CheckRollup, Verification
from app.credit.models import Anomaly
from app.db import StatementConnections
from app.feedback.models import Complaint, Review
from tests.app.test_events_api import ship

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}

# On PostgreSQL the scan runs on connections of its own, in autocommit: it reads only what
# the test committed.
pytestmark = pytest.mark.committed("postgresql")


def page(client, serial, **kw):
    return client.get(f"/t/{serial}", headers=kw.pop("headers", HTML), **kw)


def answer(client, serial):
    resp = client.get(f"/t/{serial}", headers=JSON)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def token_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def warnings(body) -> list[str]:
    return [w["kind"] for w in body["verdict"]["warnings"]]


# -- verdicts -----------------------------------------------------------------------------------


def test_a_clean_unit_is_genuine_with_its_journey_at_district_level(client, world):
    """Does a delivered unit read as genuine, with company names and districts only?"""
    ship(world)
    body = answer(client, world["serials"][0])
    assert body["verdict"]["level"] == "genuine" and body["verdict"]["warnings"] == []
    steps = [s["type"] for s in body["journey"]]
    assert steps == [
        "shelved",
        "sold",
        "packed",
        "picked_up",
        "in_transit",
        "out_for_delivery",
        "signed",
    ]
    signed = body["journey"][-1]
    assert signed["place"] == {
        "region_code": "320404",
        "zh": "常州市钟楼区",
        "en": "Zhonglou District, Changzhou",
    }
    assert body["journey"][4]["place"]["zh"] == "常州市"  # in transit: the city only
    assert signed["by"].startswith("快递公司")  # the company, not the courier
    assert signed["time"].endswith("+08:00")
    text = str(body)
    assert "快递员" not in text and "31.78123" not in text and "device" not in text


def test_the_page_is_chinese_first_with_english_on_request(client, world):
    serial = world["serials"][0]
    html = page(client, serial).get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "正品，记录正常" in html
    english = page(client, serial, query_string={"lang": "en"}).get_data(as_text=True)
    assert "Genuine, and its record is in order" in english and "正品，记录正常" not in english


def test_a_code_never_issued_is_a_likely_counterfeit(client, make):
    """Do both URL forms say 'likely counterfeit' for a serial nobody issued?"""
    resp = page(client, "AAAAAAAAAAAAAAAA")
    assert resp.status_code == 404 and "从未登记" in resp.get_data(as_text=True)
    body = client.get("/01/06900000000014/10/X/21/AAAAAAAAAAAAAAAA", headers=JSON)
    assert body.status_code == 404
    assert body.get_json()["verdict"]["level"] == "danger"
    assert warnings(body.get_json()) == ["unknown_code"]


def test_a_recalled_batch_says_do_not_use_with_the_reason(client, make, world):
    serial = world["serials"][0]
    resp = client.post(
        f"/api/v1/batches/{world['batch']}/recall",
        json={"reason": "沙门氏菌检出 Salmonella found"},
        headers=make.auth("regulator"),
    )
    assert resp.status_code == 200
    body = answer(client, serial)
    assert body["verdict"]["level"] == "danger" and warnings(body) == ["recalled"]
    assert "沙门氏菌检出" in body["verdict"]["warnings"][0]["message"]["zh"]
    assert "停止使用" in page(client, serial).get_data(as_text=True)


def test_an_expired_unit_is_a_warning(client, make):
    batch = make.batch(produced_on=date(2024, 1, 1), expires_on=date(2025, 1, 1))
    serial = make.codes(batch, 1)[0]
    body = answer(client, serial)
    assert body["verdict"]["level"] == "warning" and warnings(body) == ["expired"]
    expired = body["verdict"]["warnings"][0]
    assert "2025年1月1日到期" in expired["message"]["zh"]  # as people write dates
    assert "1 Jan 2025" in expired["message"]["en"]
    assert expired["details"] == {"expires_on": "2025-01-01"}  # for machines: ISO 8601


def test_a_unit_sold_twice_says_so(client, world):
    serial = world["serials"][0]
    pos = world["pos"]
    pos.post(pos.event("sold", 10, code=serial, data={"order_id": "O-1"}))
    pos.post(pos.event("sold", 20, code=serial, data={"order_id": "O-2"}))
    assert warnings(answer(client, serial)) == ["sold_twice"]


def test_a_black_listed_merchant_is_named_on_every_unit(client, make, world):
    from tests.app.test_credit_api import sanctioned

    sanctioned(client.application, "merchant", world["merchant"], n=3)  # final a while ago
    body = answer(client, world["serials"][0])
    assert body["merchant"]["credit"]["list"] == "black"
    assert warnings(body) == ["merchant_black_listed"]


def phone(client, address: str):
    """Another client of the app, at ``address`` (its own network unless told otherwise)."""
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    return other


def copy_code(client, serial: str) -> None:
    """Five more clients, each in a network of its own, check ``serial``, each sharing a
    place, in five districts."""
    places = [(31.78, 119.98), (31.83, 119.97), (23.05, 112.47), (23.16, 112.56), (31.70, 119.94)]
    for n, (lat, lon) in enumerate(places):
        other = phone(client, f"198.51.{100 + n}.7")
        html = other.get(f"/t/{serial}", headers={**HTML, "User-Agent": f"phone {n}"}).get_data(
            as_text=True
        )
        resp = other.post(
            f"/t/{serial}/place",
            data={"lat": lat, "lon": lon, "csrf_token": token_of(html)},
            headers={"User-Agent": f"phone {n}"},
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)


def test_a_code_checked_by_many_clients_in_many_districts_is_a_copied_code(client, make, world):
    """Five clients in three districts make a copied code; one client checking again and
    again does not."""
    serial = world["serials"][0]
    for _ in range(6):  # the same client, many times: not spread
        page(client, serial)
    assert warnings(answer(client, serial)) == []
    copy_code(client, serial)
    body = answer(client, serial)
    assert warnings(body) == ["copied_code"] and body["verdict"]["level"] == "danger"
    details = body["verdict"]["warnings"][0]["details"]
    assert details["clients"] == 6 and details["district_count"] == 5
    assert body["checks"]["count"] >= 12


def test_a_copied_code_on_file_costs_its_scans_no_more_than_a_genuine_one(
    app, client, world, session
):
    """Once the copied code is on file (open, or dismissed by a regulator), its scans read the
    first check's place from the finding's evidence instead of running the rule again over
    all of the code's checks: on PostgreSQL the scan's one statement, as for a genuine code."""
    if app.extensions["trace"].engine.dialect.name != "postgresql":
        pytest.skip("the one-statement scan is PostgreSQL's")
    serial = world["serials"][0]
    page(client, serial)
    copy_code(client, serial)
    first = answer(client, serial)  # the rule runs and writes the finding
    assert warnings(first) == ["copied_code"]
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(cursor, query, *args, **kwargs):
        sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    def rule_work() -> list[str]:
        """Statements after the scan's own that read checks or anomalies (the
        suite keeps no merchant's credit, so each scan also reads that)."""
        assert "INSERT INTO verifications" in sent[0]
        reads = re.compile(r"\bFROM (verifications|anomalies)\b")
        return [q for q in sent[1:] if reads.search(q)]

    with mock.patch.object(psycopg.Cursor, "execute", counting):
        again = answer(client, serial)
    assert rule_work() == []
    assert warnings(again) == ["copied_code"] and again["verdict"]["level"] == "danger"
    assert again["checks"]["count"] == first["checks"]["count"] + 1
    shown, before = (body["verdict"]["warnings"][0]["details"] for body in (again, first))
    assert shown == {**before, "checks": before["checks"] + 1}
    assert shown["first_check_place"] != "未知" and shown["district_count"] == 5
    assert again["checks"]["first_place"] == first["checks"]["first_place"] is not None

    session.execute(sa.update(Anomaly).where(Anomaly.subject == serial).values(status="dismissed"))
    session.commit()
    sent.clear()
    with mock.patch.object(psycopg.Cursor, "execute", counting):
        dismissed = answer(client, serial)
    assert rule_work() == [] and warnings(dismissed) == []


def add_old_checks(session, serial: str, count: int) -> None:
    """``count`` checks of ``serial`` days ago by 150 clients, a half of them with a place."""
    long_ago = datetime.now(UTC) - timedelta(days=3)
    session.add_all(
        Verification(
            serial=serial,
            client_hash=f"{n % 150:064x}",
            new_client=n < 150,  # each client's first check of the code
            verified_at=long_ago + timedelta(minutes=n),
            district_code=["110101", "310101", None, None][n % 4],
        )
        for n in range(count)
    )
    session.commit()


def test_a_failed_roll_up_costs_the_scan_nothing(app, client, world, session, monkeypatch):
    """A roll-up only saves later scans work: when it fails, the scan is answered all the
    same with exact totals, and the next scan rolls up."""
    from app.consumer import scan_pg

    if app.extensions["trace"].engine.dialect.name != "postgresql":
        pytest.skip("the roll-up serves PostgreSQL's one-statement scan")
    serial = world["serials"][1]
    add_old_checks(session, serial, scan_pg.ROLL_UP_AFTER + 10)
    monkeypatch.setattr(scan_pg, "_ROLL_UP", "SELECT no_such_function()")
    body = answer(client, serial)
    assert body["checks"]["count"] == scan_pg.ROLL_UP_AFTER + 11
    assert body["checks"]["clients"] == 151
    assert session.get(CheckRollup, serial) is None
    session.commit()
    monkeypatch.undo()
    assert answer(client, serial)["checks"]["count"] == scan_pg.ROLL_UP_AFTER + 12
    assert session.get(CheckRollup, serial).checks == scan_pg.ROLL_UP_AFTER + 10  # the old


def test_a_much_checked_code_is_rolled_up_and_its_totals_stay_exact(app, client, world, session):
    """A scan that finds many checks since its code's roll-up brings the roll-up forward to a
    minute ago; every scan, before and after, says what counting all the code's checks says.
    A client who checked before the roll-up is not new when it checks again; a place shared
    for a rolled-up check joins the roll-up's districts."""
    from app.consumer.places import local_time
    from app.consumer.scan_pg import ROLL_UP_AFTER

    if app.extensions["trace"].engine.dialect.name != "postgresql":
        pytest.skip("the roll-up serves PostgreSQL's one-statement scan")
    serial = world["serials"][2]
    phone_b = phone(client, "198.51.100.7")
    phone_c = phone(client, "198.51.101.7")
    returning = {**JSON, "User-Agent": "phone b"}
    assert phone_b.get(f"/t/{serial}", headers=returning).status_code == 200
    html = phone_c.get(f"/t/{serial}", headers={**HTML, "User-Agent": "phone c"})
    token = token_of(html.get_data(as_text=True))
    long_ago = datetime.now(UTC) - timedelta(days=3)
    session.execute(  # b's and c's checks were days ago
        sa.update(Verification).where(Verification.serial == serial).values(verified_at=long_ago)
    )
    add_old_checks(session, serial, ROLL_UP_AFTER)  # and enough for a roll-up

    def counted() -> dict:
        """The totals, by counting every check of the code."""
        checks, clients, districts, first_at = session.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(sa.distinct(Verification.client_hash)),
                sa.func.count(sa.distinct(Verification.district_code)),
                sa.func.min(Verification.verified_at),
            ).where(Verification.serial == serial)
        ).one()
        session.commit()
        return {"count": checks, "clients": clients, "districts": districts, "first": first_at}

    def shown(body) -> dict:
        checks = body["checks"]
        return {k: checks[k] for k in ("count", "clients", "districts")} | {
            "first": checks["first_at"]
        }

    def exact(body) -> None:
        expected = counted()
        assert shown(body) == {**expected, "first": local_time(expected["first"])}

    def rollup() -> CheckRollup | None:
        session.expire_all()
        row = session.get(CheckRollup, serial)
        session.commit()
        return row

    assert rollup() is None
    first = answer(client, serial)  # counts every check, then rolls up all but its own
    exact(first)
    rolled = rollup()
    assert (rolled.checks, rolled.clients) == (ROLL_UP_AFTER + 2, 152)
    assert rolled.districts == ["110101", "310101"]
    exact(answer(client, serial))  # the same client again: the roll-up and two checks since
    again = phone_b.get(f"/t/{serial}", headers=returning).get_json()
    exact(again)  # b checked before the roll-up: one more check, no new client
    assert shown(again)["clients"] == shown(first)["clients"]

    # c shares its place for the check it made days ago, now in the roll-up
    resp = phone_c.post(
        f"/t/{serial}/place",
        data={"lat": 31.78, "lon": 119.98, "csrf_token": token},
        headers={"User-Agent": "phone c"},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert len(rollup().districts) == 3
    last = answer(client, serial)
    exact(last)
    assert shown(last)["districts"] == 3


def test_a_check_is_recorded_without_personal_data(client, world, session):
    page(client, world["serials"][1])
    check = session.scalars(sa.select(Verification)).one()
    assert check.serial == world["serials"][1] and len(check.client_hash) == 64
    assert check.location is None and "127.0.0.1" not in check.client_hash


# -- the forms ----------------------------------------------------------------------------------


def test_a_review_from_the_form_is_stored_and_the_page_thanks(client, world, session):
    serial = world["serials"][0]
    html = page(client, serial).get_data(as_text=True)
    resp = client.post(
        f"/t/{serial}/review",
        data={"rating": "4", "text": "<b>好</b>", "csrf_token": token_of(html)},
    )
    assert resp.status_code == 302
    thanks = client.get(resp.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "感谢您的评价" in thanks
    review = session.scalars(sa.select(Review)).one()
    assert (review.rating, review.text) == (4, "<b>好</b>")


def test_a_form_without_its_token_is_refused_and_nothing_is_stored(client, world, session):
    resp = client.post(f"/t/{world['serials'][0]}/review", data={"rating": "5"}, headers=HTML)
    assert resp.status_code == 400 and "reload the page" in resp.get_data(as_text=True)
    other = client.application.test_client()  # another client's token is no good either
    token = token_of(page(other, world["serials"][0], headers={**HTML, "User-Agent": "x"}).text)
    resp = client.post(
        f"/t/{world['serials'][0]}/review", data={"rating": "5", "csrf_token": token}
    )
    assert resp.status_code == 400 and session.scalar(sa.select(sa.func.count(Review.id))) == 0


def test_a_complaint_names_the_party_and_its_contact_stays_private(client, world, session):
    serial = world["serials"][0]
    ship(world)
    html = page(client, serial).get_data(as_text=True)
    resp = client.post(
        f"/t/{serial}/complaint",
        data={
            "category": "delivery",
            "text": "包裹被扔在门外",
            "contact": "13800138000",
            "csrf_token": token_of(html),
        },
    )
    assert resp.status_code == 302
    complaint = session.scalars(sa.select(Complaint)).one()
    assert (complaint.party_type, complaint.party_id) == ("courier", world["courier"])
    raised = session.scalars(sa.select(Anomaly).where(Anomaly.type == "consumer_complaint")).one()
    assert (raised.party_type, raised.party_id) == ("courier", world["courier"])
    for resp in (page(client, serial), client.get(f"/t/{serial}", headers=JSON)):
        assert "13800138000" not in resp.get_data(as_text=True)


def test_a_bad_form_gets_the_page_back_with_the_reason(client, world):
    serial = world["serials"][0]
    html = page(client, serial).get_data(as_text=True)
    resp = client.post(
        f"/t/{serial}/complaint",
        data={"category": "aliens", "text": "x", "csrf_token": token_of(html)},
    )
    assert resp.status_code == 422
    assert 'role="alert"' in resp.get_data(as_text=True) and "category" in resp.text


def test_complaints_are_rate_limited_per_client(client, world):
    serial = world["serials"][0]
    token = token_of(page(client, serial).get_data(as_text=True))
    statuses = [
        client.post(
            f"/t/{serial}/complaint",
            data={"category": "quality", "text": f"问题 {n}", "csrf_token": token},
        ).status_code
        for n in range(4)
    ]
    assert statuses == [302, 302, 302, 429]


def test_delivery_can_be_rated_once_the_parcel_is_signed(client, world):
    serial = world["serials"][0]
    assert 'name="courier"' not in page(client, serial).get_data(as_text=True)
    ship(world)
    html = page(client, serial).get_data(as_text=True)
    assert 'name="courier"' in html
    resp = client.post(
        f"/t/{serial}/rating",
        data={"courier": "5", "company": "4", "tags": ["on_time"], "csrf_token": token_of(html)},
    )
    assert resp.status_code == 302


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_pages_links_and_forms_go_to_their_views_under_a_script_name(app, client, world, lang):
    """Served under a prefix (SCRIPT_NAME), and at the root, do the scan page's forms, links,
    stylesheet and script go where url_for sends them? The page builds them from route
    prefixes kept per root, not with url_for on every render."""
    from flask import url_for

    ship(world)  # the delivery-rating form shows once the parcel is signed
    serial = world["serials"][0]
    merchant = answer(client, serial)["merchant"]["id"]
    other = None if lang == "zh" else "en"
    for root in ("/trace", "", "/other/root"):
        base = f"http://localhost{root}"
        html = client.get(f"/t/{serial}?lang={lang}", headers=HTML, base_url=base).text
        with app.test_request_context("/", base_url=base):
            expected = {
                url_for("static", filename="site.css"),
                url_for("static", filename="favicon.svg"),
                url_for("static", filename="share-place.js"),
                url_for("consumer.entry", lang=other),
                url_for(
                    "consumer.credit_page", party_type="merchant", party_id=merchant, lang=other
                ),
                url_for("consumer.share_place", serial=serial),
                *(
                    url_for("consumer.send_form", serial=serial, kind=kind, lang=lang)
                    for kind in ("review", "complaint", "rating")
                ),
            }
        found = set(re.findall(r'(?:href|action|src|data-url)="(/[^"]*)"', html))
        assert found == expected and all(url.startswith(f"{root}/") for url in found)
    review = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
    resp = client.post(
        review.removeprefix(root),
        data={"rating": "5", "csrf_token": token_of(html)},
        base_url=f"http://localhost{root}",
    )
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(f"{root}/t/{serial}?sent=review")


# -- what must never happen ---------------------------------------------------------------------


def test_everything_shown_is_escaped(client, make):
    batch = make.batch(make.product(name="<script>alert(1)</script>"), origin_name="<img src=x>")
    html = page(client, make.codes(batch, 1)[0]).get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<img src=x>" not in html


def test_pages_carry_security_headers_and_a_private_cookie(client, world):
    resp = page(client, world["serials"][0])
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert resp.headers["Cache-Control"] == "private, no-store"


def test_public_pages_are_rate_limited(database_url):
    from app import create_app

    limited = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "PUBLIC_RATE_LIMIT": "3 per minute",
        }
    )
    try:
        client = limited.test_client()
        codes = [client.get("/t/AAAAAAAAAAAAAAAA", headers=JSON).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        assert client.get("/api/v1/credit/lists/red").status_code == 200  # its own budget
    finally:
        limited.extensions["trace"].engine.dispose()


@pytest.mark.parametrize("lat,lon", [("nan", "1"), ("91", "0"), ("x", "1")])
def test_a_shared_place_must_be_a_place(client, world, lat, lon):
    serial = world["serials"][0]
    token = token_of(page(client, serial).get_data(as_text=True))
    resp = client.post(
        f"/t/{serial}/place", data={"lat": lat, "lon": lon, "csrf_token": token}, headers=JSON
    )
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_failed"


def test_anonymous_callers_see_no_personal_data_anywhere(client, make, world, session):
    """A courier's name, phone and ID number, a consignee's point and a complainant's contact
    appear in no public answer, even for a black-listed courier with complaints."""
    from app.parties.models import Courier

    ship(world)
    serial = world["serials"][0]
    courier = session.get(Courier, world["courier"])
    auth = make.auth("regulator")
    for n in range(3):
        client.post(
            f"/api/v1/credit/courier/{courier.id}/records",
            json={"kind": "sanction", "reason": f"违规 {n}"},
            headers=auth,
        )
    client.post(
        f"/api/v1/codes/{serial}/complaints",
        json={"category": "delivery", "text": "扔在门外", "contact": "13912345678"},
    )
    from tests.conftest import resident_id

    id_numbers = [resident_id(n) for n in range(1, 30)]  # the factories' ID numbers
    public = [
        f"/t/{serial}",
        f"/api/v1/codes/{serial}",
        f"/api/v1/credit/courier/{courier.id}",
        "/api/v1/credit/lists/black",
        "/api/v1/credit/notices",
    ]
    for path in public:
        for accept in ("application/json", "text/html"):
            resp = client.get(path, headers={"Accept": accept})
            assert resp.status_code == 200, path
            text = resp.get_data(as_text=True)
            for secret in [courier.name, "13912345678", "31.78123", "119.94567", *id_numbers]:
                assert secret not in text, (path, secret)
    closed = [
        f"/api/v1/couriers/{courier.id}",
        f"/api/v1/codes/{serial}/history",
        "/api/v1/parcels/SF1234567890/history",
        f"/api/v1/batches/{world['batch']}/trace",
        "/api/v1/anomalies",
        "/api/v1/rejected-events",
    ]
    for path in closed:
        assert client.get(path).status_code == 401, path


@pytest.mark.committed  # a second app, with an engine of its own, reads the data
def test_kept_details_never_hide_a_recall(database_url, make, world):
    """With batch details and grades kept per process, a recall still shows at once, and the
    second scan of a batch costs fewer statements than the first."""
    from app import create_app
    from app.consumer.units import forget_public_parts

    caching = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "PUBLIC_CREDIT_MAX_AGE_S": 600,
        }
    )
    statements = []
    sa.event.listen(
        caching.extensions["trace"].engine,
        "before_cursor_execute",
        lambda *a: statements.append(a[2]),
    )
    try:
        client = caching.test_client()
        serial, other = world["serials"][:2]
        assert answer(client, serial)["verdict"]["level"] == "genuine"
        first = len(statements)
        statements.clear()
        assert answer(client, other)["verdict"]["level"] == "genuine"
        assert len(statements) < first
        resp = client.post(
            f"/api/v1/batches/{world['batch']}/recall",
            json={"reason": "召回测试"},
            headers=make.auth("regulator"),
        )
        assert resp.status_code == 200
        body = answer(client, serial)
        assert warnings(body) == ["recalled"] and body["batch"]["status"] == "recalled"
    finally:
        forget_public_parts()
        caching.extensions["trace"].engine.dispose()


def test_the_answer_counts_the_check_being_made(client, world, session):
    """The check a scan records is in the totals the same scan shows (one statement on
    PostgreSQL: its own INSERT is not in its snapshot, so it is counted from the request)."""
    serial = world["serials"][2]
    first = answer(client, serial)["checks"]
    assert first["count"] == 1 and first["clients"] == 1 and first["first_at"]
    again = answer(client, serial)["checks"]
    assert again["count"] == 2 and again["clients"] == 1
    same_network = phone(client, "127.0.0.9")  # another browser on the same network
    resp = same_network.get(f"/t/{serial}", headers={**JSON, "User-Agent": "another phone"})
    assert resp.get_json()["checks"]["count"] == 3 and resp.get_json()["checks"]["clients"] == 1
    other = phone(client, "198.51.100.7")
    resp = other.get(f"/t/{serial}", headers={**JSON, "User-Agent": "another phone"})
    assert resp.get_json()["checks"]["count"] == 4 and resp.get_json()["checks"]["clients"] == 2
    flags = session.scalars(sa.select(Verification.new_client).order_by(Verification.id)).all()
    assert flags == [True, False, False, True]  # each source's first check of the code


def test_the_scan_never_plans_a_sequential_scan_of_a_table_that_grows(app, client, world):
    """The scan's statement is prepared, and PostgreSQL keeps its generic plan while the
    connection lives. Made on a nearly empty table of checks (as here), that plan must still
    find a code's checks by the index: a sequential scan would read every check of every
    code once the table has grown."""
    from app.consumer.scan_pg import _CONNECTIONS, _SCAN_IN_ONE

    engine = app.extensions["trace"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement scan is PostgreSQL's")
    answer(client, world["serials"][0])  # this thread's statement connection, as it serves
    names: list[str] = []  # psycopg's named placeholders as PREPARE's $1, $2, …

    def numbered(match: re.Match) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", numbered, _SCAN_IN_ONE)
    types = {"serial": "text", "client": "text", "now": "timestamptz", "gtin": "text"}
    values = {"serial": "'X'", "client": "'c'", "now": "now()", "gtin": "NULL", "lot": "NULL"}
    assert sorted(names) == sorted(values)
    cur = _CONNECTIONS.cursor(engine)
    try:
        signature = ", ".join(types.get(name, "text") for name in names)
        cur.execute(f"PREPARE probe ({signature}) AS {prepared}")
        cur.execute("SET plan_cache_mode = force_generic_plan")
        arguments = ", ".join(values[name] for name in names)
        explained = cur.execute(f"EXPLAIN EXECUTE probe({arguments})")
        plan = "\n".join(row[0] for row in explained)
    finally:
        _CONNECTIONS.discard()  # its settings and the prepared probe go with it
    tables = ("verifications", "check_rollups", "trace_codes", "events", "parcel_items")
    for table in (*tables, "anomalies"):
        assert f"Seq Scan on {table}" not in plan, plan
    # The checks since the roll-up: found by code and time, not by reading all of the code's.
    window = re.search(r"Index Scan using (\w+) on verifications\b.*\n.*Index Cond: (.*)", plan)
    assert window and window[1] == "ix_verifications_serial_at", plan
    assert "verified_at >=" in window[2], plan


def test_a_link_with_another_lot_or_gtin_is_a_forged_link_and_records_nothing(
    client, world, session
):
    """A real serial under the wrong lot or GTIN is a forged link, said as such (not as a
    code never issued): no answer about the unit, no check."""
    serial = world["serials"][1]
    uri = answer(client, serial)["code"]["uri"]
    path = urlsplit(uri).path
    assert client.get(path, headers=JSON).status_code == 200
    wrong_lot = re.sub(r"/10/[^/]+/", "/10/NOTTHISLOT/", path)
    wrong_gtin = "/01/04006381333931" + path[len("/01/00000000000000") :]
    for bad in (wrong_lot, wrong_gtin):
        resp = client.get(bad, headers=JSON)
        body = resp.get_json()
        assert resp.status_code == 404 and warnings(body) == ["forged_link"]
        assert body["verdict"]["look"] == "forged_link" and "product" not in body
    never = client.get(re.sub(r"/21/.*", "/21/" + "A" * 16, path), headers=JSON)
    assert warnings(never.get_json()) == ["unknown_code"]
    checks = session.scalars(sa.select(Verification).where(Verification.serial == serial)).all()
    assert len(checks) == 2


def test_a_dropped_database_connection_costs_no_scan(app, client, world):
    """The pool does not ping before each checkout: when the server drops its connections
    (a restart), the scan sends its statement again on a fresh one; any other request that
    meets a dropped connection is answered 503 with Retry-After, and the next one works."""
    engine = app.extensions["trace"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement scan and the pool's reconnection are PostgreSQL's")
    serial = world["serials"][0]
    assert answer(client, serial)["checks"]["count"] == 1

    def drop_connections():
        """The server ends the app's connections (as a restart would), and only those:
        connections other fixtures hold stay up."""
        held = [engine.connect() for _ in range(3)]  # a pool of several connections
        for conn in held:
            conn.close()
        pids = [
            rec.dbapi_connection.info.backend_pid
            for rec in list(engine.pool._pool.queue)
            if rec.dbapi_connection is not None
        ]
        killer = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
        with killer.connect() as conn:
            pids += conn.scalars(  # and the scan's own (app.db.StatementConnections)
                sa.text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": StatementConnections.NAME},
            ).all()
            ended = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"
            conn.execute(
                sa.text("SELECT pg_terminate_backend(p) FROM unnest(:pids) p"), {"pids": pids}
            )
            conn.commit()
            for _ in range(100):  # the backends end a moment later
                if not conn.scalar(sa.text(ended), {"pids": pids}):
                    break
                conn.commit()
                time.sleep(0.05)
        killer.dispose()

    drop_connections()
    assert answer(client, serial)["checks"]["count"] == 2
    seen = []
    for _ in range(3):
        drop_connections()
        responses = [client.get(f"/api/v1/codes/{serial}") for _ in range(4)]
        statuses = [r.status_code for r in responses]
        # At most one request meets a dropped connection: the pool then renews the others.
        assert set(statuses) <= {200, 503} and statuses.count(503) <= 1, statuses
        for r in responses:
            if r.status_code == 503:
                assert "Retry-After" in r.headers
                assert r.get_json()["error"]["code"] == "database_unavailable"
        seen += statuses
    assert 503 in seen  # the path was taken at least once
    drop_connections()
    assert answer(client, serial)["checks"]["count"] == 3
    engine.dispose()  # no dropped connection left in the pool for the next test


@pytest.mark.committed  # a second app, with an engine of its own, reads the data
def test_a_kept_grade_never_hides_a_new_record_or_decision(database_url, make, world, session):
    """With the merchant's credit kept for ten minutes, a regulator's confirmation of a
    serious anomaly (made long enough ago to be final) and a commendation (final at once)
    both show on the very next scan."""
    from datetime import UTC, datetime, timedelta

    from app import create_app
    from app.anomalies.findings import record_findings
    from app.consumer.units import forget_public_parts
    from tracecore.anomalies import SERIOUS, Finding

    caching = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "PUBLIC_CREDIT_MAX_AGE_S": 600,
        }
    )
    client, auth = caching.test_client(), make.auth("regulator")
    serial, merchant = world["serials"][0], world["merchant"]
    try:
        # A serious anomaly, still open: it costs points but does not black-list.
        finding = Finding("remote_sign", SERIOUS, ("code", "X1"), (("merchant", merchant),), {})
        [anomaly] = record_findings(
            session, [finding], caching.extensions["trace"].config.policy, datetime.now(UTC)
        )
        session.commit()
        body = answer(client, serial)
        assert body["merchant"]["credit"]["list"] is None and warnings(body) == []
        from tests.app.test_credit_api import confirmed_at

        confirmed_at(caching, anomaly.id, datetime.now(UTC) - timedelta(days=30))
        body = answer(client, serial)
        assert body["merchant"]["credit"]["list"] == "black"
        assert warnings(body) == ["merchant_black_listed"]
        forget_public_parts()

        other = world["serials"][1]
        score = answer(client, other)["merchant"]["credit"]["score"]
        resp = client.post(
            f"/api/v1/credit/merchant/{merchant}/records",
            json={"kind": "commendation", "reason": "one more"},
            headers=auth,
        )
        assert resp.status_code == 201
        assert answer(client, other)["merchant"]["credit"]["score"] > score
    finally:
        forget_public_parts()
        caching.extensions["trace"].engine.dispose()


def test_the_json_answer_is_the_bytes_flask_would_write(app, client, world):
    """The JSON form is written by orjson (app.serialize.json_body): byte for byte what the
    app's JSON provider writes, for a unit with a journey and warnings."""
    ship(world)
    serial = world["serials"][0]
    client.get(f"/t/{serial}", headers=JSON)  # a second check: the copied-code counts show
    resp = client.get(f"/t/{serial}", headers=JSON)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_data()
    with app.app_context():
        expected = app.json.response(resp.get_json()).get_data()
    assert body == expected and body.endswith(b"}\n")
    assert "常州市钟楼区".encode() in body  # UTF-8, not \\u escapes


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1e-05},
        {"a": [1e16]},
        {"a": -0.00001},
        {1: "non-str key"},
        {"when": date(2026, 1, 2)},
        {"s": "\ud800"},
        {"big": 2**70},
    ],
)
def test_json_body_leaves_to_flask_what_orjson_writes_otherwise(app, value):
    from app.serialize import json_body

    assert json_body(value) is None
    with app.app_context():
        app.json.dumps(value)  # the provider writes it


def test_json_body_writes_the_providers_bytes(app):
    from markupsafe import Markup

    from app.serialize import json_body

    value = {"z": 1, "a": [0.0001, 31.8, -2, None, True, 'é中\n"\\'], "n": {}, "t": (1, "x")}
    with app.app_context():
        assert json_body(value) == app.json.response(value).get_data()
        assert json_body({"m": Markup("<b>")}) is None  # a str subclass: the provider's way


@pytest.mark.parametrize("secure", [False, True])
def test_the_client_cookie_is_the_header_werkzeug_writes(app, secure):
    """The client cookie is werkzeug's own cookie for a year, HttpOnly and SameSite=Lax,
    Secure over HTTPS."""
    from flask import g
    from werkzeug.http import dump_cookie

    from app.consumer.pages import CLIENT_COOKIE, _remember_client

    value = "0123456789abcdef0123456789abcdef"
    base = "https://id.example.cn" if secure else "http://id.example.cn"
    while True:
        second = int(time.time())
        with app.test_request_context("/t/ABC", base_url=base):
            g.client_value = value
            ours = _remember_client(app.response_class()).headers["Set-Cookie"]
        werkzeugs = dump_cookie(
            CLIENT_COOKIE,
            value,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
        if int(time.time()) == second:  # not straddling a second
            break
    assert ours == werkzeugs


@pytest.mark.parametrize("raw_uri", [True, False], ids=["raw URI", "decoded path only"])
def test_a_lot_with_a_slash_scans_with_or_without_the_raw_uri(client, make, raw_uri):
    """A lot may hold '/', sent as %2F in the QR code's link. gunicorn passes the raw URI;
    granian (the production server) only the decoded path, read by the link's shape: does
    the unit's page answer either way?"""
    batch = make.batch(lot="AB/12")
    serial = make.codes(batch, 1)[0]
    body = answer(client, serial)
    path = urlsplit(body["code"]["uri"]).path
    assert "/10/AB%2F12/21/" in path
    overrides = {} if raw_uri else {"RAW_URI": "", "REQUEST_URI": ""}
    resp = client.get(path, headers=JSON, environ_overrides=overrides)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["code"]["serial"] == serial
    assert resp.get_json()["batch"]["lot"] == "AB/12"
