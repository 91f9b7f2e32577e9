"""What is kept of a rejected event: the protocol's fields, never a person's data.

A rejected event is kept for regulators (the service's ``rejected_events``), but it is not a
fact, and whoever sent it may have put anything in it. So it is kept as an accepted event
would be: the fields the protocol defines, and of ``data`` only the keys an accepted event
stores (:data:`devices.protocol.STORED_DATA_KEYS`). The consignee point, which an accepted
packing keeps on its parcel, is kept to two decimals (about a kilometre): enough to see where
an event claimed to go, not a home. A message (or an event) that cannot be read as one keeps
only its first characters, digits and non-ASCII characters masked.

Also here: the subject a rejected event names (its serial, its waybill), kept in indexed
columns so that the pages find a unit's or a parcel's rejected events without reading
payloads.

Plain Python, like the protocol: every function takes any value and never raises.
"""

from __future__ import annotations

import json
from typing import Any

from devices.protocol import _WAYBILL, STORED_DATA_KEYS, EventType, Rejected, parse_payload
from tracecore.errors import ValidationError
from tracecore.gs1 import parse_digital_link, validate_serial

#: The top-level fields of an event (PROTOCOL.md); any other key is dropped.
EVENT_FIELDS = (
    "event_id",
    "seq",
    "type",
    "time",
    "code",
    "codes",
    "waybill",
    "lat",
    "lon",
    "accuracy_m",
    "data",
    "sig",
)
#: Characters kept of a text field (a Digital Link URI is well under this).
TEXT_KEEP = 256
#: Codes kept of a packing's list (the rest are counted).
CODES_KEEP = 20
#: Events kept of a message rejected whole.
EVENTS_KEEP = 20
#: Characters kept of what cannot be read as an event, masked.
START_KEEP = 80

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def kept_event(raw: Any) -> str:
    """What is kept of one rejected event, as JSON text (see the module's docstring)."""
    if not isinstance(raw, dict):
        return masked_start(_json(raw))
    kept: dict[str, Any] = {}
    for key in EVENT_FIELDS:
        if key not in raw:
            continue
        if key == "data":
            kept["data"] = _kept_data(raw.get("type"), raw["data"])
        elif key == "codes" and isinstance(raw["codes"], list):
            codes = raw["codes"]
            kept["codes"] = [_scalar(c) for c in codes[:CODES_KEEP]]
            if len(codes) > CODES_KEEP:
                kept["codes_total"] = len(codes)
        else:
            kept[key] = _scalar(raw[key])
    return clean_text(_json(kept))


def kept_message(payload: bytes) -> str:
    """What is kept of a message rejected whole: its first events as :func:`kept_event`
    keeps them if it can be read (a message the service failed on), else its masked start
    (unreadable, too large, too many events)."""
    try:
        events = parse_payload(payload)
    except Rejected:
        return masked_start(payload[: START_KEEP * 4].decode("utf-8", "replace"))
    kept = ",".join(kept_event(e) for e in events[:EVENTS_KEEP])
    return f'{{"events":[{kept}]}}'


def masked_start(text: str) -> str:
    """The first :data:`START_KEEP` characters, each digit made ``#`` and each non-ASCII
    character ``*``: the shape of what was sent, without a phone number or a name."""
    start = text[:START_KEEP]
    masked = "".join("#" if c.isdigit() else c if " " <= c <= "~" else "*" for c in start)
    return masked + ("…" if len(text) > START_KEEP else "")


def clean_text(text: str) -> str:
    """``text`` as a database keeps it: no NUL character (PostgreSQL refuses it in text) and
    no lone surrogate (JSON can escape one; UTF-8 cannot encode it), each written out."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def subject(raw: Any) -> tuple[str | None, str | None]:
    """The (serial, waybill) a rejected event names, where it names a valid one."""
    if not isinstance(raw, dict):
        return None, None
    serial = None
    code = raw.get("code")
    if isinstance(code, str) and 0 < len(code) <= 512:
        code = code.strip()
        try:
            serial = (
                parse_digital_link(code, field="code").serial
                if "/" in code
                else validate_serial(code, field="code")
            )
        except ValidationError:
            serial = None
    waybill = raw.get("waybill")
    if isinstance(waybill, str) and len(waybill) <= 64:
        waybill = waybill.strip().upper()
        if not _WAYBILL.fullmatch(waybill):
            waybill = None
    else:
        waybill = None
    return serial, waybill


def _kept_data(kind: Any, data: Any) -> Any:
    if not isinstance(data, dict):
        return _scalar(data)
    keys = STORED_DATA_KEYS.get(kind, ()) if isinstance(kind, str) else ()
    kept = {k: _scalar(data[k]) for k in keys if k in data}
    consignee = data.get("consignee")
    if kind == EventType.PACKED and isinstance(consignee, dict):
        kept["consignee"] = {k: _rounded(consignee[k]) for k in ("lat", "lon") if k in consignee}
    return kept


def _rounded(value: Any) -> Any:
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return round(value, 2)
    return _scalar(value)


def _scalar(value: Any) -> Any:
    """A field's value as kept: text cut, numbers as they are, anything nested replaced by
    the name of its kind (it is not the protocol's, and may carry anything)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, str):
        return value[:TEXT_KEEP]
    return "<object>" if isinstance(value, dict) else "<array>" if isinstance(value, list) else "?"


def _json(value: Any) -> str:
    try:
        return _COMPACT.encode(value)
    except (TypeError, ValueError, RecursionError):
        return repr(type(value))
