"""Issuing trace codes, finding them, the resolver, and the label endpoints."""

import io

import biip
import pytest
import sqlalchemy as sa
import zxingcpp
from biip.gs1_messages import GS1Message
from PIL import Image

from app.codes.operations import issue_codes
from tracecore.access import OPERATOR
from tracecore.errors import Conflict
from tracecore.serials import SERIAL_LENGTH


def issue(client, make, batch_id, count, merchant_id=None, **kw):
    headers = make.auth("admin") if merchant_id is None else make.auth("merchant", merchant_id)
    return client.post(
        f"/api/v1/batches/{batch_id}/codes", json={"count": count, **kw}, headers=headers
    )


def test_merchant_issues_codes_for_its_batch(client, make):
    """Does issuing return `count` distinct serials with their Digital Link URIs?"""
    merchant = make.merchant()
    batch = make.batch(make.product(merchant, gtin="4006381333931"), lot="LOT-7")
    resp = issue(client, make, batch, 25, merchant)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["batch_id"] == batch and body["count"] == 25
    serials = [c["serial"] for c in body["codes"]]
    assert len(set(serials)) == 25 and all(len(s) == SERIAL_LENGTH for s in serials)
    first = body["codes"][0]
    assert first["uri"] == f"https://id.example.cn/01/04006381333931/10/LOT-7/21/{first['serial']}"


def test_issued_uri_parses_with_an_independent_gs1_parser(client, make):
    """Does a third-party GS1 parser read our Digital Link URI with the right parts?"""
    batch = make.batch(make.product(gtin="4006381333931"), lot="AB-12.3")
    code = issue(client, make, batch, 1).get_json()["codes"][0]
    result = biip.parse(code["uri"])
    assert result.gtin_error is None
    link = result.gs1_digital_link_uri
    assert link.element_strings.get(ai="01").value == "04006381333931"
    assert link.element_strings.get(ai="10").value == "AB-12.3"
    assert link.element_strings.get(ai="21").value == code["serial"]


def test_csv_is_streamed_when_asked_for(client, make):
    """Does `Accept: text/csv` give `serial,uri` lines, one per code?"""
    batch = make.batch(quantity=30_000)
    resp = client.post(
        f"/api/v1/batches/{batch}/codes",
        json={"count": 30_000},
        headers={**make.auth("admin"), "Accept": "text/csv"},
    )
    assert resp.status_code == 201 and resp.mimetype == "text/csv"
    assert resp.is_streamed
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0] == "serial,uri" and len(lines) == 30_001
    serial, uri = lines[1].split(",")
    assert uri.endswith("/21/" + serial)


@pytest.mark.parametrize("count", [0, -1, 100_001])
def test_count_out_of_range_is_rejected(client, make, count):
    """Are counts ≤ 0 or above the configured maximum refused, naming `count`?"""
    resp = issue(client, make, make.batch(quantity=1_000_000), count)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "count"


def test_count_must_be_an_integer(client, make):
    """Is a count sent as a string refused rather than coerced?"""
    resp = issue(client, make, make.batch(), "10")
    assert resp.status_code == 422


def test_merchant_cannot_issue_for_another_merchants_product(client, make, session):
    """May merchant A issue codes for merchant B's batch, and is anything written if it tries?"""
    a = make.merchant()
    batch = make.batch()
    resp = issue(client, make, batch, 5, merchant_id=a)
    assert resp.status_code == 403
    assert session.scalar(sa.text("SELECT count(*) FROM trace_codes")) == 0


def test_unknown_batch_is_not_found(client, make):
    """Does issuing for a batch that does not exist give a 404?"""
    assert issue(client, make, 987654, 5).status_code == 404


def test_issuance_may_not_pass_the_batch_quantity_unless_asked(client, make):
    """Is the quantity a hard limit unless the caller explicitly insists?"""
    batch = make.batch(quantity=10)
    assert issue(client, make, batch, 8).status_code == 201
    refused = issue(client, make, batch, 3)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["details"] == {"quantity": 10, "issued": 8, "field": "count"}
    assert issue(client, make, batch, 3, allow_over_quantity=True).status_code == 201
    assert client.get(f"/api/v1/batches/{batch}").get_json()["issued_count"] == 11


def test_failed_issuance_writes_nothing(app, make, session):
    """When serials cannot be drawn unique, is every row of the attempt rolled back?"""
    batch = make.batch()
    taken = make.codes(batch, 1)[0]
    with app.extensions["trace"].sessionmaker() as s, pytest.raises(Conflict):
        issue_codes(
            s,
            OPERATOR,
            batch,
            3,
            max_count=100,
            serial_source=lambda n: [taken] + [f"FRESH{i:011d}" for i in range(n - 1)],
        )
    s.rollback()
    assert session.scalar(sa.text("SELECT count(*) FROM trace_codes")) == 1
    assert session.scalar(sa.text("SELECT count(*) FROM issuances")) == 1
    assert session.scalar(sa.text(f"SELECT issued_count FROM batches WHERE id={batch}")) == 1


def test_a_colliding_serial_is_drawn_again(app, make, session):
    """If a random serial collides with a stored one, is the issuance retried and completed?"""
    batch = make.batch()
    taken = make.codes(batch, 1)[0]
    draws = iter([[taken, "AAAAAAAAAAAAAAAA"], ["BBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC"]])
    with app.extensions["trace"].sessionmaker() as s:
        issued = issue_codes(
            s, OPERATOR, batch, 2, max_count=100, serial_source=lambda n: next(draws)
        )
        s.commit()
    assert issued.serials == ["BBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC"]
    stored = set(session.scalars(sa.text("SELECT serial FROM trace_codes")))
    assert stored == {taken, "BBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC"}


def test_code_is_found_by_serial_and_by_uri(client, make):
    """Do the serial and the full URI lead to the same answer?"""
    code = issue(client, make, make.batch(), 1).get_json()["codes"][0]
    by_serial = client.get(f"/api/v1/codes/{code['serial']}").get_json()
    by_uri = client.get("/api/v1/codes", query_string={"uri": code["uri"]}).get_json()
    assert by_serial == by_uri
    assert by_serial["state"] == "issued" and by_serial["uri"] == code["uri"]
    assert {"product", "batch", "merchant"} <= by_serial.keys()


def test_unknown_serial_is_not_found(client, make):
    """Is a well-formed serial that was never issued a 404?"""
    make.batch()
    resp = client.get("/api/v1/codes/AAAAAAAAAAAAAAAA")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("serial", ["A" * 21, "BAD%23SERIAL", "序列号"])
def test_malformed_serial_is_rejected(client, serial):
    """Is a serial outside the GS1 AI 21 set or longer than 20 refused with 422?"""
    resp = client.get(f"/api/v1/codes/{serial}")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["field"] == "serial"


def test_real_serial_under_another_gtin_is_not_found(client, make):
    """Is a forged link (a genuine serial under another product's GTIN) refused?"""
    code = issue(client, make, make.batch(), 1).get_json()["codes"][0]
    forged = (
        code["uri"].replace("/01/0690", "/01/0400").split("/01/")[0]
        + "/01/04006381333931/10/"
        + code["uri"].split("/10/")[1]
    )
    resp = client.get("/api/v1/codes", query_string={"uri": forged})
    assert resp.status_code == 404


@pytest.mark.committed("postgresql")  # the scan: on PostgreSQL, connections of its own
def test_resolver_answers_json_when_asked(client, make):
    """Does the Digital Link path answer the code's JSON to a client that asks for JSON?"""
    code = issue(client, make, make.batch(), 1).get_json()["codes"][0]
    path = code["uri"].removeprefix("https://id.example.cn")
    resp = client.get(path, headers={"Accept": "application/json"})
    assert resp.status_code == 200
    answer, api = resp.get_json(), client.get(f"/api/v1/codes/{code['serial']}").get_json()
    assert answer["code"]["serial"] == code["serial"] and answer["code"]["uri"] == code["uri"]
    assert answer["product"] == api["product"] and answer["verdict"]["level"] == "genuine"


@pytest.mark.committed("postgresql")  # the scan: on PostgreSQL, connections of its own
def test_resolver_accepts_a_gtin13_in_the_path(client, make):
    """Does /01/{GTIN-13}/... resolve like the canonical GTIN-14 form (a permanent redirect
    to it, as the GS1 Digital Link standard writes GTINs in 14 digits)?"""
    batch = make.batch(make.product(gtin="4006381333931"), lot="X1")
    code = issue(client, make, batch, 1).get_json()["codes"][0]
    resp = client.get(
        f"/01/4006381333931/10/X1/21/{code['serial']}",
        headers={"Accept": "application/json"},
        follow_redirects=True,
    )
    assert [r.status_code for r in resp.history] == [301]
    assert resp.status_code == 200 and resp.get_json()["code"]["serial"] == code["serial"]


@pytest.mark.committed("postgresql")  # the scan: on PostgreSQL, connections of its own
def test_resolver_serves_a_page_to_browsers(client, make):
    """Does a phone's browser get a readable page, Chinese first, with the product name?"""
    batch = make.batch(make.product(name="有机大米 <5kg>"))
    code = issue(client, make, batch, 1).get_json()["codes"][0]
    resp = client.get(
        code["uri"].removeprefix("https://id.example.cn"), headers={"Accept": "text/html"}
    )
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "有机大米 &lt;5kg&gt;" in html and "<5kg>" not in html


def decode(png: bytes):
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))


def test_label_png_decodes_to_the_uri(client, make):
    """Does the QR label served for a code decode, with a real decoder, to its URI?"""
    code = issue(client, make, make.batch(), 1).get_json()["codes"][0]
    resp = client.get(f"/api/v1/codes/{code['serial']}/label.png")
    assert resp.mimetype == "image/png"
    assert [r.text for r in decode(resp.data)] == [code["uri"]]


def test_barcode_png_decodes_to_the_element_string(client, make):
    """Does the GS1-128 barcode decode to (01)(10)(21) of the code?"""
    batch = make.batch(make.product(gtin="4006381333931"), lot="LOT7")
    code = issue(client, make, batch, 1).get_json()["codes"][0]
    resp = client.get(f"/api/v1/codes/{code['serial']}/barcode.png")
    (result,) = decode(resp.data)
    assert result.format == zxingcpp.BarcodeFormat.Code128
    assert result.symbology_identifier == "]C1"  # FNC1 first: a GS1-128 symbol
    assert result.text == f"(01)04006381333931(10)LOT7(21){code['serial']}"
    strings = GS1Message.parse_hri(result.text).element_strings
    assert strings.get(ai="01").value == "04006381333931"
    assert strings.get(ai="01").gtin is not None  # biip validated the check digit
    assert strings.get(ai="10").value == "LOT7"
    assert strings.get(ai="21").value == code["serial"]


@pytest.mark.parametrize("name", ["label.svg", "barcode.svg"])
def test_svg_labels_are_svg(client, make, name):
    """Are the SVG forms served as SVG documents?"""
    code = issue(client, make, make.batch(), 1).get_json()["codes"][0]
    resp = client.get(f"/api/v1/codes/{code['serial']}/{name}")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    assert b"<svg" in resp.data


def test_label_sheet_pdf_is_for_the_batch_owner_only(client, make):
    """Who may download a batch's label sheet (it lists every serial)?"""
    owner = make.merchant()
    batch = make.batch(make.product(owner))
    make.codes(batch, 5)
    url = f"/api/v1/batches/{batch}/labels.pdf"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=make.auth("merchant", make.merchant())).status_code == 403
    resp = client.get(url, headers=make.auth("merchant", owner))
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")


def test_label_sheet_pages_through_large_batches(client, make):
    """Does ?offset=&limit= select the labels, and a bad limit get a 422?"""
    from pypdf import PdfReader

    batch = make.batch()
    serials = sorted(make.codes(batch, 6))
    headers = make.auth("admin")
    resp = client.get(f"/api/v1/batches/{batch}/labels.pdf?offset=2&limit=2", headers=headers)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.data)).pages)
    text = text.replace(" ", "")  # the serial is printed in groups of four
    assert serials[2] in text and serials[3] in text and serials[4] not in text
    bad = client.get(f"/api/v1/batches/{batch}/labels.pdf?limit=0", headers=headers)
    assert bad.status_code == 422


def test_label_sheet_is_streamed_page_by_page(client, make):
    """Is the sheet sent as it is drawn (a streamed body whose first piece is the header and
    whose pages follow one by one), not built whole before the first byte?"""
    batch = make.batch()
    make.codes(batch, 30)
    resp = client.get(
        f"/api/v1/batches/{batch}/labels.pdf", headers=make.auth("admin"), buffered=False
    )
    assert resp.status_code == 200 and resp.is_streamed
    pieces = iter(resp.response)
    assert next(pieces).startswith(b"%PDF")
    pages = [p for p in pieces if b"/Type /Page " in p]
    assert len(pages) == 3  # 30 labels, 12 a page, each page its own piece
    resp.close()


@pytest.mark.committed  # each thread's request has a connection of its own
def test_concurrent_issuance_never_passes_the_quantity(app, make, session):
    """When many requests race for the last units of a batch, is the quantity still respected?"""
    from concurrent.futures import ThreadPoolExecutor

    batch = make.batch(quantity=50)
    headers = make.auth("admin")

    def attempt(_):
        with app.test_client() as c:
            return c.post(
                f"/api/v1/batches/{batch}/codes", json={"count": 10}, headers=headers
            ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(12)))
    assert statuses.count(201) == 5
    assert set(statuses) == {201, 409}
    assert session.scalar(sa.text("SELECT count(*) FROM trace_codes")) == 50
    assert session.scalar(sa.text(f"SELECT issued_count FROM batches WHERE id={batch}")) == 50
