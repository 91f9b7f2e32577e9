"""Our parcel events and states in the courier status models that tracking aggregators speak:
Kuaidi100's ``state`` (快递100 物流状态, with its resultv2 sub-state where one fits) and
AfterShip's ``tag`` / ``subtag`` / ``subtag_message``. A platform that already reads one of
them reads our parcel histories and webhooks without a mapping of its own.

One table, :data:`COURIER_STATUS`, keyed by parcel event type (a parcel's state is the type
of its last lawful event, so the same table serves both); docs/courier-status.md shows it.
Unit events (``shelved``, ``sold``) are not courier events and have no courier status.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracecore.vocabulary import EventType


@dataclass(frozen=True)
class Kuaidi100:
    """A Kuaidi100 ``state`` (as the API sends it: a string of digits) with its Chinese name,
    and the resultv2 sub-state when one says more."""

    state: str
    name: str
    sub_state: str | None = None
    sub_name: str | None = None

    def as_json(self) -> dict:
        out = {"state": self.state, "name": self.name}
        if self.sub_state is not None:
            out |= {"sub_state": self.sub_state, "sub_name": self.sub_name}
        return out


@dataclass(frozen=True)
class AfterShip:
    """An AfterShip delivery status (``tag``) and sub-status (``subtag``, its message)."""

    tag: str
    subtag: str
    subtag_message: str

    def as_json(self) -> dict:
        return {"tag": self.tag, "subtag": self.subtag, "subtag_message": self.subtag_message}


@dataclass(frozen=True)
class CourierStatus:
    kuaidi100: Kuaidi100
    aftership: AfterShip

    def as_json(self) -> dict:
        """``{"kuaidi100": {state, name[, sub_state, sub_name]}, "aftership": {tag, subtag,
        subtag_message}}``: what the parcel history and the parcel webhooks carry."""
        return {"kuaidi100": self.kuaidi100.as_json(), "aftership": self.aftership.as_json()}


#: Parcel event type (and parcel state) -> its courier status in both models.
COURIER_STATUS: dict[str, CourierStatus] = {
    # Packed by the merchant, waiting for the courier: the carrier has the order, not the goods.
    EventType.PACKED: CourierStatus(
        Kuaidi100("1", "揽收", "102", "待揽收"),
        AfterShip("InfoReceived", "InfoReceived_001", "Info Received"),
    ),
    EventType.PICKED_UP: CourierStatus(
        Kuaidi100("1", "揽收", "103", "已揽收"),
        AfterShip("InTransit", "InTransit_002", "Acceptance scan"),
    ),
    EventType.IN_TRANSIT: CourierStatus(
        Kuaidi100("0", "在途"),
        AfterShip("InTransit", "InTransit_001", "In Transit"),
    ),
    EventType.OUT_FOR_DELIVERY: CourierStatus(
        Kuaidi100("5", "派件"),
        AfterShip("OutForDelivery", "OutForDelivery_001", "Out for Delivery"),
    ),
    # The courier tried and failed: Kuaidi100 files it under 疑难 (派件异常); AfterShip has
    # a tag of its own for a failed attempt.
    EventType.DELIVERY_FAILED: CourierStatus(
        Kuaidi100("2", "疑难", "204", "派件异常"),
        AfterShip("AttemptFail", "AttemptFail_001", "Failed Attempt"),
    ),
    # Signed for by the consignee (签收): a signature, so AfterShip's "signed by customer".
    EventType.SIGNED: CourierStatus(
        Kuaidi100("3", "签收"),
        AfterShip("Delivered", "Delivered_003", "Sign by customer"),
    ),
    # A courier's return scan: the parcel is on its way back, in the courier's hands, until
    # a merchant shelves its units again (Kuaidi100's 退签, signed back by the sender, is a
    # state we do not record).
    EventType.RETURNED: CourierStatus(
        Kuaidi100("6", "退回"),
        AfterShip("Exception", "Exception_010", "Returning to sender"),
    ),
}


def courier_status(event_type: str) -> CourierStatus | None:
    """The courier status of a parcel event or parcel state (``packed`` ... ``returned``),
    or None for a unit event (``shelved``, ``sold``) or anything else."""
    return COURIER_STATUS.get(event_type)
