"""The device protocol, in plain Python: payload parsing, event validation, signatures.

Everything a device sends is checked here before the service looks anything up: shape,
types, ranges, times, and the HMAC signature. Each failure names a stable ``reason`` code
and a message a device maker can act on. See devices/PROTOCOL.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

# The event vocabulary is the domain's; which kind of device may report what is also part of
# the protocol's own API (devices/PROTOCOL.md), so it is named here too.
from tracecore.vocabulary import ALLOWED_BY_KIND as ALLOWED_BY_KIND
from tracecore.vocabulary import EVENT_TYPES, PARCEL_EVENTS, UNIT_EVENTS, EventType

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_EVENTS_PER_MESSAGE = 500
#: Acks of one device's events handled in one batch go out together, this many a message.
MAX_ACKS_PER_MESSAGE = 500
MAX_CODES_PER_PARCEL = 500
MAX_DATA_BYTES = 4096


#: The keys of ``data`` that are stored, per event type (PROTOCOL.md). Anything else a device
#: sends (a consignee's name or phone, say) is dropped: histories must never carry personal
#: data, and neither must what is kept of a rejected event (devices/redaction.py).
STORED_DATA_KEYS = {
    EventType.SOLD: ("order_id", "price", "channel"),
    EventType.PACKED: ("consignee_region_code", "promised_by", "logistics_company_id"),
    EventType.IN_TRANSIT: ("handover_to",),
    EventType.DELIVERY_FAILED: ("reason",),
    EventType.SIGNED: ("signer",),
}


_WAYBILL = re.compile(r"[A-Z0-9]{8,32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REGION = re.compile(r"\d{6}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Rejected(Exception):
    """An event (or a whole message) that is not stored as a fact."""

    def __init__(self, reason: str, message: str, event_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.event_id = event_id


@dataclass(frozen=True)
class Ack:
    """The answer to one event, published on the device's acks topic."""

    event_id: str | None
    status: str  #: accepted | duplicate | rejected
    reason: str | None = None
    message: str | None = None

    def to_json(self) -> dict:
        # The event id as claimed, and a message quoting the event, may hold a lone surrogate
        # (JSON can escape one): written out, so that the answer can be sent as UTF-8.
        event_id = self.event_id
        if event_id is not None and not event_id.isascii():
            event_id = unicode_text(event_id)
        out: dict[str, Any] = {"event_id": event_id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
            out["message"] = unicode_text(self.message) if self.message else self.message
        return out


def unicode_text(text: str) -> str:
    """``text`` with any lone surrogate (``\\ud800``…, which JSON can escape but UTF-8
    cannot encode) written out as its escape."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass
class DeviceEvent:
    """A well-formed event, signature not yet checked (that needs the device's secret)."""

    event_id: str
    seq: int
    type: str
    time: datetime  #: aware, as the device reported it
    #: The same moment in UTC: compared and sorted without a call to utcoffset (two aware
    #: times with different tzinfo objects, as parsing makes them, cost several each).
    utc: datetime
    code: str | None = None  #: serial or Digital Link URI, unit events
    codes: list[str] = field(default_factory=list)  #: packed
    waybill: str | None = None
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None
    data: dict = field(default_factory=dict)
    sig: str = ""
    raw: dict = field(default_factory=dict, repr=False)


#: Built once: ``json.dumps`` with options builds a new encoder on every call, which cost as
#: much as the encoding itself on the ingest path.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(ensure_ascii=False)


#: Where orjson's output may differ from ``json.dumps``: a number below 1e-4 (orjson writes
#: 0.00001 and 1e-7 where Python writes 1e-05 and 1e-07). Also matches inside strings, which
#: only costs the slow path.
_UNLIKE_PYTHON = re.compile(rb"[:,\[]-?(?:0\.0000|[0-9.]+e-)")


def canonical_json(event: dict) -> bytes:
    """The signed form: keys sorted, no spaces, UTF-8, without ``sig``.

    Exactly ``json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    (PROTOCOL.md). orjson writes the same bytes in a fraction of the time, except for the
    cases it refuses (integers past 64 bits, lone surrogates) and small numbers written
    differently: those take the standard library's encoder."""
    body = event.copy()  # a C copy, cheaper than a comprehension that leaves "sig" out
    body.pop("sig", None)
    try:
        fast = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        fast = None
    # find, not "in": bytes.__contains__ first tries its argument as an integer, and makes
    # and clears a TypeError each time (costlier than the search)
    if fast is not None and (
        (fast.find(b"e-") < 0 and fast.find(b"0.0000") < 0) or not _UNLIKE_PYTHON.search(fast)
    ):
        return fast
    return _CANONICAL.encode(body).encode()


def signing_key(secret: str) -> hmac.HMAC:
    """A device secret made ready to sign many events: :func:`sign` copies it for each,
    instead of deriving the HMAC's inner and outer keys again (a fifth of the cost)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def sign(event: dict, secret: str | hmac.HMAC) -> str:
    """Hex HMAC-SHA256 of the canonical JSON, keyed with the device secret (or its
    :func:`signing_key`)."""
    if isinstance(secret, str):
        return hmac.new(secret.encode(), canonical_json(event), hashlib.sha256).hexdigest()
    mac = secret.copy()
    mac.update(canonical_json(event))
    return mac.hexdigest()


def verify(event: DeviceEvent, secret: str | hmac.HMAC) -> None:
    try:
        expected = sign(event.raw, secret)
    except UnicodeEncodeError:  # a lone surrogate: its canonical form has no UTF-8 bytes
        raise Rejected(
            "malformed",
            "the event holds text that is not Unicode (a lone surrogate)",
            event.event_id,
        ) from None
    if not hmac.compare_digest(expected, event.sig):
        raise Rejected("bad_signature", "the signature does not match the event", event.event_id)


def _no_constant(name: str):
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


#: A run of 19 digits: an integer orjson may read as a float (past 64 bits), unlike Python.
#: Found in ``raw.translate(_DIGITS_ONLY)`` (every digit made "0", every other byte a
#: space; with find, see canonical_json): the same answer as ``re.search(rb"[0-9]{19}", raw)``
#: in a sixth of the time (the regular expression cost ~8 µs a message, tried at every byte).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def _loads(raw: bytes) -> Any:
    """``json.loads`` with NaN and Infinity refused; raises :class:`Rejected` (malformed).

    orjson reads what the standard library reads into the same values, in a fraction of the
    time; whatever it refuses (and long integers, which it reads as floats) goes to the
    standard library's decoder, which decides and words the rejection."""
    if raw.translate(_DIGITS_ONLY).find(_LONG_RUN) < 0:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise Rejected("malformed", "the message is not UTF-8 JSON") from None
    except ValueError:
        raise Rejected("malformed", "NaN and Infinity are not JSON numbers") from None


def parse_payload(raw: bytes) -> list[dict]:
    """The events of one message: a single event object or ``{"events": [...]}``."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise Rejected("too_large", f"the message is over {MAX_PAYLOAD_BYTES} bytes")
    body = _loads(raw)
    if isinstance(body, dict) and "events" in body:
        events = body["events"]
        if not isinstance(events, list) or not events:
            raise Rejected("malformed", "'events' must be a non-empty array")
        if len(events) > MAX_EVENTS_PER_MESSAGE:
            raise Rejected("too_many", f"at most {MAX_EVENTS_PER_MESSAGE} events per message")
        return events
    if isinstance(body, dict):
        return [body]
    raise Rejected("malformed", 'the message must be an event object or {"events": [...]}')


def _require(event: dict, key: str, typ: type, event_id: str | None) -> Any:
    if event.get(key) is None:
        raise Rejected("missing_field", f"'{key}' is required", event_id)
    value = event[key]
    if isinstance(value, bool) or not isinstance(value, typ):
        raise Rejected("invalid_field", f"'{key}' must be a {typ.__name__}", event_id)
    return value


def _time(value: str, key: str, event_id: str | None) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("invalid_field", f"'{key}' is not an RFC 3339 time", event_id) from None
    if parsed.tzinfo is None:
        raise Rejected("invalid_field", f"'{key}' needs a UTC offset (RFC 3339)", event_id)
    try:  # 0001-01-01T00:00:00+00:01 parses, but has no UTC moment: it would overflow later
        parsed.astimezone(UTC)
    except OverflowError:
        raise Rejected("invalid_field", f"'{key}' is out of range", event_id) from None
    return parsed


def _number(
    event: dict, key: str, low: float, high: float, event_id: str | None, required: bool = False
) -> float | None:
    if event.get(key) is None:
        if required:
            raise Rejected("missing_field", f"'{key}' is required", event_id)
        return None
    value = event[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("invalid_field", f"'{key}' must be a number", event_id)
    if not low <= value <= high:
        reason = "bad_coordinates" if key in ("lat", "lon") else "invalid_field"
        raise Rejected(reason, f"'{key}' must be between {low} and {high}", event_id)
    return float(value)


def _waybill(value: Any, event_id: str | None) -> str:
    if not isinstance(value, str) or not _WAYBILL.fullmatch(value.strip().upper()):
        raise Rejected("invalid_field", "'waybill' must be 8–32 letters and digits", event_id)
    return value.strip().upper()


#: How many times longer json.dumps(x) can be than the JSON text x was read from (at most
#: 4.5, a number like 9e15 in an array); see check_event.
_MAX_EXPANSION = 6


def check_event(
    event: Any,
    now: datetime,
    *,
    max_skew: timedelta = timedelta(minutes=5),
    max_age: timedelta = timedelta(days=30),
    source_bytes: int | None = None,
) -> DeviceEvent:
    """Validate one event's shape, types, ranges and times; raise :class:`Rejected`.

    ``source_bytes``: the length of the JSON text the event was read from, if known."""
    if not isinstance(event, dict):
        raise Rejected("malformed", "each event must be a JSON object")
    # Each field is read with a plain get and its exact type tested inline (the values of a
    # JSON document are exactly str, int, float...): the usual event makes no call to
    # _require or _number, which decide (and word) anything else, in the same order.
    raw_id = event.get("event_id")
    event_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
    if type(raw_id) is not str:
        raw_id = _require(event, "event_id", str, None)
    if not _UUID.fullmatch(raw_id):  # the usual form, else what uuid.UUID reads
        try:
            uuid.UUID(raw_id)
        except ValueError:
            raise Rejected("invalid_field", "'event_id' must be a UUID", event_id) from None
    seq = event.get("seq")
    if type(seq) is not int:
        seq = _require(event, "seq", int, event_id)
    if seq < 1 or seq > 2**53:
        raise Rejected("invalid_field", "'seq' must be a positive integer", event_id)
    kind = event.get("type")
    if type(kind) is not str:
        kind = _require(event, "type", str, event_id)
    if kind not in EVENT_TYPES:
        raise Rejected("invalid_field", f"unknown event type {kind[:32]!r}", event_id)
    sig = event.get("sig")
    if type(sig) is not str:
        sig = _require(event, "sig", str, event_id)
    if not _HEX64.fullmatch(sig):
        raise Rejected("bad_signature", "'sig' must be 64 lowercase hex digits", event_id)
    stamp = event.get("time")
    if type(stamp) is not str:
        stamp = _require(event, "time", str, event_id)
    when = _time(stamp, "time", event_id)
    utc = when.astimezone(UTC)
    if utc > now + max_skew:
        raise Rejected("future_time", "'time' is in the future; check the device clock", event_id)
    if utc < now - max_age:
        raise Rejected("too_old", f"'time' is more than {max_age.days} days ago", event_id)
    data = {} if event.get("data") is None else event["data"]
    if not isinstance(data, dict):
        raise Rejected("invalid_field", "'data' must be an object", event_id)
    # In characters of json.dumps. That text is at most 5 times as long as the JSON it was
    # read from (1e15 is written 1000000000000000.0; separators gain a space), so short
    # messages need not be written out to be measured.
    if (
        data
        and (source_bytes is None or source_bytes * _MAX_EXPANSION > MAX_DATA_BYTES)
        and len(_COMPACT.encode(data)) > MAX_DATA_BYTES
    ):
        raise Rejected("invalid_field", f"'data' is over {MAX_DATA_BYTES} bytes", event_id)
    lat, lon, accuracy = event.get("lat"), event.get("lon"), event.get("accuracy_m")
    if lat is not None and not (type(lat) is float and -90 <= lat <= 90):
        lat = _number(event, "lat", -90, 90, event_id)
    if lon is not None and not (type(lon) is float and -180 <= lon <= 180):
        lon = _number(event, "lon", -180, 180, event_id)
    if accuracy is not None and not (type(accuracy) is float and 0 <= accuracy <= 100_000):
        accuracy = _number(event, "accuracy_m", 0, 100_000, event_id)
    out = DeviceEvent(
        event_id=raw_id.lower(),
        seq=seq,
        type=kind,
        time=when,
        utc=utc,
        sig=sig,
        raw=event,
        lat=lat,
        lon=lon,
        accuracy_m=accuracy,
        data=data,
    )
    if (out.lat is None) != (out.lon is None):
        raise Rejected("bad_coordinates", "'lat' and 'lon' come together", event_id)
    _check_by_type(out, event, event_id)
    return out


def _check_by_type(out: DeviceEvent, event: dict, event_id: str | None) -> None:
    if out.type in UNIT_EVENTS:
        code = event.get("code")
        if type(code) is not str:
            code = _require(event, "code", str, event_id)
        if not 1 <= len(code) <= 512:
            raise Rejected(
                "invalid_field", "'code' must be a serial or a Digital Link URI", event_id
            )
        out.code = code.strip()
    if out.type in PARCEL_EVENTS or out.type == EventType.PACKED:
        waybill = event.get("waybill")
        if type(waybill) is not str:
            waybill = _require(event, "waybill", str, event_id)
        out.waybill = _waybill(waybill, event_id)
    if out.type == EventType.SOLD:
        if not isinstance(out.data.get("order_id"), str) or not out.data["order_id"]:
            raise Rejected("missing_field", "'data.order_id' is required for sold", event_id)
        price = out.data.get("price")
        if price is not None and (
            isinstance(price, bool) or not isinstance(price, int | float) or price < 0
        ):
            raise Rejected("invalid_field", "'data.price' must be a number ≥ 0", event_id)
    elif out.type == EventType.PACKED:
        codes = _require(event, "codes", list, event_id)
        if not 1 <= len(codes) <= MAX_CODES_PER_PARCEL or not all(
            isinstance(c, str) and 1 <= len(c) <= 512 for c in codes
        ):
            raise Rejected(
                "invalid_field", f"'codes' must list 1–{MAX_CODES_PER_PARCEL} codes", event_id
            )
        out.codes = [c.strip() for c in codes]
        consignee = out.data.get("consignee")
        if not isinstance(consignee, dict):
            raise Rejected(
                "missing_field", "'data.consignee' {lat, lon} is required for packed", event_id
            )
        _number(consignee, "lat", -90, 90, event_id, required=True)
        _number(consignee, "lon", -180, 180, event_id, required=True)
        region = out.data.get("consignee_region_code")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise Rejected(
                "missing_field", "'data.consignee_region_code' (6 digits) is required", event_id
            )
        company = out.data.get("logistics_company_id")
        if isinstance(company, bool) or not isinstance(company, int):
            raise Rejected("missing_field", "'data.logistics_company_id' is required", event_id)
        if out.data.get("promised_by") is not None:
            promised = out.data["promised_by"]
            if not isinstance(promised, str):
                raise Rejected("invalid_field", "'data.promised_by' must be RFC 3339", event_id)
            _time(promised, "data.promised_by", event_id)
    elif out.type == EventType.IN_TRANSIT and "handover_to" in out.data:
        # A hand-over to another logistics company (中转交接): its couriers may report on
        # the parcel from now on (tracecore.lifecycle.unentrusted).
        company = out.data["handover_to"]
        if isinstance(company, bool) or not isinstance(company, int) or company < 1:
            raise Rejected(
                "invalid_field", "'data.handover_to' must be a logistics company id", event_id
            )
    elif out.type == EventType.SIGNED and out.data.get("signer") not in ("self", "proxy", "locker"):
        raise Rejected("missing_field", "'data.signer' must be self, proxy or locker", event_id)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def derive_secret(master_key: str, device_id: str, version: int) -> str:
    """A device's secret: HMAC(master key, "device/{id}/{version}"), hex.

    Derived rather than stored, so the database alone lets nobody sign events; raising the
    version rotates one device's secret. (Changing the master key rotates every device's.)
    """
    message = f"device/{device_id}/{version}".encode()
    return hmac.new(master_key.encode(), message, hashlib.sha256).hexdigest()


def topic_events(device_id: str) -> str:
    return f"trace/v1/devices/{device_id}/events"


def topic_acks(device_id: str) -> str:
    return f"trace/v1/devices/{device_id}/acks"


def topic_commands(device_id: str) -> str:
    return f"trace/v1/devices/{device_id}/commands"


#: The ingest workers' shared subscription: several workers split the stream.
SHARED_SUBSCRIPTION = "$share/trace-ingest/trace/v1/devices/+/events"


def device_id_from_topic(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["trace", "v1", "devices"] and parts[4] == "events":
        return parts[3]
    return None
