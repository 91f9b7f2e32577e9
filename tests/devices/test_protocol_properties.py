"""Ingestion is total (issue 18): whatever a device, or anyone, sends, the protocol's parser
answers a value or a :class:`~devices.protocol.Rejected` with a documented reason, and never
raises anything else; and what is kept of a rejected event never fails to be written.

Property tests (hypothesis): arbitrary bytes, arbitrary JSON values, and events with the
protocol's fields holding arbitrary values (times near the ends of the calendar, offsets
that push them past it, numbers past 64 bits, strings with NUL and lone surrogates)."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import protocol, redaction
from devices.protocol import Ack, DeviceEvent, Rejected

#: The reasons PROTOCOL.md documents for what the parser itself decides.
REASONS = {
    "malformed",
    "too_large",
    "too_many",
    "missing_field",
    "invalid_field",
    "bad_coordinates",
    "future_time",
    "too_old",
    "bad_signature",
}
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SECRET = "s" * 64
KEY = protocol.signing_key(SECRET)

# No example database: runs leave nothing behind in the checkout.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

texts = st.text(st.characters(exclude_categories=()), max_size=40)  # NUL, lone surrogates too
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63, 1e308, -1e308, 5e-324, 1e-7])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def times(draw) -> str:
    """RFC 3339-looking times, mostly valid, many at the ends of the calendar, with offsets
    that push them past it, and some garbage."""
    edges = [datetime.min, datetime.max.replace(microsecond=0), datetime(1, 1, 1, 3)]
    moment = draw(
        st.sampled_from(edges)
        | st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)).map(
            lambda d: d.replace(microsecond=0)
        )
    )
    minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    sign = "+" if minutes >= 0 else "-"
    offset = draw(
        st.sampled_from(["Z", ""])
        | st.just(f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
    )
    return draw(st.just(moment.isoformat() + offset) | texts)


@st.composite
def events(draw) -> dict:
    """An event of any type with every field it needs, plausible values (its time from
    :func:`times`), extra keys (personal data among them), signed with the test's secret;
    then up to two fields replaced by arbitrary values and up to one left out, sometimes
    signed again (so that the checks past the signature's shape are reached)."""
    kind = draw(st.sampled_from(sorted(protocol.EVENT_TYPES)))
    event: dict = {
        "event_id": draw(st.uuids().map(str)),
        "seq": draw(st.integers(1, 2**53)),
        "type": kind,
        "time": draw(times()),
        "lat": draw(st.floats(-90, 90)),
        "lon": draw(st.floats(-180, 180)),
        "extra": draw(texts),
    }
    if kind in protocol.UNIT_EVENTS:
        event["code"] = draw(
            st.sampled_from(["AAAAAAAAAAAAAAAA", "https://id.example.cn/01/09506000134352/21/X"])
            | texts
        )
    else:
        event["waybill"] = draw(st.sampled_from(["SF1234567890", "sf 1234 5678"]) | texts)
    if kind == "packed":
        event["codes"] = draw(st.lists(texts, min_size=1, max_size=3))
        event["data"] = {
            "consignee": {
                "lat": draw(numbers),
                "lon": draw(numbers),
                "name": draw(texts),
                "phone": draw(texts),
            },
            "consignee_region_code": draw(st.sampled_from(["320411", "32041"])),
            "logistics_company_id": draw(st.integers(-5, 2**40)),
            "promised_by": draw(times()),
        }
    elif kind == "sold":
        event["data"] = {"order_id": draw(texts), "price": draw(numbers), "buyer_phone": "x"}
    elif kind == "signed":
        event["data"] = {"signer": draw(st.sampled_from(["self", "proxy", "locker", "x"]))}
    try:
        event["sig"] = protocol.sign(event, SECRET)
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form, so no device could sign it: a signature that
        # cannot match (the event must still be rejected, not raise).
        event["sig"] = "0" * 64
    for name in draw(st.sets(st.sampled_from(sorted(event)), max_size=2)):
        event[name] = draw(json_values)
    for name in draw(st.sets(st.sampled_from(sorted(event)), max_size=1)):
        del event[name]
    if draw(st.booleans()):
        # (not when a value cannot be written as UTF-8 JSON: a lone surrogate)
        with contextlib.suppress(TypeError, ValueError):
            event["sig"] = protocol.sign(event, SECRET)
    return event


def _checked(raw) -> DeviceEvent | None:
    """check_event and verify, as the ingest run calls them: a value, or a documented
    rejection (anything else fails the test)."""
    try:
        event = protocol.check_event(raw, NOW, source_bytes=None)
        protocol.verify(event, KEY)
        return event
    except Rejected as exc:
        assert exc.reason in REASONS, exc.reason
        assert isinstance(exc.message, str) and exc.message
        # its ack can be sent, as UTF-8 JSON (HTTP and MQTT alike)
        ack = Ack(exc.event_id, "rejected", exc.reason, exc.message).to_json()
        json.dumps(ack, ensure_ascii=False).encode("utf-8")
        return None


def _writable(text: str) -> None:
    """What is kept can be written to either database: UTF-8, no NUL."""
    assert isinstance(text, str)
    text.encode("utf-8")
    assert "\x00" not in text


@PROPERTY
@given(st.binary(max_size=2000))
def test_any_bytes_are_events_or_a_rejection(payload):
    """Do arbitrary bytes parse into events or raise Rejected, never anything else?"""
    try:
        found = protocol.parse_payload(payload)
    except Rejected as exc:
        assert exc.reason in REASONS
        _writable(redaction.kept_message(payload))
        return
    assert isinstance(found, list) and found
    for raw in found:
        _checked(raw)


@PROPERTY
@given(json_values)
def test_any_json_value_as_a_message_is_events_or_a_rejection(value):
    """Does any JSON value, as a message or as one event, parse or get rejected?"""
    try:
        payload = json.dumps(value).encode()
    except ValueError:
        return
    try:
        found = protocol.parse_payload(payload)
    except Rejected as exc:
        assert exc.reason in REASONS
        return
    for raw in found:
        _checked(raw)
    _checked(value)


@PROPERTY
@given(st.lists(events(), min_size=1, max_size=4))
def test_any_event_is_checked_or_rejected_and_its_neighbours_unaffected(batch):
    """Is every event, whatever its fields hold, accepted or rejected with a documented
    reason, and is a well-formed signed neighbour in the same message still accepted?"""
    good = {
        "event_id": "0b6f8c2e-8d0a-4b7e-9c59-2f1f0f8f6a11",
        "seq": 7,
        "type": "shelved",
        "time": (NOW - timedelta(hours=1)).isoformat(),
        "code": "AAAAAAAAAAAAAAAA",
    }
    good["sig"] = protocol.sign(good, SECRET)
    try:
        payload = json.dumps({"events": [*batch, good]}).encode()
    except (ValueError, UnicodeEncodeError):
        return
    try:
        found = protocol.parse_payload(payload)
    except Rejected as exc:  # only for its size
        assert exc.reason == "too_large"
        return
    outcomes = [_checked(raw) for raw in found]
    assert outcomes[-1] is not None and outcomes[-1].event_id == good["event_id"]


@PROPERTY
@given(events() | json_values)
def test_what_is_kept_of_a_rejected_event_is_writable_and_without_personal_data(raw):
    """Is what a rejected event keeps always writable text, its subject valid or absent,
    without the consignee's name or phone or any key outside the protocol's?"""
    kept = redaction.kept_event(raw)
    _writable(kept)
    serial, waybill = redaction.subject(raw)
    assert serial is None or (isinstance(serial, str) and 1 <= len(serial) <= 20)
    assert waybill is None or re.fullmatch(r"[A-Z0-9]{8,32}", waybill)
    if not isinstance(raw, dict):
        return
    value = json.loads(kept)
    assert set(value) <= {*redaction.EVENT_FIELDS, "codes_total"}
    data = value.get("data")
    if isinstance(data, dict):
        consignee = data.get("consignee", {})
        assert set(consignee) <= {"lat", "lon"}
        assert "buyer_phone" not in data
