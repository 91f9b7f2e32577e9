"""The consumer's side beyond one scan: codes people can type (on the page, the API and the
workspace search), the entry page, and a verdict that says what to do, from an issuer the
page names."""

import dataclasses
import re
from datetime import date
from urllib.parse import quote, urlsplit

import pytest

from app.codes.operations import issue_codes
from tests.app.test_consumer_pages import HTML, JSON, copy_code
from tests.app.test_events_api import ship
from tests.app.test_workspace import sign_in
from tracecore.access import OPERATOR
from tracecore.gs1 import element_string
from tracecore.serials import grouped

# On PostgreSQL the scan runs on connections of its own, in autocommit: it reads only what
# the test committed.
pytestmark = pytest.mark.committed("postgresql")

#: Each letter a serial may have that a person copying a label may type as a digit.
CONFUSED = {"O": "0", "I": "1", "B": "8", "G": "9"}


@pytest.fixture
def typed(make):
    """Units whose serials hold O, I, B and G, and the ways a person may type each:
    (what was typed, the serial meant) pairs: lowercase, grouped in fours with spaces, with
    dashes, with surrounding blanks, and with each confusable letter typed as its digit."""
    batch = make.batch()
    serials = ["OIBG2345ABCDEFHJ", "KLMN6723GOBIPQRS"]
    make._commit(
        lambda s: issue_codes(
            s, OPERATOR, batch, len(serials), max_count=100, serial_source=lambda n: serials
        )
    )
    table = []
    for serial in serials:
        dashed = "-".join(serial[i : i + 4] for i in range(0, 16, 4))
        table += [
            (serial.lower(), serial),
            (grouped(serial), serial),
            (dashed, serial),
            (f"  {dashed.lower()} ", serial),
        ]
        for letter, digit in CONFUSED.items():
            table.append((serial.replace(letter, digit), serial))
        table.append((serial.translate(str.maketrans(CONFUSED)).lower(), serial))
    return batch, table


# -- codes people can type: page, API, workspace ----------------------------------------------


def test_a_typed_code_redirects_the_page_to_its_canonical_url(client, typed):
    """Does every way of typing a code open its unit's page (a browser redirected to the
    canonical URL, JSON answered at once), instead of 'never issued'?"""
    _, table = typed
    assert all(any(digit in text for text, _ in table) for digit in CONFUSED.values())
    for text, serial in table:
        resp = client.get(f"/t/{quote(text)}?lang=en", headers=HTML)
        assert resp.status_code == 302, text
        assert resp.headers["Location"] == f"/t/{serial}?lang=en", text
        body = client.get(f"/t/{quote(text)}", headers=JSON)
        assert body.status_code == 200, text
        assert body.get_json()["code"]["serial"] == serial
    assert client.get(f"/t/{serial}", headers=HTML).status_code == 200  # canonical: no redirect


def test_a_typed_code_in_a_digital_link_redirects_to_the_canonical_link(client, typed):
    _, table = typed
    serial = table[0][1]
    uri = client.get(f"/t/{serial}", headers=JSON).get_json()["code"]["uri"]
    path = urlsplit(uri).path
    for text, meant in table:
        if meant != serial or " " in text:
            continue
        resp = client.get(path.replace(serial, text.strip()), headers=HTML)
        assert resp.status_code == 302 and resp.headers["Location"] == path, text
        resp = client.get(path.replace(serial, text.strip()), headers=JSON)
        assert resp.status_code == 200 and resp.get_json()["code"]["serial"] == serial


def test_the_api_reads_a_typed_code(client, typed):
    """Does the public API find the unit however its serial was typed, by serial and URI?"""
    _, table = typed
    for text, serial in table:
        resp = client.get(f"/api/v1/codes/{quote(text)}")
        assert resp.status_code == 200, text
        assert resp.get_json()["serial"] == serial
        uri = resp.get_json()["uri"]
        if " " not in text:
            typed_uri = uri.replace(serial, text.strip())
            by_uri = client.get("/api/v1/codes", query_string={"uri": typed_uri})
            assert by_uri.status_code == 200 and by_uri.get_json()["serial"] == serial


def test_the_workspace_search_reads_a_typed_code(client, make, typed):
    """Does a regulator's search find the code however it was typed (lowercase included)?"""
    regulator = sign_in(client, *make.user("regulator", "3204"))
    _, table = typed
    for text, serial in table:
        resp = regulator.get("/workspace/search", query_string={"q": text}, headers=HTML)
        # one hit goes straight to it
        assert resp.status_code == 302, text
        assert resp.headers["Location"].endswith(f"/workspace/codes/{serial}"), text
    assert regulator.get(f"/workspace/codes/{table[0][0]}", headers=HTML).status_code == 200


# -- the entry page ----------------------------------------------------------------------------


def test_the_public_lands_on_an_entry_page_and_the_workspace_stays_apart(client):
    """Is ``/`` a page to type or scan a code on (no sign-in), with the camera scan's decoder
    served by the app itself, and is ``/t/`` without a code sent there?"""
    resp = client.get("/", headers=HTML)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'name="code"' in html and 'action="/check"' in html
    assert 'id="scan-start"' in html and "/static/entry.js" in html
    decoder = re.search(r'data-decoder="([^"]+)"', html).group(1)
    assert decoder.startswith("/static/vendor/")  # shipped with the app: no CDN
    for script in (decoder, "/static/entry.js"):
        with client.get(script) as served:
            assert served.status_code == 200
    assert 'href="/workspace/"' in html
    assert client.get("/t/").headers["Location"] == "/"
    assert client.get("/workspace/", headers=HTML).status_code in (200, 302)
    policy = resp.headers["Permissions-Policy"]
    assert "camera=(self)" in policy  # the page may ask for the camera; no other site may


def test_what_is_typed_on_the_entry_page_opens_its_unit(client, typed, make):
    """Does the entry page take a serial however typed, a Digital Link (URI or path), and the
    text under a barcode, and open the unit's page by its canonical URL?"""
    _, table = typed
    for text, serial in table:
        resp = client.get("/check", query_string={"code": text})
        assert resp.status_code == 303 and resp.headers["Location"] == f"/t/{serial}", text
    serial = table[0][1]
    body = client.get(f"/t/{serial}", headers=JSON).get_json()
    uri, gtin, lot = body["code"]["uri"], body["product"]["gtin"], body["batch"]["lot"]
    path = urlsplit(uri).path
    for text in (
        uri,
        path,
        uri.replace(serial, serial.lower()),
        element_string(gtin, lot, serial),
        f"(01) {gtin} (10) {lot} (21) {grouped(serial)}",
        f"]d201{gtin}10{lot}\x1d21{serial}",
    ):
        resp = client.get("/check", query_string={"code": text})
        assert resp.status_code == 303 and resp.headers["Location"] == path, text
        assert client.get(path, headers=HTML).status_code == 200
    english = client.get("/check", query_string={"code": serial.lower(), "lang": "en"})
    assert english.headers["Location"] == f"/t/{serial}?lang=en"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "请输入追溯码"),
        ("   ", "请输入追溯码"),
        ("ABC", "16 位"),
        ("HYSSULQXNMWMTTRRXX", "16 位"),
        ("X" * 400, "太长"),
        ("(01)06901234567892", "没有追溯码"),
        ("(01)123(21)ABCDEFGHABCDEFGH", "GTIN"),
    ],
)
def test_text_that_cannot_be_a_code_is_a_typo_not_a_fake(client, text, words):
    """Is text that cannot be a code answered with the entry page again, what was typed kept
    and the reason given (422), never with a counterfeit verdict?"""
    resp = client.get("/check", query_string={"code": text}, headers=HTML)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and words in html, html
    assert 'role="alert"' in html and "疑似假冒" not in html
    if text.strip() and len(text) < 300:
        assert f'value="{text}"' in html
    api = client.get("/check", query_string={"code": text}, headers=JSON)
    assert api.status_code == 422 and api.get_json()["error"]["code"] == "validation_failed"


def test_every_page_has_a_favicon(client):
    """Is there a favicon where browsers look (no 404 on every page) and where pages point?"""
    with client.get("/favicon.ico") as ico:
        assert ico.status_code == 200 and ico.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    with client.get("/static/favicon.svg") as svg:
        assert svg.status_code == 200 and b"<svg" in svg.data
    for path in ("/", "/t/AAAAAAAAAAAAAAAA", "/workspace/sign-in"):
        assert 'rel="icon" href="/static/favicon.svg"' in client.get(path, headers=HTML).text


def test_the_issuer_is_configurable_and_named_in_header_and_footer(app, client, monkeypatch):
    """Does every consumer page name the issuer, its site and its hotline from the settings?"""
    ext = app.extensions["trace"]
    cfg = dataclasses.replace(
        ext.config,
        ISSUER_NAME="江苏省市场监督管理局商品追溯平台",
        ISSUER_NAME_EN="Jiangsu Product Trace",
        ISSUER_URL="https://trace.js.example.gov.cn/",
        ISSUER_HOTLINE="025-12345678",
    )
    monkeypatch.setitem(app.extensions, "trace", dataclasses.replace(ext, config=cfg))
    for path in ("/", "/t/AAAAAAAAAAAAAAAA"):
        html = client.get(path, headers=HTML).text
        header, footer = html.split("<main", 1)[0], html.rsplit("</main>", 1)[1]
        assert "江苏省市场监督管理局商品追溯平台" in header
        assert "江苏省市场监督管理局商品追溯平台" in footer and "trace.js.example.gov.cn" in footer
        assert 'href="tel:025-12345678"' in footer
    english = client.get("/?lang=en", headers=HTML).text
    assert "Jiangsu Product Trace" in english
    # the advice of a fake gives the hotline
    assert "或拨打 025-12345678。" in client.get("/t/AAAAAAAAAAAAAAAA", headers=HTML).text


def test_the_default_issuer_describes_the_demo(client):
    html = client.get("/", headers=HTML).text
    assert "（演示）" in html and 'href="tel:12315"' in html


# -- a verdict that says what to do ------------------------------------------------------------


def _genuine(client, make, world):
    ship(world)
    return f"/t/{world['serials'][0]}"


def _recalled(client, make, world):
    ship(world)
    resp = client.post(
        f"/api/v1/batches/{world['batch']}/recall",
        json={"reason": "沙门氏菌检出"},
        headers=make.auth("regulator"),
    )
    assert resp.status_code == 200
    return f"/t/{world['serials'][0]}"


def _expired(client, make, world):
    batch = make.batch(produced_on=date(2024, 1, 1), expires_on=date(2025, 1, 1))
    return f"/t/{make.codes(batch, 1)[0]}"


def _copied(client, make, world):
    copy_code(client, world["serials"][0])
    return f"/t/{world['serials'][0]}"


def _sold_twice(client, make, world):
    serial, pos = world["serials"][0], world["pos"]
    pos.post(pos.event("sold", 10, code=serial, data={"order_id": "O-1"}))
    pos.post(pos.event("sold", 20, code=serial, data={"order_id": "O-2"}))
    return f"/t/{serial}"


def _never_issued(client, make, world):
    return "/t/22OZ6T3FPQBYRCWX"


def _forged_link(client, make, world):
    serial = world["serials"][1]
    uri = client.get(f"/t/{serial}", headers=JSON).get_json()["code"]["uri"]
    return re.sub(r"/10/[^/]+/", "/10/NOTTHISLOT/", urlsplit(uri).path)


#: Each look of a verdict: how to make a unit that has it (its page's path), its HTTP
#: status and words of its headline in Chinese and English. Browser tests use it too.
VERDICTS = {
    "genuine": (_genuine, 200, "正品", "Genuine"),
    "recalled": (_recalled, 200, "已召回", "Recalled"),
    "expired": (_expired, 200, "已过保质期", "Past its expiry date"),
    "copied_code": (_copied, 200, "疑似复制码", "copied code"),
    "sold_twice": (_sold_twice, 200, "销售过不止一次", "sold more than once"),
    "unknown_code": (_never_issued, 404, "查无此码", "never issued"),
    "forged_link": (_forged_link, 404, "码与商品不符", "do not match"),
}


@pytest.mark.parametrize("look", list(VERDICTS))
def test_each_verdict_has_its_own_headline_icon_and_advice(client, make, world, look):
    """Does each verdict look like itself (headline, icon, advice with the hotline where
    there is something to report), in Chinese and English?"""
    setup, status, zh_words, en_words = VERDICTS[look]
    path = setup(client, make, world)
    resp = client.get(path, headers=HTML)
    html = resp.get_data(as_text=True)
    assert resp.status_code == status, html
    verdict = re.search(r'<section class="card verdict[^>]*>.*?</section>', html, re.S).group(0)
    assert f'data-look="{look}"' in verdict and f'data-icon="{look}"' in verdict
    assert zh_words in re.search(r"<h1>(.*?)</h1>", verdict).group(1)
    advice = re.findall(r"<li>(.*?)</li>", verdict.split('class="advice"', 1)[1])
    assert len(advice) >= 2
    if look != "genuine":
        assert any("12315" in line for line in advice), advice
    english = client.get(path + "?lang=en", headers=HTML).get_data(as_text=True)
    assert en_words in re.search(r"<h1>(.*?)</h1>", english).group(1)
    assert client.get(path, headers=JSON).get_json()["verdict"]["look"] == look


def test_the_headlines_differ_for_a_recall_and_a_fake(client, make, world):
    """The same 'Warning' for a recall and for a counterfeit was the issue: are they apart?"""
    titles = set()
    for look, (setup, *_) in VERDICTS.items():
        if look in ("recalled", "unknown_code", "forged_link"):
            html = client.get(setup(client, make, world), headers=HTML).text
            titles.add(re.search(r"<h1>(.*?)</h1>", html).group(1))
    assert len(titles) == 3


def test_the_page_says_the_state_and_place_first_and_the_journey_newest_first(client, world):
    """Is the unit's state and where it is now at the top, in the verdict, the journey newest
    first, and every time said as people say it, in Beijing time?"""
    ship(world)
    html = client.get(f"/t/{world['serials'][0]}", headers=HTML).text
    verdict = re.search(r'<section class="card verdict.*?</section>', html, re.S).group(0)
    now = re.search(r'<p class="now" id="now">(.*?)</p>', verdict, re.S).group(1)
    assert "当前状态" in now and "已签收" in now and "常州市钟楼区" in now
    assert re.search(r"\d{1,2}月\d{1,2}日 \d\d:\d\d（北京时间）", now)
    steps = re.findall(r'<li data-step="([a-z_]+)"', html)
    assert steps[0] == "signed" and steps[-1] == "shelved"
    journey = html.split('id="journey"', 1)[1].split("</section>", 1)[0]
    assert "T" not in re.sub(r"<[^>]+>|[^\dT:+-]", "", journey)  # no raw ISO time left
    assert "（北京时间）" in journey
    english = client.get(f"/t/{world['serials'][0]}?lang=en", headers=HTML).text
    assert "Signed for" in english and "(Beijing time)" in english


def test_a_recall_date_is_said_in_words(client, make, world):
    path = _recalled(client, make, world)
    html = client.get(path, headers=HTML).text
    warning = re.search(r'<li data-warning="recalled">(.*?)</li>', html).group(1)
    assert re.search(r"该批次已于 (\d{4}年)?\d{1,2}月\d{1,2}日 \d\d:\d\d（北京时间） 召回", warning)
    assert "+08:00" not in warning
    body = client.get(path, headers=JSON).get_json()
    assert body["batch"]["recalled_at"].endswith("+08:00")  # machines still get RFC 3339


def test_the_grade_is_explained_and_links_to_the_public_credit_page(client, make, world):
    """Is the grade said in one line, with a link to the merchant's public credit page, and
    does that page show the same grade and the public records?"""
    from tests.app.test_credit_api import sanctioned

    sanctioned(client.application, "merchant", world["merchant"], n=1)
    html = client.get(f"/t/{world['serials'][0]}", headers=HTML).text
    grade = re.search(r'<dd id="grade">(.*?)</dd>', html, re.S).group(1)
    body = client.get(f"/t/{world['serials'][0]}", headers=JSON).get_json()
    credit = body["merchant"]["credit"]
    assert f"<strong>{credit['grade']}</strong>" in grade
    assert f"（{credit['score']} 分，满分 1000）" in grade and "信用" in grade
    link = re.search(r'href="([^"]+)"', grade).group(1)
    assert link == f"/credit/merchant/{world['merchant']}"
    page = client.get(link, headers=HTML)
    assert page.status_code == 200
    assert f"信用等级 {credit['grade']}" in page.text and f"{credit['score']} 分" in page.text
    api = client.get(f"/api/v1/credit/merchant/{world['merchant']}").get_json()
    for record in api["records"]:
        assert record["reason"] in page.text
    assert client.get("/credit/merchant/999999", headers=HTML).status_code == 404
    assert client.get("/credit/people/1", headers=HTML).status_code == 404


def test_the_page_uses_a_desktop_screen_and_keeps_the_language_link_off_the_card(client, world):
    """Two columns from 900 px (the stylesheet), and the language link in the header, not
    floating over the verdict card."""
    html = client.get(f"/t/{world['serials'][0]}", headers=HTML).text
    header = html.split("<main", 1)[0]
    assert 'class="lang"' in header and 'href="?lang=en"' in header
    assert 'class="columns"' in html and html.count('class="column"') == 2
    with client.get("/static/site.css") as css:
        text = css.get_data(as_text=True)
    assert re.search(r"@media \(min-width:900px\)\{\s*main\.wide \.columns\{display:grid", text)
    assert ".lang{float" not in text


def test_times_and_dates_are_said_as_people_say_them_in_beijing_time():
    from datetime import UTC, datetime

    from app.consumer.places import spoken_day, spoken_time

    moment = datetime(2026, 12, 1, 21, 14, tzinfo=UTC)  # 05:14 the next day in Beijing
    assert spoken_time(moment, "zh", this_year=2026) == "12月2日 05:14（北京时间）"
    assert spoken_time(moment, "en", this_year=2026) == "2 Dec 05:14 (Beijing time)"
    assert spoken_time("2026-12-02T05:14+08:00", "zh", this_year=2027) == (
        "2026年12月2日 05:14（北京时间）"  # another year: said
    )
    assert spoken_time("2026-12-02T05:14+08:00", "en", this_year=2027) == (
        "2 Dec 2026 05:14 (Beijing time)"
    )
    assert spoken_day("2027-01-31", "zh") == "2027年1月31日"
    assert spoken_day(date(2027, 1, 31), "en") == "31 Jan 2027"


def test_the_page_shows_the_code_in_groups_of_four_as_its_label_prints_it(client, world):
    """Can a consumer compare the page with the label group by group?"""
    serial = world["serials"][0]
    html = client.get(f"/t/{serial}", headers=HTML).text
    shown = re.search(r'<code class="serial" data-serial="([A-Z2-7]{16})">([^<]*)</code>', html)
    assert shown.groups() == (serial, grouped(serial))


def test_the_english_page_counts_checks_in_english(client, world):
    """ "Checked 1 times from 1 networks" was the English page's count of a first check."""
    serial = world["serials"][0]
    english = client.get(f"/t/{serial}?lang=en", headers=HTML).text
    assert "Checked once from 1 network;" in english
    client.get(f"/t/{serial}", headers=HTML, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    again = client.get(f"/t/{serial}?lang=en", headers=HTML).text
    assert "Checked 3 times from 2 networks;" in again
