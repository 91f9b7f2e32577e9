"""The role table: every route of the app (from its URL map), asked by every role about party
A's things in Changzhou (3204), answers as this table says. A regulator of Zhaoqing (4412) is
refused what a Changzhou one may do; a party acts only on its own things. A route missing
from the table fails, so a new route cannot be forgotten. (The world: tests/app/authz_world.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest

from tests.app.authz_world import HTML, ROLES, World
from tests.app.conftest import post_sign_in
from tests.conftest import gtin13, resident_id, uscc

AUTHORITIES = frozenset({"admin", "reg_in"})
OWN_MERCHANT = AUTHORITIES | {"m_own"}
OWN_COMPANY = AUTHORITIES | {"l_own"}
WORKSPACE = AUTHORITIES | {"reg_out"}  # pages a regulator of anywhere opens (lists filtered)
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anon"}


def expect(ok: int, allowed: frozenset, *, anon: int = 401, refused: int = 403, **other) -> dict:
    """Each role's status: ``ok`` for the allowed, ``anon`` for the anonymous caller (unless
    allowed), ``refused`` for the rest; ``other`` names exceptions."""
    table = {role: ok if role in allowed else anon if role == "anon" else refused for role in ROLES}
    return table | other


def page(ok: int, allowed: frozenset, **other) -> dict:
    """A workspace page: a signed-out GET is sent to the sign-in page, a POST is 401."""
    return expect(ok, allowed, anon=302, **other)


@dataclass(frozen=True)
class Route:
    method: str
    rule: str
    call: Callable  #: (Caller, World) -> response, about party A's things
    statuses: dict  #: role -> status
    #: For lists: whether the answer shows A's thing (roles allowed and ``sees`` it).
    shows: Callable | None = None
    sees: frozenset = frozenset()


NEW_MERCHANT = {"name": "新店", "uscc": uscc(900001), "kind": "shop", "region_code": "320412"}
NEW_COMPANY = {"name": "新快递", "uscc": uscc(900002), "region_code": "320400"}


AREA = {
    "type": "Polygon",
    "coordinates": [[[119.9, 31.7], [120.0, 31.7], [120.0, 31.8], [119.9, 31.8], [119.9, 31.7]]],
}


def _signed_event(w: World) -> dict:
    return w.shelf.event("shelved", 300, code=w.serials[2])


def _anomaly_ids(resp) -> set:
    return {a["id"] for a in resp.get_json()["items"]}


TABLE = [
    # -- parties -------------------------------------------------------------------------
    Route(
        "POST",
        "/api/v1/merchants",
        lambda c, w: c.post("/api/v1/merchants", json=NEW_MERCHANT),
        expect(201, AUTHORITIES),
    ),
    Route(
        "GET",
        "/api/v1/merchants/<id:merchant_id>",
        lambda c, w: c.get(f"/api/v1/merchants/{w.merchant_a}"),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/logistics-companies",
        lambda c, w: c.post("/api/v1/logistics-companies", json=NEW_COMPANY),
        expect(201, AUTHORITIES),
    ),
    Route(
        "GET",
        "/api/v1/logistics-companies/<id:company_id>",
        lambda c, w: c.get(f"/api/v1/logistics-companies/{w.company_a}"),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/couriers",
        lambda c, w: c.post(
            "/api/v1/couriers",
            json={
                "name": "李四",
                "id_number": resident_id(900003),
                "phone": "13800138000",
                "company_id": w.company_a,
                "region_code": "320411",
            },
        ),
        expect(201, OWN_COMPANY),
    ),
    Route(
        "GET",
        "/api/v1/couriers/<id:courier_id>",
        lambda c, w: c.get(f"/api/v1/couriers/{w.courier_a}"),
        expect(200, OWN_COMPANY),
    ),
    Route(
        "PUT",
        "/api/v1/couriers/<id:courier_id>/service-area",
        lambda c, w: c.put(f"/api/v1/couriers/{w.courier_a}/service-area", json=AREA),
        expect(200, OWN_COMPANY),
    ),
    # -- products, batches, codes, labels --------------------------------------------------
    Route(
        "POST",
        "/api/v1/products",
        lambda c, w: c.post(
            "/api/v1/products",
            json={
                "gtin": gtin13(900004),
                "name": "新品",
                "category": "food",
                "merchant_id": w.merchant_a,
            },
        ),
        expect(201, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/products/<id:product_id>",
        lambda c, w: c.get(f"/api/v1/products/{w.product_a}"),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/batches",
        lambda c, w: c.post(
            "/api/v1/batches",
            json={
                "product_id": w.product_a,
                "lot": "NEW1",
                "produced_on": "2026-11-01",
                "expires_on": "2027-11-01",
                "origin": {"name": "常州", "lat": 31.8, "lon": 119.9},
                "quantity": 10,
            },
        ),
        expect(201, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/batches/<id:batch_id>",
        lambda c, w: c.get(f"/api/v1/batches/{w.batch_a}"),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/batches/<id:batch_id>/codes",
        lambda c, w: c.post(f"/api/v1/batches/{w.batch_a}/codes", json={"count": 2}),
        expect(201, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/batches/<id:batch_id>/labels.pdf",
        lambda c, w: c.get(f"/api/v1/batches/{w.batch_a}/labels.pdf"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "POST",
        "/api/v1/batches/<id:batch_id>/recall",
        lambda c, w: c.post(f"/api/v1/batches/{w.batch_a}/recall", json={"reason": "抽检"}),
        expect(200, AUTHORITIES),
    ),
    Route(
        "GET",
        "/api/v1/batches/<id:batch_id>/trace",
        lambda c, w: c.get(f"/api/v1/batches/{w.batch_a}/trace"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/codes/<serial>",
        lambda c, w: c.get(f"/api/v1/codes/{w.serials[0]}"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/codes",
        lambda c, w: c.get("/api/v1/codes", query_string={"uri": w.uri}),
        expect(200, EVERYONE),
    ),
    *(
        Route(
            "GET",
            f"/api/v1/codes/<serial>/{image}",
            lambda c, w, image=image: c.get(f"/api/v1/codes/{w.serials[0]}/{image}"),
            expect(200, EVERYONE),
        )
        for image in ("label.png", "label.svg", "barcode.png", "barcode.svg")
    ),
    Route(
        "GET",
        "/api/v1/codes/<serial>/history",
        lambda c, w: c.get(f"/api/v1/codes/{w.serials[0]}/history"),
        expect(200, OWN_MERCHANT),
    ),
    # -- devices and events ------------------------------------------------------------------
    Route(
        "POST",
        "/api/v1/devices",
        lambda c, w: c.post(
            "/api/v1/devices",
            json={"kind": "pos_scanner", "owner_type": "merchant", "owner_id": w.merchant_a},
        ),
        expect(201, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/devices/<device_id>",
        lambda c, w: c.get(f"/api/v1/devices/{w.shelf.device_id}"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "POST",
        "/api/v1/devices/<device_id>/disable",
        lambda c, w: c.post(f"/api/v1/devices/{w.shelf.device_id}/disable"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "POST",
        "/api/v1/events",
        lambda c, w: c.post(
            "/api/v1/events", json=_signed_event(w), headers={"X-Device-Id": w.shelf.device_id}
        ),
        expect(200, EVERYONE),  # devices sign their events; a token adds nothing
    ),
    Route(
        "GET",
        "/api/v1/parcels/<waybill>/history",
        lambda c, w: c.get(f"/api/v1/parcels/{w.waybill}/history"),
        expect(200, OWN_MERCHANT | {"l_own"}),
    ),
    Route(
        "GET",
        "/api/v1/rejected-events",
        lambda c, w: c.get("/api/v1/rejected-events"),
        expect(200, WORKSPACE),
        shows=lambda resp, w: w.rejected in {r["id"] for r in resp.get_json()["items"]},
        sees=AUTHORITIES,
    ),
    Route(
        "GET",
        "/api/v1/rejected-events/tallies",
        lambda c, w: c.get("/api/v1/rejected-events/tallies"),
        expect(200, WORKSPACE),
        shows=lambda resp, w: w.tally in {t["device_id"] for t in resp.get_json()["items"]},
        sees=AUTHORITIES,
    ),
    # -- anomalies and appeals -------------------------------------------------------------
    Route(
        "GET",
        "/api/v1/anomalies",
        lambda c, w: c.get("/api/v1/anomalies"),
        expect(200, SIGNED_IN),
        shows=lambda resp, w: w.anomaly in _anomaly_ids(resp),
        sees=OWN_MERCHANT,
    ),
    Route(
        "GET",
        "/api/v1/anomalies/<id:anomaly_id>",
        lambda c, w: c.get(f"/api/v1/anomalies/{w.anomaly}"),
        expect(200, OWN_MERCHANT, refused=404),
    ),
    Route(
        "POST",
        "/api/v1/anomalies/<id:anomaly_id>/decision",
        lambda c, w: c.post(
            f"/api/v1/anomalies/{w.anomaly}/decision",
            json={"decision": "confirm", "reason": "核实"},
        ),
        expect(200, AUTHORITIES),
    ),
    Route(
        "POST",
        "/api/v1/anomalies/<id:anomaly_id>/appeal",
        lambda c, w: c.post(f"/api/v1/anomalies/{w.anomaly}/appeal", json={"statement": "误报"}),
        expect(201, frozenset({"m_own"})),
    ),
    Route(
        "POST",
        "/api/v1/appeals/<id:appeal_id>/decision",
        lambda c, w: c.post(
            f"/api/v1/appeals/{w.appeal}/decision",
            json={"decision": "uphold", "reason": "证据充分"},
        ),
        expect(200, AUTHORITIES),
    ),
    Route(
        "POST",
        "/api/v1/anomalies/decisions",
        lambda c, w: c.post(
            "/api/v1/anomalies/decisions",
            json={"ids": [w.anomaly], "decision": "confirm", "reason": "核实"},
        ),
        expect(200, AUTHORITIES),
    ),
    Route(
        "POST",
        "/api/v1/credit/records/<id:record_id>/appeal",
        lambda c, w: c.post(
            f"/api/v1/credit/records/{w.sanction}/appeal", json={"statement": "已整改"}
        ),
        expect(201, frozenset({"m_own"})),
    ),
    # -- credit ----------------------------------------------------------------------------
    Route(
        "GET",
        "/api/v1/credit/<party_type>/<id:party_id>",
        lambda c, w: c.get(f"/api/v1/credit/merchant/{w.merchant_a}"),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/credit/<party_type>/<id:party_id>/records",
        lambda c, w: c.post(
            f"/api/v1/credit/merchant/{w.merchant_a}/records",
            json={"kind": "sanction", "reason": "虚假宣传"},
        ),
        expect(201, AUTHORITIES),
    ),
    Route(
        "POST",
        "/api/v1/credit/<party_type>/<id:party_id>/commitment",
        lambda c, w: c.post(f"/api/v1/credit/merchant/{w.merchant_a}/commitment"),
        expect(201, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/credit/commitment-text",
        lambda c, w: c.get("/api/v1/credit/commitment-text"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/credit/lists/<which>",
        lambda c, w: c.get("/api/v1/credit/lists/black"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/credit/exchange",
        lambda c, w: c.get(f"/api/v1/credit/exchange?uscc={w.uscc_a}"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/credit/exchange.csv",
        lambda c, w: c.get(f"/api/v1/credit/exchange.csv?uscc={w.uscc_a}"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/credit/notices",
        lambda c, w: c.get("/api/v1/credit/notices"),
        expect(200, EVERYONE),
    ),
    # -- feedback --------------------------------------------------------------------------
    Route(
        "POST",
        "/api/v1/codes/<serial>/delivery-rating",
        lambda c, w: c.post(
            f"/api/v1/codes/{w.serials[0]}/delivery-rating", json={"courier": 5, "company": 4}
        ),
        expect(201, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/codes/<serial>/reviews",
        lambda c, w: c.post(f"/api/v1/codes/{w.serials[0]}/reviews", json={"rating": 5}),
        expect(201, EVERYONE),
    ),
    Route(
        "POST",
        "/api/v1/codes/<serial>/complaints",
        lambda c, w: c.post(
            f"/api/v1/codes/{w.serials[0]}/complaints", json={"category": "quality", "text": "变质"}
        ),
        expect(201, EVERYONE),
    ),
    # -- counterfeits ----------------------------------------------------------------------
    Route(
        "POST",
        "/api/v1/counterfeit-reports",
        lambda c, w: c.post(
            "/api/v1/counterfeit-reports",
            json={"code": "ZZZZZZZZZZZZZZZZ", "what": "大米", "where_bought": "菜市场"},
        ),
        expect(201, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/counterfeit-map",
        lambda c, w: c.get("/api/v1/counterfeit-map"),
        expect(200, WORKSPACE),
    ),
    # -- webhooks ---------------------------------------------------------------------------
    Route(
        "POST",
        "/api/v1/webhooks/subscriptions",
        lambda c, w: c.post(
            "/api/v1/webhooks/subscriptions",
            json={
                "url": "http://127.0.0.1:9/hook",
                "topics": ["finding", "events"],
                "merchant_id": w.merchant_a,
            },
        ),
        expect(201, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/api/v1/webhooks/subscriptions",
        lambda c, w: c.get("/api/v1/webhooks/subscriptions"),
        expect(200, SIGNED_IN),
        shows=lambda resp, w: w.subscription in {s["id"] for s in resp.get_json()["items"]},
        sees=frozenset({"admin", "m_own"}),
    ),
    Route(
        "GET",
        "/api/v1/webhooks/subscriptions/<id:subscription_id>",
        lambda c, w: c.get(f"/api/v1/webhooks/subscriptions/{w.subscription}"),
        expect(200, frozenset({"admin", "m_own"})),
    ),
    Route(
        "DELETE",
        "/api/v1/webhooks/subscriptions/<id:subscription_id>",
        lambda c, w: c.client.delete(
            f"/api/v1/webhooks/subscriptions/{w.subscription}", headers=c.headers
        ),
        expect(204, frozenset({"admin", "m_own"})),
    ),
    Route(
        "POST",
        "/api/v1/webhooks/subscriptions/<id:subscription_id>/enable",
        lambda c, w: c.post(f"/api/v1/webhooks/subscriptions/{w.subscription}/enable"),
        expect(200, frozenset({"admin", "m_own"})),
    ),
    Route(
        "GET",
        "/api/v1/webhooks/subscriptions/<id:subscription_id>/deliveries",
        lambda c, w: c.get(f"/api/v1/webhooks/subscriptions/{w.subscription}/deliveries"),
        expect(200, frozenset({"admin", "m_own"})),
    ),
    Route(
        "POST",
        "/api/v1/parcels/<waybill>/rating",
        lambda c, w: c.post(
            f"/api/v1/parcels/{w.waybill}/rating", json={"courier": 5, "company": 5}
        ),
        expect(201, frozenset({"m_own"})),
    ),
    # -- outside the API: the contract, health, the consumer's pages -------------------------
    Route(
        "GET",
        "/api/v1/openapi.json",
        lambda c, w: c.get("/api/v1/openapi.json"),
        expect(200, EVERYONE),
    ),
    Route("GET", "/healthz", lambda c, w: c.get("/healthz"), expect(200, EVERYONE)),
    Route("GET", "/", lambda c, w: c.get("/"), expect(200, EVERYONE)),
    Route("GET", "/t/", lambda c, w: c.get("/t/"), expect(302, EVERYONE)),
    Route(
        "GET",
        "/check",
        lambda c, w: c.get("/check", query_string={"code": w.serials[0].lower()}),
        expect(303, EVERYONE),
    ),
    Route("GET", "/favicon.ico", lambda c, w: c.get("/favicon.ico"), expect(200, EVERYONE)),
    Route(
        "GET",
        "/credit/<party_type>/<id:party_id>",
        lambda c, w: c.get(f"/credit/merchant/{w.merchant_a}", headers=HTML),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/static/<path:filename>",
        lambda c, w: c.get("/static/site.css"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/t/<serial>",
        lambda c, w: c.get(f"/t/{w.serials[0]}", headers=HTML),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/01/<path:rest>",
        lambda c, w: c.get(urlsplit(w.uri).path, headers=HTML),
        expect(200, EVERYONE),
    ),
    # -- the GS1-Conformant resolver and the public facts its links lead to ----------------
    Route(
        "GET",
        "/.well-known/gs1resolver",
        lambda c, w: c.get("/.well-known/gs1resolver"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/batches/<id:batch_id>/certificates",
        lambda c, w: c.get(f"/api/v1/batches/{w.batch_a}/certificates"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/batches/<id:batch_id>/recall-status",
        lambda c, w: c.get(f"/api/v1/batches/{w.batch_a}/recall-status"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/api/v1/products/<id:product_id>/recall-status",
        lambda c, w: c.get(f"/api/v1/products/{w.product_a}/recall-status"),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/t/<serial>/<kind>",
        lambda c, w: c.consumer_form(w.serials[0], f"/t/{w.serials[0]}/review", {"rating": "4"}),
        expect(302, EVERYONE),
    ),
    Route(
        "POST",
        "/t/<serial>/place",
        lambda c, w: c.consumer_form(
            w.serials[0], f"/t/{w.serials[0]}/place", {"lat": "31.78", "lon": "119.95"}
        ),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/report-fake",
        lambda c, w: c.report_fake(
            "/t/ZZZZZZZZZZZZZZZZ", {"what": "大米", "where_bought": "菜市场"}
        ),
        expect(303, EVERYONE),
    ),
    Route(
        "GET",
        "/report-fake/sent",
        lambda c, w: c.get("/report-fake/sent", headers=HTML),
        expect(200, EVERYONE),
    ),
    # -- the workspace ---------------------------------------------------------------------
    Route(
        "GET",
        "/workspace/sign-in",
        lambda c, w: c.get("/workspace/sign-in", headers=HTML),
        expect(200, EVERYONE),
    ),
    Route(
        "POST",
        "/workspace/sign-in",
        lambda c, w: post_sign_in(
            c.client, {"username": "nobody", "password": "wrong one"}, headers=HTML
        ),
        expect(401, EVERYONE),
    ),
    Route(
        "POST",
        "/workspace/sign-out",
        lambda c, w: c.form("/workspace/sign-out"),
        expect(302, WORKSPACE),
    ),
    Route(
        "GET", "/workspace/", lambda c, w: c.get("/workspace/", headers=HTML), page(200, WORKSPACE)
    ),
    Route(
        "GET",
        "/workspace/search",
        lambda c, w: c.get("/workspace/search?q=" + w.serials[0], headers=HTML),
        # One hit goes straight to it; a regulator of elsewhere finds nothing.
        page(200, WORKSPACE, admin=302, reg_in=302),
        shows=lambda resp, w: (
            f"/workspace/codes/{w.serials[0]}" in resp.headers.get("Location", "")
        ),
        sees=AUTHORITIES,
    ),
    Route(
        "GET",
        "/workspace/codes/<serial>",
        lambda c, w: c.get(f"/workspace/codes/{w.serials[0]}", headers=HTML),
        page(200, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/parcels/<waybill>",
        lambda c, w: c.get(f"/workspace/parcels/{w.waybill}", headers=HTML),
        page(200, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/anomalies",
        lambda c, w: c.get("/workspace/anomalies", headers=HTML),
        page(200, WORKSPACE),
        shows=lambda resp, w: (
            f"/workspace/anomalies/{w.anomaly}/decision" in resp.get_data(as_text=True)
        ),
        sees=AUTHORITIES,
    ),
    Route(
        "GET",
        "/workspace/anomalies.csv",
        lambda c, w: c.get("/workspace/anomalies.csv"),
        page(200, WORKSPACE),
        shows=lambda resp, w: f"\n{w.anomaly}," in resp.get_data(as_text=True),
        sees=AUTHORITIES,
    ),
    Route(
        "POST",
        "/workspace/anomalies/<id:anomaly_id>/decision",
        lambda c, w: c.form(
            f"/workspace/anomalies/{w.anomaly}/decision", {"decision": "confirm", "reason": "核实"}
        ),
        expect(303, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/rejected",
        lambda c, w: c.get("/workspace/rejected", headers=HTML),
        page(200, WORKSPACE),
        shows=lambda resp, w: w.tally in resp.get_data(as_text=True),
        sees=AUTHORITIES,
    ),
    Route(
        "POST",
        "/workspace/anomalies/decisions",
        lambda c, w: c.form(
            "/workspace/anomalies/decisions",
            {"type": "brushing", "decision": "confirm", "reason": "核实", "confirmed": "yes"},
        ),
        expect(303, WORKSPACE),
    ),
    Route(
        "POST",
        "/workspace/appeals/<id:appeal_id>/decision",
        lambda c, w: c.form(
            f"/workspace/appeals/{w.appeal}/decision", {"decision": "reject", "reason": "证据不足"}
        ),
        expect(303, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/map",
        lambda c, w: c.get("/workspace/map?city=3204", headers=HTML),
        page(200, WORKSPACE),
    ),
    Route(
        "GET",
        "/workspace/counterfeits",
        lambda c, w: c.get("/workspace/counterfeits", headers=HTML),
        page(200, WORKSPACE),
    ),
    Route(
        "GET",
        "/workspace/batches/<id:batch_id>",
        lambda c, w: c.get(f"/workspace/batches/{w.batch_a}", headers=HTML),
        page(200, AUTHORITIES),
    ),
    Route(
        "POST",
        "/workspace/batches/<id:batch_id>/recall",
        lambda c, w: c.form(
            f"/workspace/batches/{w.batch_a}/recall", {"reason": "抽检", "confirmed": "yes"}
        ),
        expect(303, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/batches/<id:batch_id>/recall",
        lambda c, w: c.get(f"/workspace/batches/{w.batch_a}/recall", headers=HTML),
        page(200, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/batches/<id:batch_id>/trace.csv",
        lambda c, w: c.get(f"/workspace/batches/{w.batch_a}/trace.csv"),
        page(200, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/parties/<party_type>/<id:party_id>",
        lambda c, w: c.get(f"/workspace/parties/courier/{w.courier_a}", headers=HTML),
        page(200, AUTHORITIES),
    ),
    Route(
        "POST",
        "/workspace/parties/<party_type>/<id:party_id>/records",
        lambda c, w: c.form(
            f"/workspace/parties/merchant/{w.merchant_a}/records",
            {"kind": "commendation", "reason": "诚信经营"},
        ),
        expect(303, AUTHORITIES),
    ),
    Route(
        "GET",
        "/workspace/audit",
        lambda c, w: c.get("/workspace/audit", headers=HTML),
        page(200, frozenset({"admin"})),
    ),
]


def _key(route: Route) -> tuple[str, str]:
    return (route.method, route.rule)


def test_the_table_names_every_route_and_method(app):
    """Is every rule of the URL map, with every method but HEAD and OPTIONS, in the table
    exactly once (and nothing else)?"""
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    declared = [_key(r) for r in TABLE]
    assert len(declared) == len(set(declared)), "a route is in the table twice"
    assert sorted(served - set(declared)) == [], "routes missing from the role table"
    assert sorted(set(declared) - served) == [], "the table names routes that are not served"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", TABLE, ids=lambda r: f"{r.method} {r.rule}")
def test_each_role_gets_what_the_table_says(two_regions, route, role):
    """Does ``role``, asking about party A's thing (Changzhou), get the status the table
    declares, and does a list show A's thing only to those who may see it?"""
    caller = two_regions.callers[role]
    caller.reset()
    resp = route.call(caller, two_regions)
    body = resp.get_data()[:300].decode(errors="replace")
    resp.close()  # a file sent (the static route's) is closed, or the test warns
    assert resp.status_code == route.statuses[role], body
    if route.shows is not None and resp.status_code == 200:
        assert route.shows(resp, two_regions) == (role in route.sees)


EPCIS = [
    Route(
        "GET",
        "/epcis/openapi.json",
        lambda c, w: c.get("/epcis/openapi.json"),
        expect(200, EVERYONE),
    ),
    Route(
        "GET",
        "/epcis/events",
        lambda c, w: c.get("/epcis/events"),
        expect(200, SIGNED_IN),
        # the carrier sees the packing, which names the units it carries
        shows=lambda resp, w: w.uri in resp.get_data(as_text=True),
        sees=OWN_MERCHANT | {"l_own"},
    ),
    Route(
        "GET",
        "/epcis/events/<path:event_id>",
        lambda c, w: c.get(f"/epcis/events/{_event_id(w)}"),
        expect(200, OWN_MERCHANT),
    ),
    Route(
        "GET",
        "/epcis/epcs/<path:epc>/events",
        lambda c, w: c.get(f"/epcis/epcs/{quote(w.uri, safe='')}/events"),
        expect(200, OWN_MERCHANT),
    ),
]


CAPTURE = [
    Route(
        "POST",
        "/epcis/capture",
        # only an outside system's token captures: no role of the table does
        lambda c, w: c.post("/epcis/capture", json={"type": "EPCISDocument"}),
        expect(202, frozenset()),
    ),
    Route(
        "GET",
        "/epcis/capture",
        lambda c, w: c.get("/epcis/capture"),
        expect(200, SIGNED_IN),
        shows=lambda resp, w: w.capture_id in resp.get_data(as_text=True),
        sees=OWN_MERCHANT,
    ),
    Route(
        "GET",
        "/epcis/capture/<capture_id>",
        lambda c, w: c.get(f"/epcis/capture/{w.capture_id}"),
        expect(200, OWN_MERCHANT),
    ),
]
EPCIS += CAPTURE


def _event_id(w) -> str:
    """The ID of the first EPCIS event about A's units, as an admin reads it."""
    admin = w.callers["admin"]
    body = admin.get(f"/epcis/epcs/{quote(w.uri, safe='')}/events").get_json()
    return quote(
        body["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["eventID"], safe=""
    )


TABLE += EPCIS


# -- the rules the table does not show ---------------------------------------------------------


def _rejected(session, device_id: str, payload: str, serial: str | None = None) -> int:
    from datetime import UTC, datetime

    from app.events.models import RejectedEvent

    row = RejectedEvent(
        device_id=device_id,
        event_id=None,
        reason="unknown_device",
        message="no such device",
        payload=payload,
        serial=serial,
        received_at=datetime.now(UTC),
    )
    session.add(row)
    session.commit()
    return row.id


def test_rejected_events_of_unknown_devices_are_for_those_without_a_jurisdiction(
    two_regions, make, session
):
    """Who reads what a device nobody registered sent? Admins and national regulators; a
    regulator with a jurisdiction does not (nobody's device is in it)."""
    unknown = _rejected(session, "FFFFFFFFFFFFFFFF", '{"seq": 1}')
    national = {"Authorization": f"Bearer {make.token('regulator')}"}
    seen = {}
    for who, caller_headers in [
        ("admin", two_regions.callers["admin"].headers),
        ("national", national),
        ("reg_in", two_regions.callers["reg_in"].headers),
    ]:
        resp = two_regions.callers["anon"].client.get(
            "/api/v1/rejected-events", headers=caller_headers
        )
        assert resp.status_code == 200
        seen[who] = unknown in {r["id"] for r in resp.get_json()["items"]}
    assert seen == {"admin": True, "national": True, "reg_in": False}


def test_the_code_page_lists_only_rejected_events_of_the_jurisdictions_devices(
    two_regions, make, session
):
    """On a Changzhou unit's page, a Changzhou regulator sees the rejected events of
    Changzhou devices that mention it, not those of a Zhaoqing device."""
    serial = two_regions.serials[0]
    zhaoqing_device, _ = make.device("shelf_scanner", two_regions.merchant_b)
    theirs = _rejected(session, zhaoqing_device, f'{{"code": "{serial}", "n": "zhaoqing"}}', serial)
    ours = _rejected(
        session, two_regions.shelf.device_id, f'{{"code": "{serial}", "n": "ours"}}', serial
    )
    caller = two_regions.callers["reg_in"]
    caller.reset()
    html = caller.get(f"/workspace/codes/{serial}", headers=HTML).get_data(as_text=True)
    assert ("ours" in html, "zhaoqing" in html) == (True, False), (ours, theirs)


@pytest.mark.parametrize(
    "role,status", [("reg_in", 201), ("l_own", 201), ("reg_out", 403), ("l_other", 403)]
)
def test_a_handhelds_secret_goes_only_to_its_couriers_company_or_an_authority_over_it(
    two_regions, role, status
):
    caller = two_regions.callers[role]
    resp = caller.post(
        "/api/v1/devices",
        json={
            "kind": "courier_handheld",
            "owner_type": "courier",
            "owner_id": two_regions.courier_a,
        },
    )
    assert resp.status_code == status
    assert ("secret" in resp.get_json()) == (status == 201)


def test_a_regulator_registers_a_courier_only_for_a_company_of_its_jurisdiction(two_regions):
    """A courier working in Changzhou for a Zhaoqing company is not the Changzhou regulator's
    to register: it binds the company too."""
    resp = two_regions.callers["reg_in"].post(
        "/api/v1/couriers",
        json={
            "name": "王五",
            "id_number": resident_id(900005),
            "phone": "13800138001",
            "company_id": two_regions.company_b,
            "region_code": "320411",
        },
    )
    assert resp.status_code == 403, resp.get_json()
