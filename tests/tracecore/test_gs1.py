"""GS1 identifiers: GTIN check digits, lot/serial character set, element strings, Digital Link."""

from __future__ import annotations

import string

import biip
import pytest
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_messages import GS1Message

from tracecore import gs1 as tracecore_gs1
from tracecore.errors import ValidationError
from tracecore.gs1 import (
    GS1_CSET82,
    DigitalLink,
    digital_link_uri,
    element_string,
    gtin_check_digit,
    normalize_gtin,
    parse_digital_link,
    validate_lot,
    validate_serial,
)

# Published GTINs, with their GTIN-14 form.
REAL_GTINS = [
    pytest.param("4006381333931", "04006381333931", id="stabilo-pen-ean13"),
    pytest.param("5901234123457", "05901234123457", id="gs1-example-ean13"),
    pytest.param("9787115275790", "09787115275790", id="isbn13-posts-telecom-press"),
    pytest.param("96385074", "00000096385074", id="gs1-example-ean8"),
    pytest.param("036000291452", "00036000291452", id="upc-a-example"),
    pytest.param("614141123452", "00614141123452", id="gs1-us-example-upc-a"),
    pytest.param("09506000134352", "09506000134352", id="gs1-digital-link-example-gtin14"),
    pytest.param("6921168509256", "06921168509256", id="nongfu-spring-550ml"),
    pytest.param("6920202888883", "06920202888883", id="red-bull-china-250ml"),
]

# GS1 Digital Link standard: only these characters may appear unencoded in a path value.
URI_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
CSET82_SORTED = "".join(sorted(GS1_CSET82))
# The whole of character set 82, cut into values of the maximum length (20).
CSET82_CHUNKS = [CSET82_SORTED[i : i + 20] for i in range(0, len(CSET82_SORTED), 20)]

HOST = "id.example.com"


# --- GTIN ------------------------------------------------------------------------------


@pytest.mark.parametrize(("gtin", "gtin14"), REAL_GTINS)
def test_check_digit_of_published_gtins(gtin: str, gtin14: str) -> None:
    """Does the mod-10 algorithm reproduce the check digit printed on real products?"""
    assert gtin_check_digit(gtin[:-1]) == int(gtin[-1])


@pytest.mark.parametrize(("gtin", "gtin14"), REAL_GTINS)
def test_normalize_returns_gtin14(gtin: str, gtin14: str) -> None:
    """Is every GTIN-8/12/13/14 normalised to its zero-padded GTIN-14?"""
    assert normalize_gtin(gtin) == gtin14


def test_normalize_strips_surrounding_whitespace() -> None:
    """Is whitespace around a pasted GTIN ignored?"""
    assert normalize_gtin("  4006381333931\n") == "04006381333931"


def test_every_single_digit_change_is_rejected() -> None:
    """Is any one mistyped digit, in any position, caught by the check digit?"""
    valid = "4006381333931"
    for position, original in enumerate(valid):
        for digit in "0123456789":
            if digit == original:
                continue
            typo = valid[:position] + digit + valid[position + 1 :]
            with pytest.raises(ValidationError):
                normalize_gtin(typo)


def test_wrong_check_digit_message_names_the_expected_digit() -> None:
    """Does the error for a bad check digit tell the client which digit was expected?"""
    with pytest.raises(ValidationError) as caught:
        normalize_gtin("4006381333932")
    assert caught.value.message == "GTIN check digit is 2 but should be 1"
    assert caught.value.field == "gtin"


def test_adjacent_transposition_is_rejected() -> None:
    """Is swapping two neighbouring digits caught (mod 10 misses only pairs differing by 5)?"""
    with pytest.raises(ValidationError, match="check digit"):
        normalize_gtin("4060381333931")  # 0 and 6 swapped


@pytest.mark.parametrize("length", [1, 7, 9, 10, 11, 15, 18])
def test_wrong_length_is_rejected(length: int) -> None:
    """Are digit strings that are not 8, 12, 13 or 14 long rejected, with the length named?"""
    with pytest.raises(ValidationError, match=f"has {length} digits"):
        normalize_gtin("1" * length)


@pytest.mark.parametrize(
    "value",
    [
        "400638133393A",
        "4006381-333931",
        "4006381 333931",
        "４００６３８１３３３９３１",  # full-width digits
        "+4006381333931",
    ],
)
def test_non_digit_is_rejected(value: str) -> None:
    """Is anything but ASCII digits 0-9 rejected, naming the offending character?"""
    with pytest.raises(ValidationError, match="ASCII digits 0-9 only"):
        normalize_gtin(value)


def test_empty_gtin_is_rejected() -> None:
    """Is a blank GTIN rejected as empty rather than as a length error?"""
    with pytest.raises(ValidationError, match="gtin is empty"):
        normalize_gtin("   ")


def test_all_zero_gtin_is_rejected() -> None:
    """Is the all-zeros placeholder rejected even though its check digit computes to 0?"""
    with pytest.raises(ValidationError, match="all zeros"):
        normalize_gtin("00000000000000")


def test_non_string_gtin_is_rejected() -> None:
    """Is a GTIN given as an int (losing its leading zeros) rejected instead of coerced?"""
    with pytest.raises(ValidationError, match="must be a string"):
        normalize_gtin(4006381333931)  # type: ignore[arg-type]


def test_error_reports_the_callers_field_name() -> None:
    """Does the error carry the field name the caller passed?"""
    with pytest.raises(ValidationError) as caught:
        normalize_gtin("123", field="items[2].gtin")
    assert caught.value.field == "items[2].gtin"
    assert caught.value.message.startswith("items[2].gtin has 3 digits")


@pytest.mark.parametrize("body", ["", "12a4"])
def test_check_digit_of_non_digits_is_rejected(body: str) -> None:
    """Does gtin_check_digit refuse input that is not a run of digits?"""
    with pytest.raises(ValidationError):
        gtin_check_digit(body)


# --- lot and serial ----------------------------------------------------------------------


def test_cset82_has_82_characters() -> None:
    """Does the character set hold exactly the 82 characters of GS1 figure 7.11-1?"""
    assert len(GS1_CSET82) == 82
    assert set(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_") == GS1_CSET82


@pytest.mark.parametrize("value", CSET82_CHUNKS)
def test_lot_accepts_every_cset82_character(value: str) -> None:
    """Is every character of set 82 accepted in a lot, and the value returned unchanged?"""
    assert validate_lot(value) == value


@pytest.mark.parametrize("value", CSET82_CHUNKS)
def test_serial_accepts_every_cset82_character(value: str) -> None:
    """Is every character of set 82 accepted in a serial, and the value returned unchanged?"""
    assert validate_serial(value) == value


def test_lot_with_hash_is_rejected_with_an_actionable_message() -> None:
    """Does the error name the bad character, its position and the AI?"""
    with pytest.raises(ValidationError) as caught:
        validate_lot("A#1")
    assert caught.value.field == "lot"
    assert caught.value.message.startswith(
        "lot contains '#' at position 2, which is not in the GS1 AI 10 character set"
    )


def test_serial_error_names_ai_21() -> None:
    """Does a bad serial point at AI 21, not AI 10?"""
    with pytest.raises(ValidationError, match="GS1 AI 21 character set") as caught:
        validate_serial("SN@1")
    assert caught.value.field == "serial"


@pytest.mark.parametrize(
    "value",
    [" LOT1", "LOT1 ", "LOT 1", "批次1", "A~B", "A$B", "A{B}", "A\\B", "A\tB", "é"],
)
def test_lot_outside_cset82_is_rejected(value: str) -> None:
    """Are spaces, non-ASCII and the ASCII symbols missing from set 82 rejected?"""
    with pytest.raises(ValidationError, match="not in the GS1 AI 10 character set"):
        validate_lot(value)


def test_lot_of_20_characters_is_accepted() -> None:
    """Is the maximum length of AI 10 (20 characters) allowed?"""
    assert validate_lot("L" * 20) == "L" * 20


def test_lot_of_21_characters_is_rejected() -> None:
    """Is a lot one character over the limit rejected, with its length named?"""
    with pytest.raises(ValidationError, match="21 characters long; GS1 AI 10 allows at most 20"):
        validate_lot("L" * 21)


def test_empty_serial_is_rejected() -> None:
    """Is an empty serial rejected (AI 21 needs at least one character)?"""
    with pytest.raises(ValidationError, match="serial is empty"):
        validate_serial("")


def test_lot_is_case_sensitive() -> None:
    """Is a lot returned as typed, not upper-cased, since 'abc' and 'ABC' are different lots?"""
    assert validate_lot("abc") == "abc"


# --- element string --------------------------------------------------------------------


def test_element_string_format() -> None:
    """Is the HRI element string (01)gtin14(10)lot(21)serial?"""
    assert (
        element_string("04006381333931", "L2024-07", "SN0001")
        == "(01)04006381333931(10)L2024-07(21)SN0001"
    )


def test_element_string_pads_gtin13_to_14() -> None:
    """Is a GTIN-13 written as 14 digits, as AI 01 requires?"""
    assert element_string("6921168509256", "A1", "1") == "(01)06921168509256(10)A1(21)1"


def test_element_string_omits_absent_parts() -> None:
    """Is a missing lot or serial left out rather than rendered as '(10)None'?"""
    assert element_string("96385074", None, "7") == "(01)00000096385074(21)7"


def test_element_string_rejects_bad_gtin() -> None:
    """Is an element string never produced for a GTIN with a wrong check digit?"""
    with pytest.raises(ValidationError, match="check digit"):
        element_string("4006381333932", "A", "1")


def test_element_string_rejects_bad_lot() -> None:
    """Is an element string never produced for a lot outside set 82?"""
    with pytest.raises(ValidationError, match="lot contains ' '"):
        element_string("4006381333931", "A 1", "1")


@pytest.mark.parametrize(("gtin", "gtin14"), REAL_GTINS)
def test_biip_parses_element_string(gtin: str, gtin14: str) -> None:
    """Does the third-party parser biip read back the same GTIN, lot and serial?"""
    message = GS1Message.parse_hri(element_string(gtin, "AB/12", "x%y&z"))
    gtin_es = message.element_strings.get(ai="01")
    assert gtin_es is not None
    assert gtin_es.gtin is not None  # biip validated the GTIN and its check digit
    assert gtin_es.value == gtin14
    assert message.element_strings.get(ai="10").value == "AB/12"
    assert message.element_strings.get(ai="21").value == "x%y&z"


def test_biip_parses_machine_form_of_element_string() -> None:
    """Does biip.parse() accept the same data without parentheses and report no GTIN error?"""
    hri = element_string("4006381333931", "LOT7", "SN1")
    raw = hri.replace("(01)", "01").replace("(10)", "10").replace("(21)", "\x1d21")
    result = biip.parse(raw)
    assert result.gtin_error is None
    assert result.gtin is not None
    assert result.gtin.value == "04006381333931"
    assert result.gs1_message.element_strings.get(ai="10").value == "LOT7"
    assert result.gs1_message.element_strings.get(ai="21").value == "SN1"


# --- Digital Link URI ------------------------------------------------------------------


def test_digital_link_uri_format() -> None:
    """Is the URI https://host/01/gtin14/10/lot/21/serial?"""
    assert (
        digital_link_uri(HOST, "4006381333931", "L1", "S1")
        == "https://id.example.com/01/04006381333931/10/L1/21/S1"
    )


def test_digital_link_uri_percent_encodes_slash_percent_and_ampersand() -> None:
    """Are '/', '%' and '&' in lot and serial percent-encoded so they stay one segment?"""
    assert (
        digital_link_uri(HOST, "4006381333931", "AB/12", "x%y&z")
        == "https://id.example.com/01/04006381333931/10/AB%2F12/21/x%25y%26z"
    )


@pytest.mark.parametrize("char", sorted(GS1_CSET82 - URI_UNRESERVED))
def test_digital_link_uri_encodes_every_reserved_character(char: str) -> None:
    """Is each set-82 character outside the URI unreserved set written as %XX (upper hex)?"""
    uri = digital_link_uri(HOST, "4006381333931", f"A{char}B", "1")
    assert uri.endswith(f"/10/A%{ord(char):02X}B/21/1")


def test_digital_link_uri_keeps_unreserved_characters() -> None:
    """Are letters, digits, '-', '.' and '_' left as they are?"""
    uri = digital_link_uri(HOST, "4006381333931", "Ab-9.x_Z", "1")
    assert "/10/Ab-9.x_Z/" in uri


def test_digital_link_uri_omits_absent_parts() -> None:
    """Is a URI for a GTIN with only a serial /01/…/21/…, as the standard allows?"""
    assert (
        digital_link_uri(HOST, "5901234123457", None, "42")
        == "https://id.example.com/01/05901234123457/21/42"
    )


@pytest.mark.parametrize(
    "host", ["", "https://id.example.com", "id.example.com/path", "a b.com", "user@host.com"]
)
def test_digital_link_uri_rejects_bad_host(host: str) -> None:
    """Is anything other than a bare host name (and port) refused as host?"""
    with pytest.raises(ValidationError) as caught:
        digital_link_uri(host, "4006381333931", "L1", "S1")
    assert caught.value.field == "host"


def test_digital_link_uri_accepts_host_with_port() -> None:
    """Can a development host with a port be used?"""
    assert digital_link_uri("localhost:5000", "96385074", None, None) == (
        "https://localhost:5000/01/00000096385074"
    )


@pytest.mark.parametrize(
    ("lot", "serial"),
    [
        ("AB/12", "x%y&z"),
        ("L1", "S1"),
        ("(10)", "(21)"),
        ("a?b=c", "1+2"),
        ("%41", "%2F"),  # already-encoded-looking values must come back literally
        *zip(CSET82_CHUNKS, reversed(CSET82_CHUNKS), strict=True),
        (None, "S9"),
        ("L9", None),
        (None, None),
    ],
)
def test_digital_link_round_trip(lot: str | None, serial: str | None) -> None:
    """Does parsing the URI we build give back exactly the GTIN, lot and serial we put in?"""
    uri = digital_link_uri(HOST, "4006381333931", lot, serial)
    assert parse_digital_link(uri) == DigitalLink("04006381333931", lot, serial)


def test_biip_parses_our_digital_link_uri() -> None:
    """Does biip read the URI we build, with reserved characters, without a GTIN error?"""
    result = biip.parse(digital_link_uri(HOST, "4006381333931", "AB/12", "x%y&z"))
    assert result.gs1_digital_link_uri_error is None
    assert result.gtin_error is None
    assert result.gtin is not None
    assert result.gtin.value == "04006381333931"
    strings = result.gs1_digital_link_uri.element_strings
    assert strings.get(ai="10").value == "AB/12"
    assert strings.get(ai="21").value == "x%y&z"


@pytest.mark.parametrize(("lot", "serial"), list(zip(CSET82_CHUNKS, CSET82_CHUNKS, strict=True)))
def test_biip_agrees_on_every_cset82_character(lot: str, serial: str) -> None:
    """Does biip decode every set-82 character of our URI to the same lot and serial?"""
    uri = digital_link_uri(HOST, "6921168509256", lot, serial)
    strings = GS1DigitalLinkURI.parse(uri).element_strings
    assert strings.get(ai="10").value == lot
    assert strings.get(ai="21").value == serial


def test_parse_reads_uri_built_by_biip() -> None:
    """Can we read a Digital Link URI produced by another implementation (biip)?"""
    message = GS1Message.parse_hri("(01)09506000134352(10)AB/12(21)x%y&z")
    uri = GS1DigitalLinkURI.from_element_strings(message.element_strings).as_uri(domain=HOST)
    assert parse_digital_link(uri) == DigitalLink("09506000134352", "AB/12", "x%y&z")


def test_parse_accepts_bare_path() -> None:
    """Can the path alone, as a router sees it, be parsed?"""
    assert parse_digital_link("/01/04006381333931/10/AB%2F12/21/7") == DigitalLink(
        "04006381333931", "AB/12", "7"
    )


@pytest.mark.parametrize(("gtin", "gtin14"), REAL_GTINS)
def test_parse_normalises_short_gtins(gtin: str, gtin14: str) -> None:
    """Is a GTIN-8/12/13 in the /01/ segment returned as GTIN-14?"""
    assert parse_digital_link(f"https://{HOST}/01/{gtin}").gtin14 == gtin14


def test_parse_ignores_query_and_fragment() -> None:
    """Are query parameters (e.g. linkType) and a fragment ignored?"""
    uri = f"https://{HOST}/01/04006381333931/10/L1/21/S1?linkType=gs1:pip&17=261231#top"
    assert parse_digital_link(uri) == DigitalLink("04006381333931", "L1", "S1")


def test_parse_accepts_lowercase_hex_escapes() -> None:
    """Is %2f read like %2F (hex case is not significant in percent-encoding)?"""
    assert parse_digital_link("/01/04006381333931/10/AB%2f12").lot == "AB/12"


def test_parse_serial_without_lot() -> None:
    """Is /01/…/21/… accepted with lot None, since qualifiers may be skipped?"""
    assert parse_digital_link("/01/04006381333931/21/S1") == DigitalLink(
        "04006381333931", None, "S1"
    )


def test_parse_accepts_http_scheme() -> None:
    """Is an http:// URI accepted, since the standard allows both http and https?"""
    assert parse_digital_link(f"http://{HOST}/01/04006381333931").gtin14 == "04006381333931"


@pytest.mark.parametrize(
    ("value", "expected_message"),
    [
        ("", "uri is empty"),
        ("ftp://id.example.com/01/04006381333931", "must be an https URI"),
        ("id.example.com/01/04006381333931", "must be an https URI"),
        ("https:///01/04006381333931", "no host name"),
        ("https://id.example.com/", "must have the form"),
        ("https://id.example.com/prefix/01/04006381333931", "must have the form"),
        ("/00/106141412345678908", "must have the form"),
        ("/01/04006381333931/22/2A/10/L1", "AI '22', which is not supported"),
        ("/01/04006381333931/17/261231", "AI '17', which is not supported"),
        ("/01/04006381333931/lot/L1", "AI 'lot', which is not supported"),
        ("/01/04006381333931/21/S1/10/L1", "AI 10 after AI 21"),
        ("/01/04006381333931/10/L1/10/L2", "AI 10 twice"),
        ("/01/04006381333931/10", "AI without a value"),
        ("/01/04006381333931/", "empty segment"),
        ("/01/04006381333931//10/L1", "empty segment"),
        ("/01/04006381333931/10/50%", "'%' at position 3"),
        ("/01/04006381333931/10/A%zz", "not followed by two hex digits"),
        ("/01/04006381333931/10/%FF", "not valid UTF-8"),
        ("/01/4006381333932", "GTIN check digit is 2 but should be 1"),
        ("/01/12345", "has 5 digits"),
        ("/01/%204006381333931", "surrounding whitespace"),
        ("/01/04006381333931/10/A%23B", "lot contains '#'"),
        ("/01/04006381333931/10/A%20B", "lot contains ' '"),
        ("/01/04006381333931/21/" + "9" * 21, "21 characters long"),
    ],
)
def test_parse_rejects(value: str, expected_message: str) -> None:
    """Is each malformed URI rejected against the 'uri' field with a message saying why?"""
    with pytest.raises(ValidationError, match="uri") as caught:
        parse_digital_link(value)
    assert caught.value.field == "uri"
    assert expected_message in caught.value.message


def test_parse_reports_the_callers_field_name() -> None:
    """Does a parse error carry the field name the caller passed?"""
    with pytest.raises(ValidationError) as caught:
        parse_digital_link("/02/1", field="qr_payload")
    assert caught.value.field == "qr_payload"


def test_digital_link_is_immutable() -> None:
    """Is a parsed DigitalLink frozen, so it can be used as a dict key and not mutated?"""
    link = parse_digital_link("/01/04006381333931")
    with pytest.raises(AttributeError):
        link.lot = "X"  # type: ignore[misc]
    assert hash(link) == hash(DigitalLink("04006381333931"))


def _parsed_or_error(parse, path: str):
    try:
        return parse(path)
    except ValidationError as exc:
        return ("error", exc.message, exc.field, exc.details)


def test_a_units_own_path_parses_as_any_link_does() -> None:
    """The fast way for a unit's QR path (GTIN-14, lot, serial, nothing to decode) gives the
    same link, and the same error for a bad part, as the full parser."""
    from tracecore.gs1 import _parse_any_link

    gtins = ["04006381333931", "04006381333932", "00000000000000", "12345678901234"]
    lots = ["BENCH1", "L-2026.11_a", "A" * 20, "A" * 21, "L:1", "批次", "L'1", "~x"]
    serials = ["HYSSULQXNMWMTTRR", "ABC", "a1", "A" * 40, "B&C", "X*Y", "ÄÖ", "0"]
    seen = 0
    for gtin in gtins:
        for lot in lots:
            for serial in serials:
                path = f"/01/{gtin}/10/{lot}/21/{serial}"
                fast = _parsed_or_error(parse_digital_link, path)
                assert fast == _parsed_or_error(lambda p: _parse_any_link(p, "uri"), path), path
                seen += isinstance(fast, DigitalLink)
    assert 0 < seen < len(gtins) * len(lots) * len(serials)  # both ways were taken


def test_a_units_own_link_path_is_told_apart_cheaply():
    """The scan's fast test: 14 digits, a lot and a serial with nothing to decode."""
    assert tracecore_gs1.is_unit_link_path("/01/04006381333931/10/L1/21/ABCDEFGHIJKLMNOP")
    assert not tracecore_gs1.is_unit_link_path("/01/4006381333931/10/L1/21/ABCDEFGHIJKLMNOP")
    assert not tracecore_gs1.is_unit_link_path("/01/04006381333931/10/L1")
    assert not tracecore_gs1.is_unit_link_path("/01/04006381333931/10/L%2F1/21/ABCDEFGHIJKLMNOP")
    assert tracecore_gs1.is_digital_link("/01/4006381333931/10/L1")
    assert not tracecore_gs1.is_digital_link("/01/04006381333931/21/S/10/L1")
    assert not tracecore_gs1.is_digital_link("/01/04006381333932")


# -- a path a server has already percent-decoded (no raw URI in the WSGI environ) ---------------


@pytest.mark.parametrize(
    ("decoded", "sent"),
    [
        # a unit's plain link: nothing to encode, the same path back
        (
            "/01/04006381333931/10/AB12/21/KPWWDM73XHN6BQQW",
            "/01/04006381333931/10/AB12/21/KPWWDM73XHN6BQQW",
        ),
        # a '/' in the lot, before a serial and at the end of a batch's link
        (
            "/01/04006381333931/10/AB/12/21/KPWWDM73XHN6BQQW",
            "/01/04006381333931/10/AB%2F12/21/KPWWDM73XHN6BQQW",
        ),
        ("/01/04006381333931/10/AB/1/2", "/01/04006381333931/10/AB%2F1%2F2"),
        # a '%' the client sent as %25 is not decoded a second time
        ("/01/04006381333931/10/A%41/21/S7", "/01/04006381333931/10/A%2541/21/S7"),
        # other characters a value may hold, and a consumer product variant (AI 22)
        ("/01/04006381333931/22/1/2/10/L 1/21/S", "/01/04006381333931/22/1%2F2/10/L%201/21/S"),
        ("/01/04006381333931", "/01/04006381333931"),
        ("/01/04006381333931/21/S", "/01/04006381333931/21/S"),
        # not a Digital Link: encoded as it stands
        ("/t/AB CD", "/t/AB%20CD"),
    ],
)
def test_a_decoded_path_is_encoded_by_the_links_shape(decoded, sent):
    """Does a percent-decoded path come back as the client sent it, and read as the same
    link as the raw path would?"""
    assert tracecore_gs1.encode_decoded_link_path(decoded) == sent
    if decoded.startswith("/01/04006381333931/10/AB/"):
        assert parse_digital_link(tracecore_gs1.encode_decoded_link_path(decoded)).lot.startswith(
            "AB/"
        )
