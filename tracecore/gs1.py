"""GS1 identifiers: GTIN, batch/lot (AI 10), serial number (AI 21) and GS1 Digital Link URIs.

A traced item is identified by the triple GTIN + lot + serial. This module checks each
part against the GS1 General Specifications and renders/reads the two external forms:
the human-readable element string ``(01)…(10)…(21)…`` and the GS1 Digital Link URI
``https://host/01/…/10/…/21/…`` that goes into the QR code on the pack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from tracecore.errors import ValidationError

__all__ = [
    "GS1_CSET82",
    "DigitalLink",
    "digital_link_path",
    "digital_link_uri",
    "element_string",
    "encode_decoded_link_path",
    "gtin_check_digit",
    "is_digital_link",
    "is_unit_link_path",
    "normalize_gtin",
    "parse_digital_link",
    "parse_element_string",
    "validate_lot",
    "validate_serial",
]

_DIGITS = frozenset("0123456789")

#: GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1).
GS1_CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)

_GTIN_LENGTHS = (8, 12, 13, 14)
_MAX_X_LENGTH = 20  # AI 10 and AI 21 are both X..20

# A bare host name (ASCII / punycode labels) with an optional port; no scheme, path or user.
_HOST_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(?::[0-9]{1,5})?"
)
# A '%' that is not followed by two hex digits: not a valid percent-encoded octet.
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

_PATH_SHAPE = "/01/{gtin}[/10/{lot}][/21/{serial}]"
_PATH_AIS = ("01", "10", "21")


def _type_check(value: object, field: str, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be {what}, got {type(value).__name__}", field=field)
    return value


def _first_non_digit(value: str) -> tuple[int, str] | None:
    if value.isascii() and value.isdigit():  # the usual case, without a step per character
        return None
    for index, char in enumerate(value):
        if char not in _DIGITS:
            return index, char
    return None


def gtin_check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit for ``body`` (the digits before the check digit).

    Weights 3 and 1 alternate starting with 3 at the rightmost digit, so the same function
    serves GTIN-8/12/13/14 (and GLN, SSCC) without knowing the length.
    """
    field = "gtin"
    _type_check(body, field, "a string of digits")
    if not body:
        raise ValidationError("cannot compute a GS1 check digit of an empty string", field=field)
    bad = _first_non_digit(body)
    if bad is not None:
        index, char = bad
        raise ValidationError(
            f"{field} contains {char!r} at position {index + 1}, which is not an ASCII digit 0-9",
            field=field,
        )
    from_right = body[::-1]
    total = 3 * sum(map(int, from_right[0::2])) + sum(map(int, from_right[1::2]))
    return (10 - total % 10) % 10


def normalize_gtin(value: str, field: str = "gtin") -> str:
    """Validate a GTIN-8/12/13/14 and return it as a 14-digit GTIN.

    Surrounding whitespace is stripped. Left-padding with zeros does not change the check
    digit, so every GTIN has exactly one GTIN-14 form, which is what we store and compare.
    """
    _type_check(value, field, "a string of digits")
    gtin = value.strip()
    if not gtin:
        raise ValidationError(f"{field} is empty; a GTIN has 8, 12, 13 or 14 digits", field=field)
    bad = _first_non_digit(gtin)
    if bad is not None:
        index, char = bad
        raise ValidationError(
            f"{field} contains {char!r} at position {index + 1}; "
            "a GTIN consists of ASCII digits 0-9 only",
            field=field,
        )
    if len(gtin) not in _GTIN_LENGTHS:
        raise ValidationError(
            f"{field} has {len(gtin)} digits; a GTIN has 8, 12, 13 or 14 digits", field=field
        )
    if set(gtin) == {"0"}:
        raise ValidationError(f"{field} is all zeros, which is not a GTIN", field=field)
    expected = gtin_check_digit(gtin[:-1])
    actual = int(gtin[-1])
    if actual != expected:
        raise ValidationError(
            f"GTIN check digit is {actual} but should be {expected}",
            field=field,
            details={"expected_check_digit": expected, "actual_check_digit": actual},
        )
    return gtin.zfill(14)


def _validate_cset82(value: str, field: str, ai: str) -> str:
    _type_check(value, field, "a string")
    if not value:
        raise ValidationError(
            f"{field} is empty; GS1 AI {ai} needs 1 to {_MAX_X_LENGTH} characters", field=field
        )
    if len(value) > _MAX_X_LENGTH:
        raise ValidationError(
            f"{field} is {len(value)} characters long; GS1 AI {ai} allows at most {_MAX_X_LENGTH}",
            field=field,
        )
    if GS1_CSET82.issuperset(value):  # the usual case, without a step per character
        return value
    for index, char in enumerate(value):
        if char not in GS1_CSET82:
            raise ValidationError(
                f"{field} contains {char!r} at position {index + 1}, which is not in the "
                f"GS1 AI {ai} character set (digits, A-Z, a-z and !\"%&'()*+,-./:;<=>?_)",
                field=field,
            )
    return value


def validate_lot(value: str, field: str = "lot") -> str:
    """Check a batch/lot number (GS1 AI 10): 1-20 characters of GS1 character set 82.

    Returned unchanged: lots are case-sensitive and spaces are not allowed, so nothing is
    stripped or folded.
    """
    return _validate_cset82(value, field, "10")


def validate_serial(value: str, field: str = "serial") -> str:
    """Check a serial number (GS1 AI 21): 1-20 characters of GS1 character set 82.

    Returned unchanged, for the same reasons as :func:`validate_lot`.
    """
    return _validate_cset82(value, field, "21")


def element_string(gtin14: str, lot: str | None, serial: str | None) -> str:
    """Render the human-readable GS1 element string ``(01)<gtin14>(10)<lot>(21)<serial>``.

    ``gtin14`` may be any valid GTIN; it is normalised to 14 digits. A ``None`` lot or serial
    is left out. This is the text printed under a barcode, meant for people: a lot or
    serial containing parentheses makes it ambiguous to naive parsers, so machines should
    exchange the Digital Link URI instead.
    """
    gtin = normalize_gtin(gtin14)
    parts = [f"(01){gtin}"]
    if lot is not None:
        parts.append(f"(10){validate_lot(lot)}")
    if serial is not None:
        parts.append(f"(21){validate_serial(serial)}")
    return "".join(parts)


def _encode_segment(value: str) -> str:
    # GS1 Digital Link: every character outside the URI "unreserved" set
    # (A-Z a-z 0-9 - . _ ~) is percent-encoded; quote() with no safe characters does that.
    return quote(value, safe="")


def _validate_host(host: str) -> str:
    field = "host"
    _type_check(host, field, "a string")
    candidate = host.strip().lower()
    if not candidate:
        raise ValidationError(
            "host is empty; give a host name such as 'id.example.com'", field=field
        )
    if "://" in candidate:
        raise ValidationError(
            f"host must be a bare host name such as 'id.example.com', without a scheme; "
            f"got {host!r}",
            field=field,
        )
    if not _HOST_RE.fullmatch(candidate):
        raise ValidationError(
            f"host {host!r} is not a host name: use letters, digits, '-' and '.' (punycode for "
            "internationalised names) and optionally ':port', with no path, query or user",
            field=field,
        )
    return candidate


def digital_link_uri(
    host: str, gtin14: str, lot: str | None, serial: str | None, *, scheme: str = "https"
) -> str:
    """Build the GS1 Digital Link URI ``https://{host}/01/{gtin14}/10/{lot}/21/{serial}``.

    The GTIN is normalised to 14 digits (the canonical form in GS1 Digital Link). Lot and
    serial are percent-encoded: AI 10/21 values may contain '/', '%', '&', '?' etc., which
    would otherwise change the meaning of the URI. A ``None`` lot or serial is left out.
    """
    clean_host = _validate_host(host)
    path = digital_link_path(gtin14, lot, serial)
    if scheme not in ("https", "http"):
        raise ValueError("scheme must be https or http")
    return f"{scheme}://{clean_host}{path}"


def digital_link_path(gtin14: str, lot: str | None, serial: str | None) -> str:
    """The path of :func:`digital_link_uri`: ``/01/{gtin14}[/10/{lot}][/21/{serial}]``."""
    path = f"/01/{normalize_gtin(gtin14)}"
    if lot is not None:
        path += f"/10/{_encode_segment(validate_lot(lot))}"
    if serial is not None:
        path += f"/21/{_encode_segment(validate_serial(serial))}"
    return path


@dataclass(frozen=True)
class DigitalLink:
    """The identifiers carried in the path of a GS1 Digital Link URI."""

    gtin14: str
    lot: str | None = None
    serial: str | None = None


def _decode_segment(raw: str, ai: str, field: str) -> str:
    match = _BAD_PERCENT_RE.search(raw)
    if match is not None:
        raise ValidationError(
            f"{field}: the value of AI {ai} ({raw!r}) has a '%' at position "
            f"{match.start() + 1} that is not followed by two hex digits; "
            "write '%' itself as '%25'",
            field=field,
        )
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError(
            f"{field}: the value of AI {ai} ({raw!r}) is not valid UTF-8 after percent-decoding",
            field=field,
        ) from None


def _extract_path(text: str, field: str) -> str:
    if text.startswith("/"):
        return text.split("#", 1)[0].split("?", 1)[0]
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValidationError(f"{field} is not a valid URI: {exc}", field=field) from None
    if parts.scheme.lower() not in ("https", "http"):
        raise ValidationError(
            f"{field} must be an https URI such as 'https://id.example.com{_PATH_SHAPE}' or a "
            f"path starting with '/01/'; got {text!r}",
            field=field,
        )
    if not parts.hostname:
        raise ValidationError(f"{field} has no host name: {text!r}", field=field)
    return parts.path


#: A Digital Link path after a server has percent-decoded it: a '/' in a value can no longer
#: be told from the path's own, so the values are read by the path's shape (AI 22, 10, 21 in
#: that order; a serial never holds a '/').
_DECODED_LINK_RE = re.compile(r"/01/([^/]+)(?:/22/(.+?))?(?:/10/(.+?))?(?:/21/([^/]+))?")


def encode_decoded_link_path(path: str) -> str:
    """A request path as the client sent it (percent-encoded), from the percent-decoded path
    of a server that gives no raw URI (WSGI's ``PATH_INFO``; gunicorn's ``RAW_URI`` and
    uWSGI's ``REQUEST_URI`` carry the raw one). In a Digital Link path a '/' inside a value
    is read by the path's shape: ``/01/G/10/AB/12/21/S`` is lot ``AB/12``, serial ``S``. The
    one reading this cannot tell apart: a lot that itself holds ``/21/``, before a serial.
    Any other path is encoded as it stands (a '%' as ``%25``, so nothing is decoded twice)."""
    if _UNIT_PATH_RE.fullmatch(path):  # nothing in it was or needs to be encoded
        return path
    found = _DECODED_LINK_RE.fullmatch(path)
    if found is None:
        return quote(path, safe="/")
    parts = ["/01/" + _encode_segment(found[1])]
    for ai, value in (("22", found[2]), ("10", found[3]), ("21", found[4])):
        if value is not None:
            parts.append(f"/{ai}/{_encode_segment(value)}")
    return "".join(parts)


#: The path of every issued unit's QR code, when it has nothing to decode: the fast way.
_UNIT_PATH_RE = re.compile(r"/01/([0-9]{14})/10/([^/%?#\s]+)/21/([^/%?#\s]+)")


def parse_digital_link(uri_or_path: str, *, field: str = "uri") -> DigitalLink:
    """Read GTIN, lot and serial from a GS1 Digital Link URI or its path.

    Accepts ``https://host/01/{gtin}[/10/{lot}][/21/{serial}]`` (http too, as the standard
    allows both) or the bare path. The GTIN may be 8/12/13/14 digits and comes back as
    GTIN-14; lot and serial are percent-decoded and validated. The query string and
    fragment are ignored. Anything else in the path (a path prefix, other AIs such as 22,
    repeated or out-of-order AIs, empty segments) is rejected rather than guessed at.
    """
    unit = _UNIT_PATH_RE.fullmatch(uri_or_path) if type(uri_or_path) is str else None
    if unit is not None:  # a scanned unit's own path: the same checks, without the parsing
        gtin, lot, serial = unit.groups()
        return DigitalLink(
            gtin14=_check_part(field, "GTIN (AI 01)", normalize_gtin, gtin),
            lot=_check_part(field, "lot (AI 10)", validate_lot, lot),
            serial=_check_part(field, "serial (AI 21)", validate_serial, serial),
        )
    return _parse_any_link(uri_or_path, field)


def is_unit_link_path(path: str) -> bool:
    """Whether ``path`` has the shape of an issued unit's own link, ``/01/{14 digits}/10/
    {lot}/21/{serial}`` with nothing to decode: a cheap test, not a check (the check digit
    and the character sets are :func:`parse_digital_link`'s)."""
    return _UNIT_PATH_RE.fullmatch(path) is not None


def is_digital_link(uri_or_path: str) -> bool:
    """Whether :func:`parse_digital_link` reads ``uri_or_path``."""
    try:
        parse_digital_link(uri_or_path)
    except ValidationError:
        return False
    return True


def _parse_any_link(uri_or_path: str, field: str) -> DigitalLink:
    _type_check(uri_or_path, field, "a string")
    text = uri_or_path.strip()
    if not text:
        raise ValidationError(f"{field} is empty", field=field)
    path = _extract_path(text, field)
    if not path.startswith("/01/"):
        raise ValidationError(
            f"{field} path must have the form {_PATH_SHAPE}, starting with '/01/'; got {path!r}",
            field=field,
        )
    segments = path[1:].split("/")
    if "" in segments:
        raise ValidationError(
            f"{field} path {path!r} has an empty segment (a doubled or trailing '/')",
            field=field,
        )
    if len(segments) % 2 != 0:
        raise ValidationError(
            f"{field} path {path!r} has an AI without a value; expected {_PATH_SHAPE}",
            field=field,
        )

    values: dict[str, str] = {}
    for key, raw in zip(segments[0::2], segments[1::2], strict=True):
        if key not in _PATH_AIS:
            raise ValidationError(
                f"{field} path contains AI {key!r}, which is not supported here; "
                f"expected {_PATH_SHAPE}",
                field=field,
            )
        if key in values:
            raise ValidationError(f"{field} path contains AI {key} twice", field=field)
        if values and _PATH_AIS.index(key) < _PATH_AIS.index(list(values)[-1]):
            raise ValidationError(
                f"{field} path has AI {key} after AI {list(values)[-1]}; "
                f"the order must be {_PATH_SHAPE}",
                field=field,
            )
        values[key] = _decode_segment(raw, key, field)

    gtin_text = values["01"]
    if gtin_text != gtin_text.strip():
        raise ValidationError(
            f"{field}: the GTIN {gtin_text!r} has surrounding whitespace", field=field
        )
    lot = values.get("10")
    serial = values.get("21")
    return DigitalLink(
        gtin14=_check_part(field, "GTIN (AI 01)", normalize_gtin, gtin_text),
        lot=None if lot is None else _check_part(field, "lot (AI 10)", validate_lot, lot),
        serial=(
            None
            if serial is None
            else _check_part(field, "serial (AI 21)", validate_serial, serial)
        ),
    )


def _check_part(field: str, part: str, validator: Callable[[str], str], value: str) -> str:
    """Run ``validator`` on one part of a URI, reporting failures against the URI's field."""
    try:
        return validator(value)
    except ValidationError as exc:
        raise ValidationError(
            f"{field}: {part} is invalid: {exc.message}",
            field=field,
            details={"part": part, **exc.details},
        ) from None


#: The GS1 application identifiers a label's element string may carry besides GTIN, lot and
#: serial, with their fixed lengths (dates, YYMMDD): read past, not kept.
_FIXED_AIS = {"01": 14, "11": 6, "13": 6, "15": 6, "17": 6}
_VARIABLE_AIS = ("10", "21")
_GROUP_SEPARATOR = "\x1d"  # FNC1 as a scanner returns it between variable-length fields
_SYMBOLOGY_ID = re.compile(r"\][A-Za-z][0-9]")  # e.g. ]d2 (GS1 DataMatrix), ]C1 (GS1-128)
_BRACKETED_AI = re.compile(r"\((\d{2})\)([^()]*)")


def parse_element_string(text: str, *, field: str = "code") -> DigitalLink:
    """Read GTIN, lot and serial from the text under a barcode, ``(01)…(10)…(21)…`` (the
    human-readable form, spaces allowed), or from what a scanner returns for a GS1
    DataMatrix or GS1-128: the same fields without parentheses, a group separator (FNC1)
    after each variable-length one, perhaps a symbology identifier (``]d2``) first. Dates
    (AI 11, 13, 15, 17) are read past; any other AI is refused."""
    _type_check(text, field, "a string")
    text = text.strip()
    values: dict[str, str] = {}
    if text.startswith("("):
        squeezed = "".join(text.split())
        pairs = _BRACKETED_AI.findall(squeezed)
        if "".join(f"({ai}){value}" for ai, value in pairs) != squeezed:
            raise ValidationError(f"{field} is not a GS1 element string (01)…(21)…", field=field)
        for ai, value in pairs:
            if ai not in _FIXED_AIS and ai not in _VARIABLE_AIS:
                raise ValidationError(
                    f"{field} carries AI {ai}, which is not read here", field=field
                )
            values[ai] = value
    else:
        rest = _SYMBOLOGY_ID.sub("", text[:3], count=1) + text[3:]
        while rest:
            ai = rest[:2]
            if ai in _FIXED_AIS:
                values[ai], rest = rest[2 : 2 + _FIXED_AIS[ai]], rest[2 + _FIXED_AIS[ai] :]
            elif ai in _VARIABLE_AIS:
                value, _, rest = rest[2:].partition(_GROUP_SEPARATOR)
                values[ai] = value
            else:
                raise ValidationError(f"{field} is not a GS1 element string", field=field)
    if "01" not in values:
        raise ValidationError(f"{field} has no GTIN (AI 01)", field=field)
    lot, serial = values.get("10"), values.get("21")
    return DigitalLink(
        gtin14=_check_part(field, "GTIN (AI 01)", normalize_gtin, values["01"]),
        lot=None if lot is None else _check_part(field, "lot (AI 10)", validate_lot, lot),
        serial=None
        if serial is None
        else _check_part(field, "serial (AI 21)", validate_serial, serial),
    )
