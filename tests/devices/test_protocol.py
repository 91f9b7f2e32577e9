"""The device protocol's checks, without broker, app or database."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from devices.protocol import (
    Rejected,
    canonical_json,
    check_event,
    derive_secret,
    device_id_from_topic,
    parse_payload,
    verify,
)
from tests.factories import signed_event

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
SECRET = "s3cret"


def event(**kw):
    """A signed pickup, with ``kw`` changed (None leaves a field out)."""
    fields = {
        "type": "picked_up",
        "time": "2026-11-22T14:00:00+08:00",
        "waybill": "SF1234567890",
        "lat": 31.78,
        "lon": 119.95,
    } | kw
    return signed_event(SECRET, fields.pop("type"), fields.pop("time"), **fields)


def reason(body, now=NOW):
    with pytest.raises(Rejected) as caught:
        check_event(body, now)
    return caught.value.reason


def test_canonical_json_is_sorted_compact_utf8_without_sig():
    """Is the signed form exactly the one PROTOCOL.md gives, in UTF-8, without sig?"""
    body = {"b": 1, "a": "签收", "sig": "x"}
    assert canonical_json(body) == '{"a":"签收","b":1}'.encode()


def test_a_good_event_passes_and_verifies():
    """Does a well-formed, correctly signed event pass every check?"""
    checked = check_event(event(), NOW)
    verify(checked, SECRET)
    assert checked.waybill == "SF1234567890" and checked.time.utcoffset() == timedelta(hours=8)


def test_a_changed_field_breaks_the_signature():
    """If anyone alters a signed event (here the place), is the signature refused?"""
    body = event()
    body["lat"] = 30.0
    with pytest.raises(Rejected) as caught:
        verify(check_event(body, NOW), SECRET)
    assert caught.value.reason == "bad_signature"


def test_another_devices_secret_does_not_verify():
    """Can one device sign for another?"""
    with pytest.raises(Rejected):
        verify(check_event(event(), NOW), "other-secret")


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"event_id": None}, "missing_field"),
        ({"event_id": "not-a-uuid"}, "invalid_field"),
        ({"seq": 0}, "invalid_field"),
        ({"seq": "1"}, "invalid_field"),
        ({"seq": True}, "invalid_field"),
        ({"type": "teleported"}, "invalid_field"),
        ({"time": "2026-11-22 14:00:00"}, "invalid_field"),
        ({"time": "2026-11-22T14:00:00"}, "invalid_field"),
        ({"time": "2026-11-22T14:10:00+00:00"}, "future_time"),
        ({"time": "2026-09-01T00:00:00+00:00"}, "too_old"),
        ({"time": "0001-01-01T00:00:00+00:01"}, "invalid_field"),  # no UTC moment
        ({"time": "9999-12-31T23:59:59-00:01"}, "invalid_field"),
        ({"lat": 91}, "bad_coordinates"),
        ({"lon": -180.5}, "bad_coordinates"),
        ({"lon": None}, "bad_coordinates"),
        ({"waybill": None}, "missing_field"),
        ({"waybill": "SF 12"}, "invalid_field"),
        ({"data": []}, "invalid_field"),
        ({"data": {"x": "y" * 5000}}, "invalid_field"),
    ],
)
def test_malformed_fields_are_rejected_with_a_reason(change, expected):
    """Does each malformed field get its own reason code?"""
    assert reason(event(**change)) == expected


def test_sig_must_be_hex():
    """Is a signature that is not 64 hex digits refused before any lookup?"""
    body = event()
    body["sig"] = "zz"
    assert reason(body) == "bad_signature"


@pytest.mark.parametrize(
    "body,expected",
    [
        (event(type="sold", waybill=None, code="ABCDEFGHJKMNPQRS"), "missing_field"),
        (
            event(
                type="sold",
                waybill=None,
                code="ABCDEFGHJKMNPQRS",
                data={"order_id": "1", "price": -1},
            ),
            "invalid_field",
        ),
        (event(type="signed"), "missing_field"),
        (event(type="signed", data={"signer": "neighbour"}), "missing_field"),
        (event(type="packed", codes=[]), "invalid_field"),
        (event(type="packed", codes=["A"], data={"consignee": {"lat": 31}}), "missing_field"),
        (event(type="shelved", waybill=None), "missing_field"),
        (event(type="in_transit", data={"handover_to": "SF"}), "invalid_field"),
        (event(type="in_transit", data={"handover_to": 0}), "invalid_field"),
        (event(type="in_transit", data={"handover_to": True}), "invalid_field"),
    ],
)
def test_type_specific_rules(body, expected):
    """Are the fields each event type needs required?"""
    assert reason(body) == expected


def test_a_packed_event_with_everything_passes():
    """Does a complete packed event pass with its codes and consignee?"""
    body = event(
        type="packed",
        codes=["ABCDEFGHJKMNPQRS"],
        data={
            "consignee": {"lat": 31.8, "lon": 119.9},
            "consignee_region_code": "320411",
            "logistics_company_id": 3,
            "promised_by": "2026-11-24T18:00:00+08:00",
        },
    )
    assert check_event(body, NOW).codes == ["ABCDEFGHJKMNPQRS"]


@pytest.mark.parametrize(
    "raw,expected",
    [
        (b"\xff\xfe", "malformed"),
        (b"{not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"events": []}', "malformed"),
        (json.dumps({"events": [{}] * 501}).encode(), "too_many"),
        (b" " * (256 * 1024 + 1), "too_large"),
        (b"[" * 100000, "malformed"),
        (b'{"event_id": "x", "data": {"price": NaN}}', "malformed"),
        (b'{"event_id": "x", "lat": Infinity}', "malformed"),
    ],
)
def test_unreadable_messages_are_rejected_whole(raw, expected):
    """Are messages that cannot be read refused as a whole, with a reason?"""
    with pytest.raises(Rejected) as caught:
        parse_payload(raw)
    assert caught.value.reason == expected


def test_a_message_may_carry_one_event_or_many():
    """Is a bare event a one-event message, and {"events": [...]} many?"""
    one, two = event(), event()
    assert parse_payload(json.dumps(one).encode()) == [one]
    assert parse_payload(json.dumps({"events": [one, two]}).encode()) == [one, two]


def test_derived_secrets_differ_per_device_and_version():
    """Is every device's secret its own, and does a new version rotate it?"""
    a1, a2, b1 = (
        derive_secret("master", "A", 1),
        derive_secret("master", "A", 2),
        derive_secret("master", "B", 1),
    )
    assert len({a1, a2, b1}) == 3 and a1 == derive_secret("master", "A", 1)


@pytest.mark.parametrize(
    "topic,device",
    [
        ("trace/v1/devices/ABC123/events", "ABC123"),
        ("trace/v1/devices/ABC123/acks", None),
        ("trace/v1/devices/A/B/events", None),
        ("other/v1/devices/ABC/events", None),
    ],
)
def test_device_id_comes_only_from_an_events_topic(topic, device):
    """Is the device id read only from a well-formed events topic?"""
    assert device_id_from_topic(topic) == device


#: Values where a fast JSON library and the standard library are easily told apart.
AWKWARD_VALUES = [
    0.1,
    39.9,
    1e-05,
    1.234e-05,
    1e-07,
    0.0001,
    -0.0,
    1e16,
    1.2345678901234568e17,
    1.5e300,
    2**53 + 1,
    2**63,
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    10**30,
    '\x01\x1f\x7f\u2028\u2029"\\/',
    "中文 ✓ 😀",
    "a:1e-5",
    [1.0, {"b": 2, "a": [0.00001]}],
    {"é": 1, "e": 2, "z": 3, "É": 4, "😀": 5},
    None,
    True,
]


@pytest.mark.parametrize("value", AWKWARD_VALUES, ids=repr)
def test_the_canonical_form_is_exactly_the_standard_librarys(value):
    body = event(data={"x": value, "nested": {"y": value}})
    expected = json.dumps(
        {k: v for k, v in body.items() if k != "sig"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert canonical_json(body) == expected


@pytest.mark.parametrize("value", AWKWARD_VALUES, ids=repr)
def test_a_payload_reads_as_the_standard_library_reads_it(value):
    raw = json.dumps(event(data={"x": value}), ensure_ascii=False).encode()
    (parsed,) = parse_payload(raw)
    expected = json.loads(raw)
    assert parsed == expected
    assert json.dumps(parsed["data"]) == json.dumps(expected["data"])  # ints stay ints


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "\\ud800"}', b'{"a": 123456789012345678901234567890}', b'{"a": 1e400}'],
    ids=["lone surrogate", "long integer", "huge number"],
)
def test_what_a_fast_parser_refuses_is_read_as_before(raw):
    assert parse_payload(raw) == [json.loads(raw)]


@pytest.mark.parametrize(
    "data",
    [
        {"note": "x" * 5000},
        {"n": [9e15] * 80},  # sent as 9e15: the most a number grows when written again
        {"n": [9e15] * 300},
        {"s": "é" * 3000},
        {"k": {str(i): i for i in range(600)}},
        {"k": {str(i): i for i in range(800)}},
    ],
    ids=["long", "numbers-80", "numbers-300", "non-ascii", "keys-600", "keys-800"],
)
def test_the_size_of_data_is_judged_the_same_from_a_short_message(data):
    """'data' is at most 4096 characters of json.dumps. Knowing the length of the message it
    came in lets short messages skip writing it out: is the verdict always the same?"""
    body = event(data=data)
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    raw = raw.replace(b"9000000000000000.0", b"9e15")

    def verdict(**kw):
        try:
            check_event(json.loads(raw), NOW, **kw)
            return "ok"
        except Rejected as exc:
            return exc.reason

    expected = "invalid_field" if len(json.dumps(data, ensure_ascii=False)) > 4096 else "ok"
    assert verdict() == expected
    assert verdict(source_bytes=len(raw)) == expected
