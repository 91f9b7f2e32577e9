"""The CBV 2.0 mapping and event hash, without an app: our pre-hash against the reference
implementation's (epcis-event-hash-generator) on the values that bend canonical forms."""

import copy
import warnings
from datetime import UTC, date, datetime

import pytest
from epcis_event_hash_generator import hash_generator, json_to_py

from tracecore import epcis
from tracecore.errors import ValidationError

URIS = epcis.Uris("id.example.cn")
T = datetime(2026, 11, 20, 9, 0, 0, 987654, tzinfo=UTC)
GTIN = "06901234567892"


def reference_prehash(event: epcis.EpcisEvent) -> str:
    document = {
        "@context": URIS.context(),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-20T09:00:00Z",
        "epcisBody": {"eventList": [copy.deepcopy(epcis.event_json(event, URIS))]},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        events = json_to_py.event_list_from_epcis_document_json(document)
    return hash_generator.derive_prehashes_from_events(events)[0]


def commissioning(lot: str, origin: str = "江苏省常州市") -> epcis.EpcisEvent:
    return epcis.commissioning_event(
        URIS,
        issued_at=T,
        count=12,
        gtin=GTIN,
        lot=lot,
        produced_on=date(2026, 10, 1),
        expires_on=date(2027, 10, 1),
        origin_name=origin,
        merchant_place=URIS.place("merchant", 7),
        offset_min=480,
    )


@pytest.mark.parametrize("lot", ["L1", "007", "2026.10", "A-B_C.D", "A/B", "L%1", "00"])
def test_the_prehash_of_a_commissioning_equals_the_references(lot):
    """Is our pre-hash string the reference's for lots that are numbers, carry characters
    Digital Link percent-encodes, or read as another GS1 key's path segment?"""
    assert epcis.prehash(commissioning(lot), URIS) == reference_prehash(commissioning(lot))


@pytest.mark.parametrize("serial", ["ABCDEFGH23456789", "A/1", "12", "x.y"])
def test_the_prehash_of_a_packing_and_a_sale_equals_the_references(serial):
    """Are units' Digital Links made canonical as the reference makes them, and a sale's
    order a business transaction hashed as it does?"""
    unit = URIS.unit(GTIN, "L1", serial)
    packing = epcis.device_event(
        URIS,
        "packed",
        occurred_at=T,
        offset_min=-330,
        received_at=T,
        subject=URIS.parcel("SF0001"),
        children=(unit, URIS.unit(GTIN, "L2", "ZZ")),
        party_place=URIS.place("merchant", 7),
    )
    sale = epcis.device_event(
        URIS,
        "sold",
        occurred_at=T,
        offset_min=480,
        received_at=T,
        subject=unit,
        party_place=URIS.place("merchant", 7),
        order=URIS.order(7, "D-2026/11 #3"),
    )
    for event in (packing, sale):
        assert epcis.prehash(event, URIS) == reference_prehash(event)


def test_event_time_is_in_the_devices_offset_to_the_millisecond():
    """Is eventTime written in the event's own offset, truncated to the millisecond that the
    hash reads?"""
    event = commissioning("L1")
    body = epcis.event_json(event, URIS)
    assert body["eventTime"] == "2026-11-20T17:00:00.987+08:00"
    assert body["recordTime"] == "2026-11-20T09:00:00.987Z"
    assert "eventTime=2026-11-20T09:00:00.987Z" in epcis.prehash(event, URIS)


def test_reading_epcs():
    """Are a unit's, a batch's and a product's Digital Links (any host) and our parcel and
    place URIs (our host only) read, and anything else refused?"""
    unit = epcis.read_epc(f"https://other.example/01/{GTIN}/10/L1/21/S1", URIS)
    assert (unit.kind, unit.gtin, unit.lot, unit.serial) == ("unit", GTIN, "L1", "S1")
    assert epcis.read_epc(URIS.lot(GTIN, "L1"), URIS).kind == "lot"
    assert epcis.read_epc(f"https://x.example/01/{GTIN}", URIS).kind == "product"
    assert epcis.read_epc(URIS.parcel("SF01"), URIS).waybill == "SF01"
    place = epcis.read_epc(URIS.place("logistics_company", 4), URIS)
    assert (place.party_type, place.party_id) == ("logistics_company", 4)
    for bad in ("https://elsewhere.example/id/parcel/SF01", "urn:epc:id:sgtin:1.2.3", "x"):
        with pytest.raises(ValidationError):
            epcis.read_epc(bad, URIS)


def test_an_event_id_is_read_back_to_its_digest():
    """Is an ID we give out read back, and anything else refused?"""
    event_id = epcis.event_hash(commissioning("L1"), URIS)
    assert epcis.read_event_id(event_id) == event_id[14:78]
    with pytest.raises(ValidationError):
        epcis.read_event_id(event_id.replace("CBV2.0", "CBV1.2"))


@pytest.mark.parametrize("serial", ["ABC", "007", "A/1", "x.y"])
@pytest.mark.parametrize(
    "quantity",
    [(12,), (12.5, "KGM"), (None,), (0, "LTR")],
    ids=["count", "with uom", "no quantity", "zero with uom"],
)
def test_the_prehash_of_a_transformation_equals_the_references(serial, quantity):
    """Are a transformation's inputs and outputs (units, lots, quantities with and without a
    unit of measure), its transformationID and ILMD hashed in the reference's order and form,
    with no action?"""
    event = epcis.EpcisEvent(
        type=epcis.TRANSFORMATION,
        event_time=T,
        offset_min=480,
        record_time=T,
        action=None,
        inputs=(URIS.unit(GTIN, "L1", serial), "urn:uuid:0b0a9c5e-3b3a-4b0c-9e39-3a0f1d3f7c11"),
        input_quantities=(
            (URIS.lot(GTIN, "L0"), *quantity),
            ("https://id.gs1.org/01/04012345111118/10/4444", 3),
        ),
        outputs=(URIS.unit(GTIN, "L2", serial),),
        output_quantities=((URIS.lot(GTIN, "L2"), *quantity),),
        transformation_id="https://id.example.cn/id/transformation/7",
        biz_step="commissioning",
        disposition="active",
        read_point=URIS.place("merchant", 7),
        biz_transactions=(("prodorder", URIS.order(7, "P-1")),),
        ilmd=(("cbvmda:lotNumber", "L2"), ("trace:productionDate", "2026-11-20")),
    )
    assert "action" not in epcis.event_json(event, URIS)
    assert epcis.prehash(event, URIS) == reference_prehash(event)
