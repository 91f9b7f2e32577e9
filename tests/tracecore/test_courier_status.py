"""Parcel events and states in the courier status models (Kuaidi100, AfterShip)."""

from tracecore.courier_status import COURIER_STATUS, courier_status
from tracecore.vocabulary import PARCEL_EVENTS, EventType, ParcelState, UnitState

#: Kuaidi100's ``state`` codes and names (快递100 实时快递查询接口: 物流状态, resultv2 高级状态).
KUAIDI100_STATES = {
    "0": "在途",
    "1": "揽收",
    "2": "疑难",
    "3": "签收",
    "4": "退签",
    "5": "派件",
    "6": "退回",
    "7": "转投",
    "8": "清关",
    "14": "拒签",
}
#: Kuaidi100's resultv2 sub-states, each under its state.
KUAIDI100_SUB_STATES = {
    "101": ("1", "已下单"),
    "102": ("1", "待揽收"),
    "103": ("1", "已揽收"),
    "1001": ("0", "到达派件城市"),
    "1002": ("0", "干线"),
    "1003": ("0", "转递"),
    "501": ("5", "投柜或驿站"),
    "301": ("3", "本人签收"),
    "302": ("3", "派件异常后签收"),
    "303": ("3", "代签"),
    "304": ("3", "投柜或站签收"),
    "401": ("4", "已销单"),
    "201": ("2", "超时未签收"),
    "202": ("2", "超时未更新"),
    "203": ("2", "拒收"),
    "204": ("2", "派件异常"),
    "205": ("2", "柜或驿站超时未取"),
    "206": ("2", "无法联系"),
    "207": ("2", "超区"),
    "208": ("2", "滞留"),
    "209": ("2", "破损"),
    "210": ("2", "销单"),
    "10": ("8", "待清关"),
    "11": ("8", "清关中"),
    "12": ("8", "已清关"),
    "13": ("8", "清关异常"),
}
#: AfterShip's tags (Delivery Statuses) and the subtags of each (Delivery Sub-statuses),
#: with the subtag messages of those we use.
AFTERSHIP_TAGS = {
    "Pending": {f"Pending_00{i}" for i in range(1, 7)},
    "InfoReceived": {"InfoReceived_001"},
    "InTransit": {f"InTransit_00{i}" for i in range(1, 10)},
    "OutForDelivery": {"OutForDelivery_001", "OutForDelivery_003", "OutForDelivery_004"},
    "AttemptFail": {"AttemptFail_001", "AttemptFail_002", "AttemptFail_003"},
    "Delivered": {f"Delivered_00{i}" for i in range(1, 6)},
    "AvailableForPickup": {"AvailableForPickup_001"},
    "Exception": {f"Exception_{i:03}" for i in range(1, 14)},
    "Expired": {"Expired_001"},
}
AFTERSHIP_MESSAGES = {
    "InfoReceived_001": "Info Received",
    "InTransit_001": "In Transit",
    "InTransit_002": "Acceptance scan",
    "OutForDelivery_001": "Out for Delivery",
    "AttemptFail_001": "Failed Attempt",
    "Delivered_001": "Delivered",
    "Delivered_003": "Sign by customer",
    "Exception_010": "Returning to sender",
    "Exception_011": "Returned to sender",
}


def test_every_parcel_event_and_state_has_a_courier_status():
    """Does a new parcel event type or state fail here until it is mapped?"""
    wanted = {*PARCEL_EVENTS, EventType.PACKED, *ParcelState}
    assert wanted <= set(COURIER_STATUS), wanted - set(COURIER_STATUS)
    assert all(courier_status(x) is not None for x in wanted)


def test_unit_events_have_none():
    """Shelving and selling are no courier's business."""
    assert set(COURIER_STATUS) <= {*PARCEL_EVENTS, EventType.PACKED}
    for x in (EventType.SHELVED, EventType.SOLD, UnitState.ISSUED, "nonsense"):
        assert courier_status(x) is None


def test_every_kuaidi100_code_is_one_of_the_scheme():
    for event, status in COURIER_STATUS.items():
        k = status.kuaidi100
        assert KUAIDI100_STATES.get(k.state) == k.name, event
        if k.sub_state is not None:
            assert KUAIDI100_SUB_STATES.get(k.sub_state) == (k.state, k.sub_name), event


def test_every_aftership_code_is_one_of_the_scheme():
    for event, status in COURIER_STATUS.items():
        a = status.aftership
        assert a.subtag in AFTERSHIP_TAGS.get(a.tag, ()), event
        assert AFTERSHIP_MESSAGES[a.subtag] == a.subtag_message, event


def test_the_mapping_tells_the_journey_apart():
    """Picked up, delivered and failed are distinct in both schemes."""
    picked, signed, failed = (
        courier_status(t)
        for t in (EventType.PICKED_UP, EventType.SIGNED, EventType.DELIVERY_FAILED)
    )
    assert (picked.kuaidi100.state, signed.kuaidi100.state) == ("1", "3")
    assert (signed.aftership.tag, failed.aftership.tag) == ("Delivered", "AttemptFail")


def test_as_json_is_what_the_history_and_webhooks_carry():
    assert courier_status("signed").as_json() == {
        "kuaidi100": {"state": "3", "name": "签收"},
        "aftership": {
            "tag": "Delivered",
            "subtag": "Delivered_003",
            "subtag_message": "Sign by customer",
        },
    }
    assert courier_status("packed").as_json()["kuaidi100"] == {
        "state": "1",
        "name": "揽收",
        "sub_state": "102",
        "sub_name": "待揽收",
    }
