"""The GS1-Conformant resolver: the description file, each Digital Link's linkset (RFC 9264)
and link types, the redirects by ``linkType``, the Digital Link's canonical forms, and the
public resources the links lead to. The consumer page itself: test_consumer_pages."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

import biip
import pytest
from biip.gs1_digital_link_uris import GS1DigitalLinkURI

from app.catalog.models import InspectionResult
from app.catalog.operations import CertificateInput
from tests.app.test_codes_api import issue

# The unit's page runs the scan: on PostgreSQL on connections of its own.
pytestmark = pytest.mark.committed("postgresql")

ROOT = "https://id.example.cn"
VOC = "https://gs1.org/voc/"
LINKSET = {"Accept": "application/linkset+json"}
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
CERTIFICATE = CertificateInput(
    issuer="常州海关",
    number="CIQ-2026-001",
    result=InspectionResult.PASSED,
    issued_on=date(2026, 10, 2),
    report_sha256="ab" * 32,
)


@pytest.fixture
def unit(client, make) -> dict:
    """A unit of GTIN-13 4006381333931, lot LOT-7, its batch certified."""
    merchant = make.merchant()
    product = make.product(merchant, gtin="4006381333931", name="有机大米")
    batch = make.batch(product, lot="LOT-7", certificates=[CERTIFICATE])
    code = issue(client, make, batch, 1, merchant).get_json()["codes"][0]
    path = urlsplit(code["uri"]).path
    return {
        "product": product,
        "batch": batch,
        "serial": code["serial"],
        "uri": code["uri"],
        "path": path,
        "lot_path": path.split("/21/")[0],
        "gtin_path": "/01/04006381333931",
    }


def check_linkset(body: dict) -> None:
    """RFC 9264 §4.2 (and the GS1 linkset schema's rules): an object with ``linkset``, an
    array of link context objects, each with an absolute ``anchor``; every other member
    a link relation type written as a URI, whose value is an array of target objects, each
    with an ``href`` (absolute), a ``title``, and optional ``type`` and ``hreflang`` (an
    array of language tags)."""
    assert set(body) == {"linkset"} and isinstance(body["linkset"], list) and body["linkset"]
    for context in body["linkset"]:
        assert urlsplit(context["anchor"]).scheme in ("https", "http")
        assert isinstance(context["itemDescription"], str)
        for rel, targets in context.items():
            if rel in ("anchor", "description", "itemDescription"):
                continue
            assert urlsplit(rel).scheme == "https" and urlsplit(rel).netloc, rel
            assert isinstance(targets, list) and targets
            for target in targets:
                assert set(target) <= {"href", "title", "type", "hreflang"}
                assert urlsplit(target["href"]).scheme == "https" and target["title"]
                assert all(isinstance(lang, str) for lang in target.get("hreflang", []))
                assert "/" in target.get("type", "x/y")


def by_rel(context: dict, name: str) -> list[dict]:
    return context.get(VOC + name, [])


# -- the description file -------------------------------------------------------------------------


def test_the_description_file_names_the_resolver_its_root_keys_and_link_types(client):
    resp = client.get("/.well-known/gs1resolver")
    body = resp.get_json()
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert body["resolverRoot"] == ROOT and body["supportedPrimaryKeys"] == ["01"]
    assert body["supportedLinkType"] == [{"namespace": VOC, "prefix": "gs1:"}]
    assert body["name"] and body["contact"]["hasTelephone"].startswith("tel:")
    assert body["linkTypeDefaultCanBeLinkset"] is False
    assert "max-age" in resp.headers["Cache-Control"] and "public" in resp.headers["Cache-Control"]
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


# -- a unit's linkset -----------------------------------------------------------------------------


def test_a_units_linkset_has_every_link_type_and_each_level_up_to_the_gtin(client, unit):
    resp = client.get(unit["path"], headers=LINKSET)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/linkset+json"
    assert "json-ld#context" in resp.headers["Link"]
    body = resp.get_json(force=True)
    check_linkset(body)
    own, lot, gtin = body["linkset"]
    assert own["anchor"] == unit["uri"]
    assert lot["anchor"] == ROOT + unit["lot_path"] and gtin["anchor"] == ROOT + unit["gtin_path"]
    assert [t["href"] for t in by_rel(own, "defaultLink")] == [unit["uri"]]
    pip = {tuple(t["hreflang"]): t for t in by_rel(own, "pip")}
    assert set(pip) == {("zh",), ("en",)} and pip[("en",)]["href"] == unit["uri"] + "?lang=en"
    assert pip[("zh",)]["type"] == "text/html"
    (events,) = by_rel(own, "traceability")
    assert events["href"] == f"{ROOT}/epcis/epcs/{unit['uri']}/events"
    assert "token" in events["title"]
    (certs,) = by_rel(own, "certificationInfo")
    assert certs["href"] == f"{ROOT}/api/v1/batches/{unit['batch']}/certificates"
    (recall,) = by_rel(own, "recallStatus")
    assert recall["href"] == f"{ROOT}/api/v1/batches/{unit['batch']}/recall-status"
    assert by_rel(gtin, "masterData")[0]["href"] == f"{ROOT}/api/v1/products/{unit['product']}"
    for context in (own, lot, gtin):
        assert len(by_rel(context, "defaultLink")) == 1


@pytest.mark.parametrize("how", ["linkset", "all"])
def test_link_type_linkset_or_all_answers_the_linkset_without_a_redirect(client, unit, how):
    resp = client.get(unit["path"], query_string={"linkType": how}, headers=HTML)
    assert resp.status_code == 200 and resp.mimetype == "application/linkset+json"
    assert resp.get_json(force=True)["linkset"][0]["anchor"] == unit["uri"]


def test_the_page_and_its_json_point_to_the_linkset(client, unit):
    for headers in (HTML, JSON):
        resp = client.get(unit["path"], headers=headers)
        assert resp.status_code == 200
        assert resp.headers["Link"] == (
            f'<{unit["uri"]}?linkType=linkset>; rel="linkset"; type="application/linkset+json"'
        )
    short = client.get(f"/t/{unit['serial']}", headers=HTML)
    assert f"<{unit['uri']}?linkType=linkset>" in short.headers["Link"]


def test_the_linkset_of_a_code_never_issued_is_not_found(client, unit):
    fake = unit["path"].split("/21/")[0] + "/21/" + "A" * 16
    resp = client.get(fake, headers=LINKSET)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    assert client.get("/01/04012345678901", headers=LINKSET).status_code == 404


def test_a_forged_link_has_no_linkset(client, unit):
    """A real serial under another lot names nothing."""
    forged = unit["path"].replace("/10/LOT-7/", "/10/OTHER/")
    assert client.get(forged, headers=LINKSET).status_code == 404


# -- link types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "where"),
    [
        ("gs1:certificationInfo", "/certificates"),
        (VOC + "certificationInfo", "/certificates"),
        ("https://www.gs1.org/voc/recallStatus", "/recall-status"),
        ("gs1:traceability", "/events"),
    ],
)
def test_a_link_type_redirects_to_its_link(client, unit, asked, where):
    resp = client.get(unit["path"], query_string={"linkType": asked})
    assert resp.status_code == 307 and resp.location.endswith(where)
    assert 'rel="linkset"' in resp.headers["Link"]


def test_pip_redirects_to_the_page_in_the_clients_language_passing_the_query_on(client, unit):
    resp = client.get(
        unit["path"],
        query_string={"linkType": "gs1:pip", "utm_source": "box"},
        headers={"Accept-Language": "en-GB,en;q=0.8"},
    )
    assert resp.status_code == 307
    target = urlsplit(resp.location)
    assert ROOT + target.path == unit["uri"]
    assert parse_qs(target.query) == {"lang": ["en"], "utm_source": ["box"]}
    chinese = client.get(
        unit["path"], query_string={"linkType": "gs1:pip"}, headers={"Accept-Language": "zh-CN"}
    )
    assert parse_qs(urlsplit(chinese.location).query) == {"lang": ["zh"]}


@pytest.mark.parametrize("asked", ["gs1:smpc", "nonsense", "gs1:", "https://example.com/voc/pip"])
def test_a_link_type_the_unit_lacks_redirects_to_its_default_link(client, unit, asked):
    """The standard: redirect to the default link unless the request says something better."""
    resp = client.get(unit["path"], query_string={"linkType": asked, "x": "1"})
    assert resp.status_code == 307 and resp.location == unit["uri"] + "?x=1"


def test_a_link_type_of_a_code_never_issued_answers_the_never_issued_page(client, unit):
    fake = unit["path"].split("/21/")[0] + "/21/" + "A" * 16
    resp = client.get(fake, query_string={"linkType": "gs1:pip"}, headers=HTML)
    assert resp.status_code == 404 and "从未登记" in resp.get_data(as_text=True)


# -- batch and product links ----------------------------------------------------------------------


def test_a_batch_link_redirects_to_its_default_and_has_its_own_linkset(client, unit):
    resp = client.get(unit["lot_path"], headers=HTML)
    assert resp.status_code == 307
    assert resp.location == f"{ROOT}/api/v1/batches/{unit['batch']}"
    body = client.get(unit["lot_path"], headers=LINKSET).get_json(force=True)
    check_linkset(body)
    lot, gtin = body["linkset"]
    assert lot["anchor"] == ROOT + unit["lot_path"] and gtin["anchor"] == ROOT + unit["gtin_path"]
    assert by_rel(lot, "certificationInfo") and by_rel(lot, "recallStatus")
    assert by_rel(lot, "traceability")[0]["href"].endswith(unit["lot_path"] + "/events")
    assert not by_rel(lot, "pip")
    recall = client.get(unit["lot_path"], query_string={"linkType": "gs1:recallStatus"})
    assert recall.location.endswith(f"/batches/{unit['batch']}/recall-status")


def test_a_product_link_redirects_to_its_details_and_lists_its_recalls(client, unit):
    resp = client.get(unit["gtin_path"])
    assert resp.status_code == 307
    assert resp.location == f"{ROOT}/api/v1/products/{unit['product']}"
    body = client.get(unit["gtin_path"], headers=LINKSET).get_json(force=True)
    check_linkset(body)
    (only,) = body["linkset"]
    assert by_rel(only, "recallStatus")[0]["href"].endswith(
        f"/products/{unit['product']}/recall-status"
    )
    # Asked for a link type only units have: the product's default.
    pip = client.get(unit["gtin_path"], query_string={"linkType": "gs1:pip"})
    assert pip.location == f"{ROOT}/api/v1/products/{unit['product']}"


def test_a_gtin_or_lot_never_registered_is_not_found(client, unit):
    assert client.get("/01/04012345678901", headers=JSON).status_code == 404
    assert client.get(unit["gtin_path"] + "/10/NOLOT", headers=JSON).status_code == 404


# -- the Digital Link's forms ---------------------------------------------------------------------


def test_a_gtin_13_redirects_permanently_to_the_gtin_14_link(client, unit):
    rest = unit["path"].removeprefix(unit["gtin_path"])
    for headers in (JSON, HTML, LINKSET):
        resp = client.get(f"/01/4006381333931{rest}", query_string={"lang": "en"}, headers=headers)
        assert resp.status_code == 301 and resp.location == unit["path"] + "?lang=en"


def test_gtin_8_and_12_redirect_to_their_gtin_14(client, unit):
    assert client.get("/01/12345670").location == "/01/00000012345670"
    assert client.get("/01/012345678905").location == "/01/00012345678905"


def test_a_trailing_slash_is_tolerated(client, unit):
    resp = client.get(unit["path"] + "/", headers=JSON)
    assert resp.status_code == 301 and resp.location == unit["path"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/01/04006381333932/10/LOT-7/21/AAAAAAAAAAAAAAAA", "check digit"),
        ("/01/04006381333931/21/AAAAAAAAAAAAAAAA/10/LOT-7", "order"),
        ("/01/04006381333931/22/X/21/AAAAAAAAAAAAAAAA", "AI '22'"),
        ("/01/04006381333931/10", "without a value"),
        ("/01/04006381333", "11 digits"),
    ],
)
def test_a_link_that_is_not_a_digital_link_is_a_400(client, path, why):
    for headers in (JSON, LINKSET):
        resp = client.get(path, headers=headers)
        error = resp.get_json(force=True)["error"]
        assert resp.status_code == 400 and error["code"] == "invalid_digital_link"
        assert why in error["message"]


def test_a_person_with_a_broken_link_sees_the_never_issued_page(client):
    resp = client.get("/01/04006381333932/10/L/21/AAAAAAAAAAAAAAAA", headers=HTML)
    assert resp.status_code == 400 and "从未登记" in resp.get_data(as_text=True)


# -- what the links lead to -----------------------------------------------------------------------


def test_certificates_are_public(client, unit):
    resp = client.get(f"/api/v1/batches/{unit['batch']}/certificates")
    body = resp.get_json()
    assert resp.status_code == 200 and body["batch"]["lot"] == "LOT-7"
    assert body["batch"]["gtin"] == "04006381333931"
    assert body["certificates"] == [
        {
            "issuer": "常州海关",
            "number": "CIQ-2026-001",
            "result": "passed",
            "issued_on": "2026-10-02",
            "report_sha256": "ab" * 32,
        }
    ]


def test_recall_status_says_recalled_when_and_why_in_plain_words(client, make, unit):
    url = f"/api/v1/batches/{unit['batch']}/recall-status"
    before = client.get(url).get_json()
    assert before["recalled"] is False and before["recalled_at"] is None
    assert "未被召回" in before["message"]["zh"]
    client.post(
        f"/api/v1/batches/{unit['batch']}/recall",
        json={"reason": "沙门氏菌检出"},
        headers=make.auth("regulator"),
    )
    after = client.get(url).get_json()
    assert after["recalled"] is True and after["reason"] == "沙门氏菌检出"
    assert after["recalled_at"].endswith("+08:00")
    assert "沙门氏菌检出" in after["message"]["zh"] and "recalled" in after["message"]["en"]
    product = client.get(f"/api/v1/products/{unit['product']}/recall-status").get_json()
    assert product["recalled"] is True and [b["lot"] for b in product["batches"]] == ["LOT-7"]


def test_the_public_resources_of_nothing_are_not_found(client):
    for url in (
        "/api/v1/batches/999999/certificates",
        "/api/v1/batches/999999/recall-status",
        "/api/v1/products/999999/recall-status",
    ):
        resp = client.get(url)
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


def test_the_canonical_forms_agree_with_an_independent_digital_link_parser(client, unit):
    """biip (a GS1 parser from PyPI) writes the GTIN-13 link with the same GTIN-14 path we
    redirect to, and refuses the qualifiers out of order, as we do."""
    rest = unit["path"].removeprefix(unit["gtin_path"])
    typed = f"{ROOT}/01/4006381333931{rest}"
    ours = client.get(urlsplit(typed).path, headers=JSON).location
    assert urlsplit(GS1DigitalLinkURI.parse(typed).as_uri()).path == ours == unit["path"]
    swapped = f"{ROOT}/01/04006381333931/21/{unit['serial']}/10/LOT-7"
    with pytest.raises(biip.ParseError):
        GS1DigitalLinkURI.parse(swapped)
    assert client.get(urlsplit(swapped).path, headers=JSON).status_code == 400
