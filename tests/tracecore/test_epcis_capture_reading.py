"""Reading captured EPCIS documents, without an app: each event read hashes as the reference
implementation (epcis-event-hash-generator) hashes the event as its sender wrote it, and as
it hashes the event as we serve it back; what the service does not capture is refused."""

import copy
import warnings
from datetime import UTC, datetime

import pytest
from epcis_event_hash_generator import hash_generator, json_to_py

from tracecore import epcis
from tracecore.epcis_capture import normalise_epc, read_document, read_event
from tracecore.errors import ValidationError

URIS = epcis.Uris("id.example.cn")
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
#: The sender's context: the standard's, GS1's example prefix, and cbvmda declared (the
#: reference expands a prefix only when the document declares it).
CONTEXT = [
    epcis.EPCIS_CONTEXT,
    {"example": "http://ns.example.com/epcis/", "cbvmda": "urn:epcglobal:cbv:mda:"},
]

#: Events shaped as GS1's examples (gs1/EPCIS JSON/Example_9.6.1 to 9.6.3), with the fields
#: the service captures.
EVENTS = [
    {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.2018"],
        "eventTime": "2005-04-03T20:33:31.116000-06:00",
        "eventTimeZoneOffset": "-06:00",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}
        ],
    },
    {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:receiving",
        "disposition": "in_progress",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2018"],
        "eventTime": "2005-04-04T20:33:31.116-06:00",
        "eventTimeZoneOffset": "-06:00",
        "readPoint": {"id": "urn:epc:id:sgln:0012345.11111.400"},
        "bizLocation": {"id": "urn:epc:id:sgln:0012345.11111.0"},
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:sgln:4012345.00001.0"}],
        "destinationList": [
            {
                "type": "urn:epcglobal:cbv:sdt:location",
                "destination": "urn:epc:id:sgln:0614141.00777.0",
            }
        ],
    },
    {
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "epcList": ["https://id.example.cn/01/06941234500017/10/L1/21/ABC123"],
        "quantityList": [
            {
                "epcClass": "urn:epc:class:lgtin:4012345.012345.998877",
                "quantity": 200,
                "uom": "KGM",
            },
            {"epcClass": "urn:epc:idpat:sgtin:4012345.012345.*", "quantity": 5},
        ],
        "eventTime": "2026-12-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "ilmd": {"cbvmda:lotNumber": "L1", "example:grade": "A"},
    },
    {
        "type": "AggregationEvent",
        "action": "ADD",
        "bizStep": "packing",
        "disposition": "in_progress",
        "parentID": "urn:epc:id:sscc:0614141.1234567890",
        "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "eventTime": "2026-12-01T09:00:00.5+08:00",
        "eventTimeZoneOffset": "+08:00",
    },
]


def document(events, context=CONTEXT) -> dict:
    return {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }


def reference(doc: dict) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        events = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(doc))
    return hash_generator.epcis_hashes_from_events(events)


def read_all(doc: dict) -> list:
    read = read_document(doc)
    return [read_event(raw, read.namespaces, URIS, NOW) for raw in read.events]


def test_each_event_hashes_as_the_reference_reads_the_senders_document():
    ours = [epcis.event_hash(c.event, URIS) for c in read_all(document(EVENTS))]
    assert ours == reference(document(EVENTS))


def test_the_events_served_back_hash_as_the_reference_reads_them():
    served = [epcis.event_json(c.event, URIS) for c in read_all(document(EVENTS))]
    query = epcis.query_document(URIS, served, NOW)
    back = document(
        query["epcisBody"]["queryResults"]["resultsBody"]["eventList"], query["@context"]
    )
    assert [e["eventID"] for e in served] == reference(back)


@pytest.mark.parametrize(
    ("urn", "link"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:id:sgtin:0614141.107346.a%2Fb", "https://id.gs1.org/01/10614141073464/21/a%2Fb"),
        (
            "urn:epc:class:lgtin:4012345.012345.998877",
            "https://id.gs1.org/01/04012345123456/10/998877",
        ),
        ("urn:epc:idpat:sgtin:4012345.012345.*", "https://id.gs1.org/01/04012345123456"),
        ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
        ("urn:epc:id:sgln:0614141.07346.0", "https://id.gs1.org/414/0614141073467"),
        ("urn:epc:id:sgln:0614141.07346.1234", "https://id.gs1.org/414/0614141073467/254/1234"),
        ("urn:epc:id:grai:0614141.12345.400", "urn:epc:id:grai:0614141.12345.400"),
        (
            "urn:uuid:0b0a9c5e-3b3a-4b0c-9e39-3a0f1d3f7c11",
            "urn:uuid:0b0a9c5e-3b3a-4b0c-9e39-3a0f1d3f7c11",
        ),
    ],
)
def test_epc_urns_are_kept_as_their_digital_link(urn, link):
    assert normalise_epc(urn, "epc") == link


def test_our_event_type_is_read_from_the_bizstep():
    types = [c.our_type for c in read_all(document(EVENTS))]
    assert types == ["picked_up", None, None, "packed"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "TransformationEvent"}, "type"),
        ({"sensorElementList": []}, "sensorElementList"),
        ({"example:myField": "x"}, "example:myField"),
        ({"eventTimeZoneOffset": "+8"}, "eventTimeZoneOffset"),
        ({"eventTime": "2026-12-01T08:00:00"}, "eventTime"),
        ({"action": "UPDATE"}, "action"),
        ({"epcList": "urn:epc:id:sgtin:0614141.107346.1"}, "epcList"),
        ({"ilmd": {"undeclared:x": "1"}}, "ilmd"),
        ({"readPoint": {"id": "x", "extra": 1}}, "readPoint"),
        ({"parentID": "urn:epc:id:sscc:0614141.1234567890"}, "parentID"),
    ],
)
def test_what_the_service_does_not_capture_is_refused_naming_the_field(change, field):
    raw = EVENTS[0] | change
    read = read_document(document([raw]))
    with pytest.raises(ValidationError) as refused:
        read_event(raw, read.namespaces, URIS, NOW)
    assert refused.value.field == field
