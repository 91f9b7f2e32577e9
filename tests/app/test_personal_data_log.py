"""Every read of personal data is logged (issue 18): each route that can show a courier's full
name, an exact delivery point, a consignee point, a complaint's contact or a raw rejected
payload writes an access-log line marked as personal data when an authority reads it; the
others who may call it get the data masked (or, when they may see it unmasked, are logged
too). Every GET route of the app is declared here as showing personal data or not, and every
command of the command line likewise, so a new one cannot be forgotten.
(The world: tests/app/authz_world.py.)"""

from __future__ import annotations

import click
import pytest
import sqlalchemy as sa

from app.accesslog.models import AccessEntry
from tests.app.authz_world import CONSIGNEE_PHONE, COURIER_NAME, HTML, ROLES, SIGNED_AT
from tracecore.identity import mask_name

#: (method, rule) -> (how an authority asks about party A's thing, the log line's target).
PERSONAL = {
    ("GET", "/api/v1/couriers/<id:courier_id>"): (
        lambda c, w: c.get(f"/api/v1/couriers/{w.courier_a}"),
        lambda w: ("courier", w.courier_a),
    ),
    ("GET", "/api/v1/codes/<serial>/history"): (
        lambda c, w: c.get(f"/api/v1/codes/{w.serials[0]}/history"),
        lambda w: ("code", w.serials[0]),
    ),
    ("GET", "/api/v1/parcels/<waybill>/history"): (
        lambda c, w: c.get(f"/api/v1/parcels/{w.waybill}/history"),
        lambda w: ("parcel", w.waybill),
    ),
    ("GET", "/api/v1/batches/<id:batch_id>/trace"): (
        lambda c, w: c.get(f"/api/v1/batches/{w.batch_a}/trace"),
        lambda w: ("batch", w.batch_a),
    ),
    ("GET", "/api/v1/rejected-events"): (
        lambda c, w: c.get("/api/v1/rejected-events"),
        lambda w: ("rejected_events", "*"),
    ),
    ("GET", "/api/v1/rejected-events/tallies"): (
        lambda c, w: c.get("/api/v1/rejected-events/tallies"),
        lambda w: ("rejection_tallies", "*"),
    ),
    ("GET", "/workspace/rejected"): (
        lambda c, w: c.get("/workspace/rejected", headers=HTML),
        lambda w: ("rejection_tallies", "latest"),
    ),
    ("GET", "/workspace/counterfeits"): (
        lambda c, w: c.get("/workspace/counterfeits", headers=HTML),
        lambda w: ("counterfeit_map", "reports"),
    ),
    ("GET", "/workspace/codes/<serial>"): (
        lambda c, w: c.get(f"/workspace/codes/{w.serials[0]}", headers=HTML),
        lambda w: ("code", w.serials[0]),
    ),
    ("GET", "/workspace/parcels/<waybill>"): (
        lambda c, w: c.get(f"/workspace/parcels/{w.waybill}", headers=HTML),
        lambda w: ("parcel", w.waybill),
    ),
    ("GET", "/workspace/batches/<id:batch_id>"): (
        lambda c, w: c.get(f"/workspace/batches/{w.batch_a}", headers=HTML),
        lambda w: ("batch", w.batch_a),
    ),
    ("GET", "/workspace/batches/<id:batch_id>/trace.csv"): (
        lambda c, w: c.get(f"/workspace/batches/{w.batch_a}/trace.csv"),
        lambda w: ("batch", w.batch_a),
    ),
    ("GET", "/workspace/batches/<id:batch_id>/recall"): (
        lambda c, w: c.get(f"/workspace/batches/{w.batch_a}/recall", headers=HTML),
        lambda w: ("batch", w.batch_a),
    ),
    ("GET", "/workspace/parties/<party_type>/<id:party_id>"): (
        lambda c, w: c.get(f"/workspace/parties/courier/{w.courier_a}", headers=HTML),
        lambda w: ("courier", w.courier_a),
    ),
    ("GET", "/workspace/search"): (
        # Part of the name, which finds the courier (and only it: the search goes straight to
        # its page). A person's name is kept masked in the log (issue 15).
        lambda c, w: c.get(
            "/workspace/search",
            query_string={"q": COURIER_NAME[:2]},
            headers=HTML,
            follow_redirects=True,
        ),
        lambda w: ("search", mask_name(COURIER_NAME[:2])),
    ),
}

#: GET routes that show no personal data, and why.
NOT_PERSONAL = {
    "/": "the entry page: a form",
    "/t/": "a redirect",
    "/check": "a redirect to a unit's public page",
    "/favicon.ico": "a file of the app",
    "/credit/<party_type>/<id:party_id>": "public scores and records, couriers masked",
    "/healthz": "no data",
    "/static/<path:filename>": "files of the app",
    "/api/v1/openapi.json": "the contract",
    "/epcis/openapi.json": "the EPCIS contract",
    "/epcis/events": "EPCIS events carry no point, consignee or courier (docs/epcis.md)",
    "/epcis/events/<path:event_id>": "as /epcis/events",
    "/epcis/epcs/<path:epc>/events": "as /epcis/events",
    "/epcis/capture": "capture jobs: counts and errors about EPCIS events, no person",
    "/epcis/capture/<capture_id>": "as /epcis/capture",
    "/api/v1/merchants/<id:merchant_id>": "a licence meant to be shown (亮照亮标)",
    "/api/v1/logistics-companies/<id:company_id>": "a company's public data",
    "/api/v1/products/<id:product_id>": "public",
    "/api/v1/batches/<id:batch_id>": "public",
    "/api/v1/batches/<id:batch_id>/labels.pdf": "serials, no person",
    "/api/v1/codes": "the public answer about a unit",
    "/api/v1/codes/<serial>": "the public answer about a unit",
    "/api/v1/codes/<serial>/label.png": "an image of the URI",
    "/api/v1/codes/<serial>/label.svg": "an image of the URI",
    "/api/v1/codes/<serial>/barcode.png": "an image of the element string",
    "/api/v1/codes/<serial>/barcode.svg": "an image of the element string",
    "/api/v1/devices/<device_id>": "a device's id, kind and owner",
    "/api/v1/anomalies": "findings name parties (companies, merchants, courier ids), no person",
    "/api/v1/anomalies/<id:anomaly_id>": "as the list",
    "/api/v1/credit/<party_type>/<id:party_id>": "public scores and records",
    "/api/v1/credit/commitment-text": "a text",
    "/api/v1/credit/lists/<which>": "public lists, couriers masked",
    "/api/v1/credit/notices": "public notices, couriers masked",
    "/api/v1/credit/exchange": "legal persons' public decisions (couriers never exchanged)",
    "/api/v1/credit/exchange.csv": "legal persons' public decisions (couriers never exchanged)",
    "/t/<serial>": "the consumer's page: couriers masked, places rounded (test_consumer_pages)",
    "/01/<path:rest>": "the consumer's page; its linkset and links: URIs of public things",
    "/.well-known/gs1resolver": "the resolver's description",
    "/api/v1/batches/<id:batch_id>/certificates": "inspection certificates: public facts",
    "/api/v1/batches/<id:batch_id>/recall-status": "a recall: a public fact",
    "/api/v1/products/<id:product_id>/recall-status": "recalls: public facts",
    "/workspace/": "counts, parties' names (couriers masked), districts",
    "/workspace/sign-in": "a form",
    "/workspace/anomalies": "the queue: parties and places of findings, no person",
    "/workspace/anomalies.csv": "the queue",
    "/workspace/map": "districts and unnamed points drawn at city scale",
    "/api/v1/counterfeit-map": "counts by district and product; reports' contacts masked",
    "/report-fake/sent": "a thank-you page",
    "/workspace/audit": "who of the staff did what (admins only)",
    "/api/v1/webhooks/subscriptions": "the caller's subscriptions: URLs and topics",
    "/api/v1/webhooks/subscriptions/<id:subscription_id>": "a subscription: URL and topics",
    "/api/v1/webhooks/subscriptions/<id:subscription_id>/deliveries": "status codes, times",
}

#: Commands of the command line that show personal data (none: each prints ids, counts,
#: public answers, tokens or files of serials), and those that do not.
CLI_PERSONAL: dict[str, str] = {}
CLI_NOT_PERSONAL = {
    "db upgrade",
    "db downgrade",
    "trace token create",
    "trace user create",
    "trace user sign-out",
    "trace merchant",
    "trace company",
    "trace courier",  # prints the new courier's id only
    "trace product",
    "trace batch",
    "trace issue",
    "trace labels",
    "trace code",  # the public answer about a unit
    "trace demo",
    "trace demo-cases",  # prints counts
    "trace sweep",
    "devices ingest",
    "devices mqtt-auth",
    "devices simulate",
    "hooks deliver",  # sends the webhooks' payloads, which carry no personal data
}


def test_every_get_route_is_declared_personal_or_not(app):
    served = {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    personal = {rule for method, rule in PERSONAL}
    assert personal & set(NOT_PERSONAL) == set()
    assert sorted(served - personal - set(NOT_PERSONAL)) == [], "declare these routes"
    assert sorted((personal | set(NOT_PERSONAL)) - served) == [], "no such routes"


def _commands(group: click.Group, prefix: str = "") -> set[str]:
    found = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= _commands(command, path + " ")
        else:
            found.add(path)
    return found


def test_every_command_is_declared_personal_or_not(app):
    """A command that shows personal data must log it; none does today."""
    assert _commands(app.cli) == set(CLI_PERSONAL) | CLI_NOT_PERSONAL


def _personal_lines(session, target: tuple) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(AccessEntry)
        .where(
            AccessEntry.target_type == target[0],
            AccessEntry.target_id == str(target[1]),
            AccessEntry.personal_data.is_(True),
        )
    )


@pytest.mark.parametrize("role", ["admin", "reg_in"])
@pytest.mark.parametrize("key", sorted(PERSONAL), ids=lambda k: f"{k[0]} {k[1]}")
def test_an_authoritys_read_of_personal_data_is_logged(two_regions, session, key, role):
    """Does an authority's read add an access-log line marked as personal data?"""
    call, target = PERSONAL[key]
    caller = two_regions.callers[role]
    caller.reset()
    before = _personal_lines(session, target(two_regions))
    resp = call(caller, two_regions)
    resp.get_data()  # a streamed export is read to its end
    assert resp.status_code == 200, resp.get_data()[:300]
    assert _personal_lines(session, target(two_regions)) == before + 1


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("admin", "reg_in")])
@pytest.mark.parametrize("key", sorted(PERSONAL), ids=lambda k: f"{k[0]} {k[1]}")
def test_others_see_personal_data_masked_or_are_logged(two_regions, session, key, role):
    """Whoever else gets an answer gets no full name, exact delivery point or consignee phone
    in it, unless the read is logged as personal (a company reading its own courier)."""
    call, target = PERSONAL[key]
    caller = two_regions.callers[role]
    caller.reset()
    before = _personal_lines(session, target(two_regions))
    resp = call(caller, two_regions)
    text = resp.get_data(as_text=True)
    if resp.status_code != 200:
        assert resp.status_code in (302, 401, 403, 404)  # refused: nothing shown
        return
    if _personal_lines(session, target(two_regions)) > before:
        return  # shown unmasked, and logged
    for secret in (COURIER_NAME, str(SIGNED_AT[0]), CONSIGNEE_PHONE):
        assert secret not in text
