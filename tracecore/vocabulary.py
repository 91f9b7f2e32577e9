"""The event vocabulary, defined once: what devices report, what units and parcels become,
which device may report what, and which states mean the courier holds the goods.

String enums (``StrEnum``): a member equals, and hashes as, the string stored in the
database and sent on the wire, so ``row.type == EventType.SIGNED`` and
``"picked_up" in WITH_COURIER`` hold for plain strings read from either.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """What a device reports happened to a unit (by its code) or a parcel (by its waybill)."""

    SHELVED = "shelved"  #: put on a shop's shelf (上架)
    SOLD = "sold"  #: sold at a till or online (销售)
    PACKED = "packed"  #: packed into a parcel for shipping: names the codes and the waybill
    PICKED_UP = "picked_up"  #: the courier company takes the parcel (揽收)
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"  #: (派件)
    DELIVERY_FAILED = "delivery_failed"
    SIGNED = "signed"  #: signed for by the consignee (签收)
    RETURNED = "returned"


#: Events that name one unit by its code.
UNIT_EVENTS = frozenset({EventType.SHELVED, EventType.SOLD})
#: Events that name a parcel by its waybill (and so every unit packed in it).
PARCEL_EVENTS = frozenset(
    {
        EventType.PICKED_UP,
        EventType.IN_TRANSIT,
        EventType.OUT_FOR_DELIVERY,
        EventType.DELIVERY_FAILED,
        EventType.SIGNED,
        EventType.RETURNED,
    }
)
#: Every event type; ``packed`` names both the units and the parcel they go into.
EVENT_TYPES = frozenset(EventType)


class UnitState(StrEnum):
    """A unit's lifecycle state: the last lawful event, or ``issued``."""

    ISSUED = "issued"
    SHELVED = "shelved"
    SOLD = "sold"
    PACKED = "packed"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    SIGNED = "signed"
    RETURNED = "returned"


class ParcelState(StrEnum):
    """A parcel's lifecycle state: its last lawful event, from ``packed``."""

    PACKED = "packed"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    SIGNED = "signed"
    RETURNED = "returned"


#: States (and the events that lead to them) in which the courier, not the merchant nor the
#: consignee, holds the goods: custody passes to the scanning courier, and a parcel that
#: stays in one of them too long is stalled.
WITH_COURIER = frozenset(
    {
        EventType.PICKED_UP,
        EventType.IN_TRANSIT,
        EventType.OUT_FOR_DELIVERY,
        EventType.DELIVERY_FAILED,
    }
)
#: Delivery-stage events, scanned next to a consumer's home: their places are personal data.
NEAR_CONSUMER = frozenset({EventType.OUT_FOR_DELIVERY, EventType.DELIVERY_FAILED, EventType.SIGNED})


class DeviceKind(StrEnum):
    """The kinds of device that report events."""

    SHELF_SCANNER = "shelf_scanner"  #: a shop's shelf scanner (上架)
    POS_SCANNER = "pos_scanner"  #: a point-of-sale scanner (销售)
    COURIER_HANDHELD = "courier_handheld"  #: a courier's handheld terminal (揽收/派件/签收)


#: Which kind of device may report which events.
ALLOWED_BY_KIND = {
    DeviceKind.SHELF_SCANNER: frozenset({EventType.SHELVED, EventType.PACKED}),
    DeviceKind.POS_SCANNER: frozenset({EventType.SOLD, EventType.PACKED}),
    DeviceKind.COURIER_HANDHELD: PARCEL_EVENTS,
}
#: Who owns each kind of device (a party type): scanners a merchant, handhelds a courier.
OWNER_OF_KIND = {
    DeviceKind.SHELF_SCANNER: "merchant",
    DeviceKind.POS_SCANNER: "merchant",
    DeviceKind.COURIER_HANDHELD: "courier",
}
