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


#: Productions as traceability platforms record them: ingredient lots and units in, product
#: lots and units out (URNs and Digital Links, quantities with and without a unit of
#: measure), and one transformation told in two events sharing a transformationID.
TRANSFORMATIONS = [
    {
        "type": "TransformationEvent",
        "eventTime": "2026-12-01T06:00:00.25+08:00",
        "eventTimeZoneOffset": "+08:00",
        "inputEPCList": [
            "urn:epc:id:sgtin:4012345.011122.25",
            "https://id.example.cn/01/06941234500017/10/L1/21/ABC123",
        ],
        "inputQuantityList": [
            {"epcClass": "urn:epc:class:lgtin:4012345.011111.4444", "quantity": 10, "uom": "KGM"},
            {"epcClass": "urn:epc:class:lgtin:0614141.077777.987", "quantity": 30},
            {"epcClass": "urn:epc:idpat:sgtin:4012345.066666.*", "quantity": 220.5, "uom": "LTR"},
        ],
        "outputEPCList": [
            "urn:epc:id:sgtin:4012345.077889.25",
            "https://id.gs1.org/01/06941234500017/21/XYZ1",
        ],
        "outputQuantityList": [
            {"epcClass": "https://id.example.cn/01/06941234500017/10/L2", "quantity": 12}
        ],
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        "bizLocation": {"id": "https://id.gs1.org/414/4012345000016"},
        "bizTransactionList": [
            {"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}
        ],
        "sourceList": [{"type": "owning_party", "source": "urn:epc:id:sgln:4012345.00001.0"}],
        "destinationList": [
            {"type": "owning_party", "destination": "urn:epc:id:sgln:4012345.00002.0"}
        ],
        "ilmd": {"cbvmda:lotNumber": "L2", "cbvmda:itemExpirationDate": "2027-12-01"},
    },
    {
        "type": "TransformationEvent",
        "eventTime": "2026-12-01T07:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "inputQuantityList": [
            {"epcClass": "urn:epc:class:lgtin:4012345.011111.4444", "quantity": 5.5, "uom": "KGM"}
        ],
        "transformationID": "urn:uuid:0b0a9c5e-3b3a-4b0c-9e39-3a0f1d3f7c11",
        "bizStep": "urn:epcglobal:cbv:bizstep:transforming",
    },
    {
        "type": "TransformationEvent",
        "eventTime": "2026-12-01T08:00:00-05:30",
        "eventTimeZoneOffset": "-05:30",
        "outputEPCList": ["https://id.example.cn/01/06941234500017/10/L3/21/S%2F1"],
        "transformationID": "urn:uuid:0b0a9c5e-3b3a-4b0c-9e39-3a0f1d3f7c11",
        "bizStep": "https://ref.gs1.org/cbv/BizStep-transforming",
        "ilmd": {"example:grade": "A"},
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


@pytest.mark.parametrize("events", [EVENTS, TRANSFORMATIONS], ids=["object", "transformation"])
def test_each_event_hashes_as_the_reference_reads_the_senders_document(events):
    ours = [epcis.event_hash(c.event, URIS) for c in read_all(document(events))]
    assert ours == reference(document(events))


@pytest.mark.parametrize("events", [EVENTS, TRANSFORMATIONS], ids=["object", "transformation"])
def test_the_events_served_back_hash_as_the_reference_reads_them(events):
    served = [epcis.event_json(c.event, URIS) for c in read_all(document(events))]
    query = epcis.query_document(URIS, served, NOW)
    back = document(
        query["epcisBody"]["queryResults"]["resultsBody"]["eventList"], query["@context"]
    )
    assert [e["eventID"] for e in served] == reference(back)


def test_a_transformation_is_read_with_its_inputs_and_outputs_apart():
    """Are a transformation's EPCs and classes kept in their roles (URNs as Digital Links,
    quantities with their unit), served without an action, with its transformationID?"""
    first, split, _ = read_all(document(TRANSFORMATIONS))
    event = first.event
    assert (event.action, event.transformation_id) == (None, None)
    assert event.inputs == (
        "https://id.gs1.org/01/04012345111224/21/25",
        "https://id.example.cn/01/06941234500017/10/L1/21/ABC123",
    )
    assert event.input_quantities[0] == ("https://id.gs1.org/01/04012345111118/10/4444", 10, "KGM")
    assert event.input_quantities[1] == ("https://id.gs1.org/01/00614141777778/10/987", 30)
    roles_of = {epc: role for role, epc in first.identifiers}
    assert roles_of["https://id.gs1.org/01/06941234500017/21/XYZ1"] == "output"
    assert roles_of["https://id.example.cn/01/06941234500017/10/L2"] == "output_class"
    roles = [role for role, _ in first.identifiers]
    assert roles.count("input") == 2 and roles.count("output") == 2
    assert roles.count("input_class") == 3 and roles.count("output_class") == 1
    served = epcis.event_json(event, URIS)
    assert "action" not in served and served["inputQuantityList"][2]["uom"] == "LTR"
    assert split.event.transformation_id == "urn:uuid:0b0a9c5e-3b3a-4b0c-9e39-3a0f1d3f7c11"
    assert epcis.event_json(split.event, URIS)["transformationID"] == split.event.transformation_id
    # "transforming" is no CBV 2.0 bizStep: kept as its URI (valid, and hashed the same)
    assert split.event.biz_step == "https://ref.gs1.org/cbv/BizStep-transforming"
    assert first.our_type is None


def test_one_epc_both_input_and_output_is_named_in_both_roles():
    epc = "https://id.gs1.org/01/04012345123456/21/7"
    raw = TRANSFORMATIONS[0] | {"inputEPCList": [epc], "outputEPCList": [epc]}
    (read,) = read_all(document([raw]))
    assert ("input", epc) in read.identifiers and ("output", epc) in read.identifiers


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
        ({"type": "TransactionEvent"}, "type"),
        ({"type": "AssociationEvent"}, "type"),
        ({"type": "TransformationEvent"}, "action"),
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


def test_transaction_and_association_events_are_refused_by_name():
    raw = EVENTS[0] | {"type": "TransactionEvent"}
    with pytest.raises(ValidationError, match="TransactionEvent and AssociationEvent are not"):
        read_event(raw, {}, URIS, NOW)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": "ADD"}, "action"),
        ({"epcList": ["urn:epc:id:sgtin:0614141.107346.1"]}, "epcList"),
        ({"childEPCs": ["urn:epc:id:sgtin:0614141.107346.1"]}, "childEPCs"),
        ({"parentID": "urn:epc:id:sscc:0614141.1234567890"}, "parentID"),
        ({"quantityList": []}, "quantityList"),
        ({"persistentDisposition": {"set": ["completeness_verified"]}}, "persistentDisposition"),
        ({"inputEPCList": None, "inputQuantityList": None}, "inputEPCList"),
        ({"inputEPCList": [], "inputQuantityList": []}, "inputEPCList"),
        ({"outputEPCList": None, "outputQuantityList": []}, "outputEPCList"),
        ({"outputEPCList": "urn:epc:id:sgtin:0614141.107346.1"}, "outputEPCList"),
        ({"inputEPCList": [7]}, "inputEPCList"),
        ({"inputQuantityList": [{"epcClass": "x", "quantity": -1}]}, "inputQuantityList.quantity"),
        ({"inputQuantityList": [{"epcClass": "x", "uom": "KGM"}]}, "inputQuantityList.uom"),
        ({"outputQuantityList": [{"epcClass": "x", "quantity": 1, "uom": "KILO"}]},
         "outputQuantityList.uom"),
        ({"outputQuantityList": [{"quantity": 1}]}, "outputQuantityList.epcClass"),
        ({"outputQuantityList": [{"epcClass": "x", "count": 1}]}, "outputQuantityList"),
        ({"transformationID": "not a URI"}, "transformationID"),
        ({"transformationID": 12}, "transformationID"),
        ({"ilmd": {"undeclared:x": "1"}}, "ilmd"),
        ({"bizStep": "transforming"}, "bizStep"),
        ({"disposition": "good"}, "disposition"),
        ({"bizTransactionList": [{"type": "order", "bizTransaction": "urn:x:1"}]},
         "bizTransactionList.type"),
    ],
)  # fmt: skip
def test_a_transformation_the_service_cannot_read_is_refused_naming_the_field(change, field):
    """Is each field of a TransformationEvent checked, with the standard's rules on the
    type's fields (no action, no epcList) and at least one input and one output?"""
    raw = {k: v for k, v in (TRANSFORMATIONS[0] | change).items() if v is not None}
    read = read_document(document([raw]))
    with pytest.raises(ValidationError) as refused:
        read_event(raw, read.namespaces, URIS, NOW)
    assert refused.value.field == field


def test_a_transformation_id_stands_for_the_missing_side():
    """EPCIS 2.0: with a transformationID, inputs alone or outputs alone are an event; with
    neither it is still refused."""
    split = TRANSFORMATIONS[1]
    assert read_all(document([split]))[0].event.outputs == ()
    with pytest.raises(ValidationError) as refused:
        read_all(document([{k: v for k, v in split.items() if k != "inputQuantityList"}]))
    assert refused.value.field == "inputEPCList"


def test_an_aggregation_has_no_quantity_list():
    """GS1's schema gives an AggregationEvent childQuantityList, not quantityList (served
    back, it would not be valid): refused naming it."""
    raw = EVENTS[3] | {"quantityList": [{"epcClass": "urn:epc:idpat:sgtin:4012345.012345.*"}]}
    with pytest.raises(ValidationError) as refused:
        read_event(raw, {}, URIS, NOW)
    assert refused.value.field == "quantityList"
