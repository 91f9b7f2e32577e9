"""EPCIS 2.0 capture (POST /epcis/capture): GS1-shaped documents from an outside system accepted,
a resend is a duplicate, malformed documents and events refused in the standard's shape, the
limits, all-or-nothing by default, least privilege, and the captured events served back."""

import json

import pytest

from tests.app.test_epcis_api import validator
from tracecore.epcis import EPCIS_CONTEXT

__all__ = ["validator"]

#: The GS1 example's extension prefix (JSON/Example_9.6.1-ObjectEvent.jsonld of gs1/EPCIS).
EXAMPLE_NS = "http://ns.example.com/epcis/"


def document(*events, context_extra=None) -> dict:
    """An EPCISDocument shaped as GS1's examples (gs1/EPCIS, JSON/), holding ``events``."""
    return {
        "@context": [
            EPCIS_CONTEXT,
            {"example": EXAMPLE_NS, "cbvmda": "urn:epcglobal:cbv:mda:"} | (context_extra or {}),
        ],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-01T11:30:47.0Z",
        "epcisBody": {"eventList": list(events)},
    }


def commissioning(gtin14: str, lot: str, serials: list[str], at="2026-12-01T08:00:00+08:00"):
    """A producer's ERP commissioning units, with ILMD (as GS1's Example 9.6.2 shapes it)."""
    return {
        "type": "ObjectEvent",
        "eventTime": at,
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"https://id.gs1.org/01/{gtin14}/21/{s}" for s in serials],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"},
        "ilmd": {"cbvmda:lotNumber": lot, "example:grade": "A"},
    }


def shipping(epcs: list[str], at="2026-12-02T10:00:00.116+08:00"):
    """A distributor's shipping (GS1's Example 9.6.1, first event)."""
    return {
        "type": "ObjectEvent",
        "eventTime": at,
        "eventTimeZoneOffset": "+08:00",
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}
        ],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:sgln:0614141.00001.0"}],
        "destinationList": [
            {"type": "owning_party", "destination": "urn:epc:id:sgln:0614141.00777.0"}
        ],
    }


@pytest.fixture
def producer(make, world, client):
    """Merchant A's ERP (an outside system's token), A's product GTIN and units."""
    code = client.get(f"/api/v1/codes/{world['serials'][0]}").get_json()
    return world | {
        "erp": make.outside_system(world["merchant"], "常州某食品厂ERP"),
        "gtin": code["product"]["gtin"],
        "lot": code["batch"]["lot"],
    }


def post(client, headers, body, behaviour=None, content_type="application/ld+json"):
    extra = {"GS1-Capture-Error-Behaviour": behaviour} if behaviour else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(
        "/epcis/capture", data=data, headers=headers | extra, content_type=content_type
    )


def job_of(client, headers, resp) -> dict:
    assert resp.status_code == 202, resp.get_data(as_text=True)
    location = resp.headers["Location"]
    assert location.startswith("/epcis/capture/")
    found = client.get(location, headers=headers)
    assert found.status_code == 200, found.get_data(as_text=True)
    return found.get_json()


def test_a_producers_commissioning_and_a_shipping_are_captured(client, producer):
    """Is a GS1-shaped document of our units accepted (202 and a job with success), with the
    limits announced on the answer?"""
    serials = producer["serials"]
    doc = document(
        commissioning(producer["gtin"], producer["lot"], serials[:2]),
        shipping(["urn:epc:id:sgtin:0614141.107346.2017"]),
    )
    resp = post(client, producer["erp"], doc)
    assert resp.headers["GS1-EPCIS-Capture-Limit"] == "500"
    job = job_of(client, producer["erp"], resp)
    assert job | {"captureID": None, "createdAt": None, "finishedAt": None} == {
        "captureID": None,
        "createdAt": None,
        "finishedAt": None,
        "running": False,
        "success": True,
        "captureErrorBehaviour": "rollback",
        "errors": [],
        "eventCount": 2,
        "captured": 2,
        "duplicates": 0,
        "outsideSystem": "常州某食品厂ERP",
    }
