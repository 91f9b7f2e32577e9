"""EPCIS 2.0 capture (POST /epcis/capture): GS1-shaped documents from an outside system accepted,
a resend is a duplicate, malformed documents and events refused in the standard's shape, the
limits, all-or-nothing by default, least privilege, and the captured events served back."""

import json
from urllib.parse import quote

import pytest

from tests.app.test_epcis_api import (
    HOST,
    assert_valid,
    events_of,
    everything,
    reference_ids,
    validator,
)
from tracecore.epcis import EPCIS_CONTEXT
from tracecore.epcis_capture import namespace_alias

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


def test_captured_events_are_served_back_with_the_same_ids_valid_and_as_the_reference_hashes(
    client, make, producer, validator
):
    """Are the captured events in /epcis/events (for the party and for an admin), each with
    the ID the capture computed, equal to the reference implementation's hash, in a document
    valid against GS1's schema; and does /epcis/events/{eventID} find each?"""
    serials = producer["serials"]
    doc = document(
        commissioning(producer["gtin"], producer["lot"], serials[:2]),
        shipping(["urn:epc:id:sgtin:0614141.107346.2017"]),
    )
    assert_valid(validator, doc)  # what we send is a valid EPCIS document
    admin = make.auth("admin")
    before = {e["eventID"] for e in everything(client, admin)}
    job_of(client, producer["erp"], post(client, producer["erp"], doc))
    resp = client.get("/epcis/events", query_string={"perPage": 1000}, headers=admin)
    body = resp.get_json()
    assert_valid(validator, body)
    assert [e["eventID"] for e in events_of(resp)] == reference_ids(body)
    captured = [e for e in events_of(resp) if e["eventID"] not in before]
    assert len(captured) == 2
    commissioned = next(e for e in captured if e["bizStep"] == "commissioning")
    assert commissioned["epcList"] == [
        f"https://id.gs1.org/01/{producer['gtin']}/21/{s}" for s in serials[:2]
    ]
    # the sender's prefix is named after its namespace, and the document declares it
    alias = namespace_alias(EXAMPLE_NS)
    assert commissioned["ilmd"][f"{alias}:grade"] == "A"
    assert body["@context"][1][alias] == EXAMPLE_NS
    assert commissioned["readPoint"] == {"id": "https://id.gs1.org/414/6901234000016"}
    for event in captured:
        one = client.get(f"/epcis/events/{quote(event['eventID'], safe='')}", headers=admin)
        assert events_of(one) == [event]
    merchant = make.auth("merchant", producer["merchant"])
    mine = events_of(
        client.get(
            "/epcis/events",
            query_string={"EQ_bizStep": "shipping", "perPage": 1000},
            headers=merchant,
        )
    )
    assert [e["eventID"] for e in mine] == [
        e["eventID"] for e in captured if e["bizStep"] == "shipping"
    ]
    other = make.auth("merchant", make.merchant())
    assert events_of(client.get("/epcis/events", headers=other)) == []


def test_a_units_captured_events_are_in_its_history_and_its_epcis_events(client, make, producer):
    """Does the unit's history list what the outside system captured, marked with the
    system's name, apart from its own events (state, custody and findings unchanged); and does the
    unit's /epcis/epcs/{epc}/events hold it with the same ID?"""
    serial = producer["serials"][0]
    admin = make.auth("admin")
    before = client.get(f"/api/v1/codes/{serial}/history", headers=admin).get_json()
    findings = client.get("/api/v1/anomalies", headers=admin).get_json()
    job_of(
        client,
        producer["erp"],
        post(
            client,
            producer["erp"],
            document(commissioning(producer["gtin"], producer["lot"], [serial])),
        ),
    )
    after = client.get(f"/api/v1/codes/{serial}/history", headers=admin).get_json()
    # untrusted for findings: a second commissioning of a sold unit raises nothing
    assert client.get("/api/v1/anomalies", headers=admin).get_json() == findings
    assert (after["state"], after["custody"], after["events"]) == (
        before["state"],
        before["custody"],
        before["events"],
    )
    (captured,) = after["captured_events"]
    assert captured["source"]["system"] == "常州某食品厂ERP"
    assert captured["source"]["party"]["id"] == producer["merchant"]
    assert captured["biz_step"] == "commissioning"
    uri = client.get(f"/api/v1/codes/{serial}").get_json()["uri"]
    ids = [
        e["eventID"]
        for e in events_of(client.get(f"/epcis/epcs/{quote(uri, safe='')}/events", headers=admin))
    ]
    assert captured["event_id"] in ids


def test_a_resend_is_a_duplicate_not_an_error(client, producer):
    """Is the same document sent twice captured once, the second job successful with its
    events counted as duplicates (an idempotent resend)?"""
    doc = document(shipping(["urn:epc:id:sgtin:0614141.107346.2017"]))
    first = job_of(client, producer["erp"], post(client, producer["erp"], doc))
    again = job_of(client, producer["erp"], post(client, producer["erp"], doc))
    assert (first["captured"], first["duplicates"]) == (1, 0)
    assert (again["success"], again["captured"], again["duplicates"]) == (True, 0, 1)


def _problem(resp, status: int, kind: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["type"] == f"epcisException:{kind}" and body["status"] == status
    return body


@pytest.mark.parametrize(
    "breaks",
    [
        lambda d: d.pop("schemaVersion"),
        lambda d: d.update(type="EPCISMasterDataDocument"),
        lambda d: d["epcisBody"].update(eventList={"not": "a list"}),
        lambda d: d.update(creationDate="yesterday"),
    ],
    ids=["no schemaVersion", "wrong type", "eventList not a list", "creationDate"],
)
def test_a_malformed_document_is_refused_whole(client, producer, validator, breaks):
    """Is a document that GS1's schema refuses answered 400 ValidationException, with no job?"""
    doc = document(shipping(["urn:epc:id:sgtin:0614141.107346.2017"]))
    breaks(doc)
    assert list(validator.iter_errors(doc)), "the schema refuses it too"
    _problem(post(client, producer["erp"], doc), 400, "ValidationException")
    assert client.get("/epcis/capture", headers=producer["erp"]).get_json() == []


def test_not_json_and_another_media_type_are_refused(client, producer):
    _problem(post(client, producer["erp"], b"{not json"), 400, "ValidationException")
    _problem(
        post(client, producer["erp"], b"<xml/>", content_type="application/xml"),
        415,
        "UnsupportedMediaTypeException",
    )


def _bad_event():
    """An event GS1's schema refuses: its eventTimeZoneOffset is not ±hh:mm."""
    return shipping(["urn:epc:id:sgtin:0614141.107346.2019"]) | {"eventTimeZoneOffset": "8"}


def test_a_partial_failure_is_rolled_back_by_default(client, producer, validator):
    """With one invalid event among valid ones, does the default (rollback) store none, the
    job saying success false with the event's error in the standard's shape?"""
    doc = document(shipping(["urn:epc:id:sgtin:0614141.107346.2018"]), _bad_event())
    assert list(validator.iter_errors(doc))
    job = job_of(client, producer["erp"], post(client, producer["erp"], doc))
    assert (job["success"], job["running"], job["captured"]) == (False, False, 0)
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException"
    assert "event 1" in error["detail"] and "eventTimeZoneOffset" in error["detail"]
    again = job_of(client, producer["erp"], post(client, producer["erp"], doc, "proceed"))
    assert (again["success"], again["captured"], again["captureErrorBehaviour"]) == (
        False,
        1,
        "proceed",
    )


def test_over_the_limits_is_413(app, client, producer):
    """More events than GS1-EPCIS-Capture-Limit, or more bytes than its file size: 413
    CaptureLimitExceededException, the limits in the answer's headers."""
    limit = app.extensions["trace"].config.EPCIS_CAPTURE_LIMIT
    many = document(*[shipping([f"urn:epc:id:sgtin:0614141.107346.{n}"]) for n in range(limit + 1)])
    resp = post(client, producer["erp"], many)
    _problem(resp, 413, "CaptureLimitExceededException")
    assert resp.headers["GS1-EPCIS-Capture-Limit"] == str(limit)
    size = int(resp.headers["GS1-EPCIS-Capture-File-Size-Limit"])
    big = document(shipping(["urn:epc:id:sgtin:0614141.107346.1"]))
    big["padding"] = "x" * size
    _problem(post(client, producer["erp"], big), 413, "CaptureLimitExceededException")


def test_options_announces_the_limits(client):
    resp = client.options("/epcis/capture")
    assert resp.status_code == 204
    assert resp.headers["GS1-EPCIS-Capture-Limit"] == "500"
    assert int(resp.headers["GS1-EPCIS-Capture-File-Size-Limit"]) > 0
    assert "rollback" in resp.headers["GS1-Capture-Error-Behaviour"]


def test_another_partys_products_and_places_are_refused(client, make, producer):
    """May an outside system name another merchant's GTIN, or another party's place? No:
    the event is refused (SecurityException), the document rolled back."""
    other_gtin = client.get(f"/api/v1/products/{make.product(make.merchant())}").get_json()["gtin"]
    foreign = document(commissioning(other_gtin, "X1", ["S1"]))
    job = job_of(client, producer["erp"], post(client, producer["erp"], foreign))
    assert job["errors"][0]["type"] == "epcisException:SecurityException"
    place = shipping(["urn:epc:id:sgtin:0614141.107346.7"]) | {
        "bizLocation": {"id": f"{HOST}/id/place/merchant/{make.merchant()}"}
    }
    job = job_of(client, producer["erp"], post(client, producer["erp"], document(place)))
    assert job["errors"][0]["type"] == "epcisException:SecurityException"
    own = shipping(["urn:epc:id:sgtin:0614141.107346.7"]) | {
        "bizLocation": {"id": f"{HOST}/id/place/merchant/{producer['merchant']}"}
    }
    assert job_of(client, producer["erp"], post(client, producer["erp"], document(own)))["success"]


def test_outside_identifiers_are_kept_and_never_taken_for_our_codes(client, make, producer):
    """A unit of our GTIN with a serial that is not ours is kept as an outside identifier:
    it reaches no unit's history."""
    doc = document(commissioning(producer["gtin"], producer["lot"], ["NOTOURS1"]))
    assert job_of(client, producer["erp"], post(client, producer["erp"], doc))["captured"] == 1
    admin = make.auth("admin")
    for serial in producer["serials"]:
        history = client.get(f"/api/v1/codes/{serial}/history", headers=admin).get_json()
        assert history["captured_events"] == []


def test_only_outside_systems_capture_and_they_do_nothing_else(client, make, producer):
    """An ordinary merchant's token may not capture; an outside system's token may not read
    the EPCIS query, the API, nor another system's jobs."""
    doc = document(shipping(["urn:epc:id:sgtin:0614141.107346.2017"]))
    merchant = make.auth("merchant", producer["merchant"])
    _problem(post(client, merchant, doc), 403, "SecurityException")
    assert client.get("/epcis/events", headers=producer["erp"]).status_code == 403
    assert (
        client.get(
            f"/api/v1/codes/{producer['serials'][0]}/history", headers=producer["erp"]
        ).status_code
        == 403
    )
    location = post(client, producer["erp"], doc).headers["Location"]
    other_system = make.outside_system(producer["merchant"], "另一个系统")
    assert client.get(location, headers=other_system).status_code == 403
    assert client.get("/epcis/capture", headers=other_system).get_json() == []
    assert client.get(location, headers=merchant).status_code == 200  # its party reads it


def test_a_logistics_companys_system_captures_outside_identifiers_only(client, make, producer):
    company_system = make.outside_system(producer["company"], "某物流TMS", role="logistics")
    ours = document(
        shipping([f"https://id.gs1.org/01/{producer['gtin']}/21/{producer['serials'][0]}"])
    )
    job = job_of(client, company_system, post(client, company_system, ours))
    assert job["errors"][0]["type"] == "epcisException:SecurityException"
    outside = document(shipping(["urn:epc:id:sscc:0614141.1234567890"]))
    assert job_of(client, company_system, post(client, company_system, outside))["success"]


def test_the_workspace_code_page_shows_what_an_outside_system_captured(client, make, producer):
    """Does a regulator's code page list the captured event apart, with the system's name?"""
    from tests.app.test_workspace import sign_in

    serial = producer["serials"][0]
    doc = document(commissioning(producer["gtin"], producer["lot"], [serial]))
    job_of(client, producer["erp"], post(client, producer["erp"], doc))
    sign_in(client, *make.user("regulator", "3204"))
    page = client.get(f"/workspace/codes/{serial}", headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    section = html.split("Captured from outside systems", 1)[1].split("<h2>", 1)[0]
    assert "常州某食品厂ERP" in section and "commissioning" in section
    assert "北京时间" in section


@pytest.mark.parametrize(
    ("insert", "detail"),
    [
        ('"ilmd": ' + "[" * 5000 + "]" * 5000 + ", ", "nested too deeply"),
        (
            '"quantityList": [{"epcClass": "urn:epc:idpat:sgtin:0614141.107346.*", '
            '"quantity": 1e400}], ',
            "out of range",
        ),
    ],
    ids=["nested too deeply", "1e400"],
)
def test_a_document_json_cannot_hold_is_a_validation_problem(client, producer, insert, detail):
    """A document nested deeper than the parser goes (was a 500), or with a number no float
    holds (was stored, then served back as Infinity, which is not JSON): 400, nothing kept."""
    epc = f"https://id.gs1.org/01/{producer['gtin']}/21/{producer['serials'][1]}"
    body = json.dumps(document(shipping([epc]))).replace('"epcList"', insert + '"epcList"', 1)
    resp = post(client, producer["erp"], body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    problem = resp.get_json()
    assert problem["type"] == "epcisException:ValidationException"
    assert detail in problem["detail"]
    assert client.get("/epcis/capture", headers=producer["erp"]).get_json() == []  # no job


# -- TransformationEvent ---------------------------------------------------------------------

#: A supplier's flour lot (another company's GTIN: an outside identifier), as an EPC class URN.
FLOUR = "urn:epc:class:lgtin:4012345.011111.4444"
FLOUR_LINK = "https://id.gs1.org/01/04012345111118/10/4444"
TRANSFORMATION_ID = "urn:uuid:6d4e2b7a-93c1-4a5e-8f0b-2c7d1e9a3b55"


def production(gtin14: str, lot: str, inputs: list[str], outputs: list[str], **extra) -> dict:
    """A producer's ERP recording a production: a supplier's flour (kg) and units in, units
    and a count of its lot out, with the output lot's ILMD (GS1's Example 9.6.3 shape)."""
    return {
        "type": "TransformationEvent",
        "eventTime": "2026-12-01T06:30:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "inputEPCList": [f"https://id.gs1.org/01/{gtin14}/21/{s}" for s in inputs],
        "inputQuantityList": [
            {"epcClass": FLOUR, "quantity": 12.5, "uom": "KGM"},
            {"epcClass": "urn:epc:class:lgtin:0614141.077777.987", "quantity": 30},
        ],
        "outputEPCList": [f"https://id.gs1.org/01/{gtin14}/21/{s}" for s in outputs],
        "outputQuantityList": [
            {"epcClass": f"https://id.gs1.org/01/{gtin14}/10/{lot}", "quantity": 120}
        ],
        "transformationID": TRANSFORMATION_ID,
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0"},
        "bizTransactionList": [{"type": "prodorder", "bizTransaction": "urn:example:prod:77"}],
        "ilmd": {"cbvmda:lotNumber": lot, "example:grade": "A"},
    } | extra


def _ids(client, headers, **params) -> list[str]:
    return [e["eventID"] for e in everything(client, headers, **params)]


def test_a_transformation_is_captured_served_valid_with_the_references_id_and_queried(
    client, make, producer, validator
):
    """Is a production (inputs and outputs, EPCs and quantities with and without uom, a
    transformationID, ILMD) captured; served back in a document valid against GS1's schema
    with the ID the reference implementation computes, found by its ID; and do the query's
    transformation parameters find it by its inputs, its outputs, its classes and its ID?"""
    gtin, lot, serials = producer["gtin"], producer["lot"], producer["serials"]
    # serials[2] goes in and comes out (a unit reworked): named in both roles
    event = production(gtin, lot, [serials[0], serials[2]], [serials[1], serials[2]])
    doc = document(event)
    assert_valid(validator, doc)
    job = job_of(client, producer["erp"], post(client, producer["erp"], doc))
    assert (job["success"], job["captured"]) == (True, 1), job["errors"]
    admin = make.auth("admin")
    resp = client.get(
        "/epcis/events", query_string={"eventType": "TransformationEvent"}, headers=admin
    )
    body = resp.get_json()
    assert_valid(validator, body)
    (served,) = events_of(resp)
    assert [served["eventID"]] == reference_ids(body)
    assert reference_ids(body) == reference_ids(
        {
            "@context": doc["@context"],
            "creationDate": doc["creationDate"],
            "epcisBody": {"queryResults": {"resultsBody": {"eventList": [event]}}},
        }
    )  # the sender's event hashes the same as the one served back
    assert "action" not in served and served["transformationID"] == TRANSFORMATION_ID
    assert served["inputQuantityList"] == [
        {"epcClass": FLOUR_LINK, "quantity": 12.5, "uom": "KGM"},
        {"epcClass": "https://id.gs1.org/01/00614141777778/10/987", "quantity": 30},
    ]
    one = client.get(f"/epcis/events/{quote(served['eventID'], safe='')}", headers=admin)
    assert events_of(one) == [served]

    def unit(n: int) -> str:
        return f"{HOST}/01/{gtin}/10/{lot}/21/{serials[n]}"

    it, none = [served["eventID"]], []
    merchant = make.auth("merchant", producer["merchant"])
    for params, expected in [
        ({"MATCH_inputEPC": unit(0)}, it),
        ({"MATCH_inputEPC": unit(1)}, none),
        ({"MATCH_outputEPC": unit(1)}, it),
        ({"MATCH_outputEPC": unit(0)}, none),
        ({"MATCH_inputEPC": unit(2), "MATCH_outputEPC": unit(2)}, it),
        ({"MATCH_epc": unit(0), "eventType": "TransformationEvent"}, none),  # epcList only
        ({"MATCH_inputEPCClass": "https://x.example/01/04012345111118/10/4444"}, it),
        ({"MATCH_outputEPCClass": FLOUR_LINK}, none),
        ({"MATCH_outputEPCClass": f"{HOST}/01/{gtin}"}, it),  # a GTIN: all its lots
        ({"MATCH_anyEPCClass": FLOUR_LINK}, it),
        ({"MATCH_epcClass": FLOUR_LINK}, none),  # quantityList only
        ({"EQ_transformationID": TRANSFORMATION_ID}, it),
        ({"EQ_transformationID": "urn:uuid:other"}, none),
        ({"EQ_transformationID": TRANSFORMATION_ID, "eventType": "ObjectEvent"}, none),
    ]:
        assert _ids(client, admin, **params) == expected, params
        assert _ids(client, merchant, **params) == expected, params
    # MATCH_anyEPC covers inputs and outputs; the unit's own events are there too
    for n in (0, 1, 2):
        assert served["eventID"] in _ids(client, admin, MATCH_anyEPC=unit(n))
    # MATCH_anyEPCClass also finds our own commissioning of the batch (its quantityList)
    by_class = everything(client, admin, MATCH_anyEPCClass=f"{HOST}/01/{gtin}/10/{lot}")
    assert served in by_class and any(e["type"] == "ObjectEvent" for e in by_class)
    assert (
        _ids(client, make.auth("merchant", make.merchant()), eventType="TransformationEvent") == []
    )
    # a unit's history lists it once, though the unit is both an input and an output
    history = client.get(f"/api/v1/codes/{serials[2]}/history", headers=admin).get_json()
    assert [c["event_id"] for c in history["captured_events"]] == it
    assert history["captured_events"][0]["epcis_type"] == "TransformationEvent"
    epc_events = client.get(f"/epcis/epcs/{quote(unit(0), safe='')}/events", headers=admin)
    assert served["eventID"] in [e["eventID"] for e in events_of(epc_events)]


def test_a_transformation_naming_another_partys_product_is_refused(client, make, producer):
    """Does the rule that a system acts for its own party hold for every input and output:
    another merchant's GTIN as an input EPC, an input class or an output class is refused
    (SecurityException), a logistics company's system names none of ours?"""
    gtin, lot, serials = producer["gtin"], producer["lot"], producer["serials"]
    other = client.get(f"/api/v1/products/{make.product(make.merchant())}").get_json()["gtin"]
    theirs = {"epcClass": f"https://id.gs1.org/01/{other}/10/X1", "quantity": 1}
    for change in (
        {"inputEPCList": [f"https://id.gs1.org/01/{other}/21/S1"]},
        {"inputQuantityList": [theirs]},
        {"outputQuantityList": [theirs]},
        {"outputEPCList": [f"https://id.gs1.org/01/{other}/21/S2"]},
    ):
        doc = document(production(gtin, lot, [serials[0]], [serials[1]], **change))
        job = job_of(client, producer["erp"], post(client, producer["erp"], doc))
        assert (job["captured"], job["errors"][0]["type"]) == (
            0,
            "epcisException:SecurityException",
        ), change
        assert other in job["errors"][0]["detail"]
    company_system = make.outside_system(producer["company"], "某物流TMS", role="logistics")
    ours = document(production(gtin, lot, [], [serials[1]]))
    job = job_of(client, company_system, post(client, company_system, ours))
    assert job["errors"][0]["type"] == "epcisException:SecurityException"
    # outside identifiers only: the supplier's flour into another company's product
    outside = production("04012345111118", "B7", [], ["Z1"])
    outside["outputQuantityList"] = []
    job = job_of(client, company_system, post(client, company_system, document(outside)))
    assert (job["success"], job["captured"]) == (True, 1), job["errors"]


def test_a_bad_transformation_among_valid_events_proceed_keeps_the_valid_ones(
    client, make, producer, validator
):
    """A transformation with no output (and no transformationID) among valid events: the
    schema refuses it too; rolled back by default; with proceed the others are kept, the job
    naming the event and the field."""
    gtin, lot, serials = producer["gtin"], producer["lot"], producer["serials"]
    bad = production(gtin, lot, [serials[0]], [])
    del bad["transformationID"], bad["outputEPCList"], bad["outputQuantityList"], bad["ilmd"]
    doc = document(
        shipping(["urn:epc:id:sgtin:0614141.107346.2017"]),
        bad,
        production(gtin, lot, [serials[0]], [serials[1]]),
    )
    assert list(validator.iter_errors(doc))
    job = job_of(client, producer["erp"], post(client, producer["erp"], doc))
    assert (job["success"], job["captured"]) == (False, 0)
    job = job_of(client, producer["erp"], post(client, producer["erp"], doc, "proceed"))
    assert (job["success"], job["captured"]) == (False, 2)
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException"
    assert error["instance"].endswith("#event-1") and "outputEPCList" in error["detail"]
    admin = make.auth("admin")
    assert len(_ids(client, admin, eventType="TransformationEvent")) == 1


@pytest.mark.parametrize("kind", ["TransactionEvent", "AssociationEvent"])
def test_transaction_and_association_events_are_still_refused_by_name(client, producer, kind):
    doc = document(shipping(["urn:epc:id:sgtin:0614141.107346.2017"]) | {"type": kind})
    job = job_of(client, producer["erp"], post(client, producer["erp"], doc))
    (error,) = job["errors"]
    assert job["captured"] == 0 and "TransactionEvent and AssociationEvent" in error["detail"]
