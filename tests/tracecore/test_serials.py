"""Serials people can type: what a consumer or regulator types is read as the serial meant."""

import pytest

from tracecore.errors import ValidationError
from tracecore.gs1 import DigitalLink
from tracecore.serials import (
    CONFUSABLE_DIGITS,
    grouped,
    is_serial,
    new_serials,
    normalize_serial,
    read_code,
)

CODE = "HYSSULQXNMWMTTRR"

#: (typed, the serial it is read as)
TABLE = [
    ("HYSSULQXNMWMTTRR", CODE),  # canonical: unchanged
    ("hyssulqxnmwmttrr", CODE),  # lowercase
    ("HySsUlQxNmWmTtRr", CODE),  # mixed case
    ("HYSS ULQX NMWM TTRR", CODE),  # spaces, as the label groups it
    ("  HYSSULQXNMWMTTRR\n", CODE),  # surrounding whitespace
    ("HYSS\tULQX\u3000NMWM\u00a0TTRR", CODE),  # tab, ideographic and no-break spaces
    ("HYSS-ULQX-NMWM-TTRR", CODE),  # dashes
    ("HYSS\u2014ULQX\u2013NMWM\uff0dTTRR", CODE),  # em, en and full-width dashes
    ("ＨＹＳＳＵＬＱＸＮＭＷＭＴＴＲＲ", CODE),  # full-width letters (Chinese input method)
    ("22OZ6T3FPQBYRCWX", "22OZ6T3FPQBYRCWX"),
    ("220Z6T3FPQBYRCWX", "22OZ6T3FPQBYRCWX"),  # 0 for O (the example)
    ("1MPQ2345ABCDEFGH", "IMPQ2345ABCDEFGH"),  # 1 for I
    ("8ABQ2345ABCDEFGH", "BABQ2345ABCDEFGH"),  # 8 for B
    ("9ABQ2345ABCDEFGH", "GABQ2345ABCDEFGH"),  # 9 for G
    ("22oz-6t3f pqby rcwx", "22OZ6T3FPQBYRCWX"),  # all at once
    ("0189 0189 0189 0189", "OIBGOIBGOIBGOIBG"),
    ("", ""),
    ("ABC", "ABC"),  # not a serial's shape: normalised all the same, found nowhere
]


@pytest.mark.parametrize(("typed", "meant"), TABLE)
def test_what_is_typed_is_read_as_the_serial_meant(typed, meant):
    assert normalize_serial(typed) == meant


def test_every_confusable_digit_becomes_a_letter_of_the_alphabet():
    """Is each digit a serial never has read as a letter a serial may have?"""
    assert sorted(CONFUSABLE_DIGITS) == ["0", "1", "8", "9"]
    for letter in CONFUSABLE_DIGITS.values():
        assert is_serial(letter * 16)


def test_new_serials_are_canonical():
    """Is a serial as issued its own normal form (a QR code's serial is never redirected)?"""
    for serial in new_serials(200):
        assert is_serial(serial) and normalize_serial(serial) == serial


def test_a_grouped_serial_reads_back_as_itself():
    assert grouped(CODE) == "HYSS ULQX NMWM TTRR"
    assert normalize_serial(grouped(CODE)) == CODE


@pytest.mark.parametrize(
    "text", ["ABC", "HYSSULQXNMWMTTR1", "HYSSULQXNMWMTTRRX", "hyssulqxnmwmttrr"]
)
def test_only_sixteen_capitals_and_digits_2_to_7_have_a_serials_shape(text):
    assert not is_serial(text)


GTIN = "06901234567892"


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        (" hyss-ulqx-nmwm-ttrr ", CODE),
        ("220Z 6T3F PQBY RCWX", "22OZ6T3FPQBYRCWX"),
        (f"https://id.trace.example.cn/01/{GTIN}/10/L1/21/{CODE}", DigitalLink(GTIN, "L1", CODE)),
        (f"/01/{GTIN}/10/L1/21/{CODE.lower()}", DigitalLink(GTIN, "L1", CODE)),
        (f"(01){GTIN}(10)L1(21){CODE}", DigitalLink(GTIN, "L1", CODE)),
        (f"(01) {GTIN} (10) L1 (21) {grouped(CODE)}", DigitalLink(GTIN, "L1", CODE)),
        (f"(01){GTIN}(17)271231(10)L1(21){CODE}", DigitalLink(GTIN, "L1", CODE)),
        (f"]d201{GTIN}10L1\x1d21{CODE}", DigitalLink(GTIN, "L1", CODE)),
        (f"01{GTIN}21{CODE}", DigitalLink(GTIN, None, CODE)),
        (f"(01){GTIN}", DigitalLink(GTIN, None, None)),
    ],
)
def test_a_code_is_read_from_a_serial_a_link_or_the_text_under_a_barcode(typed, read):
    assert read_code(typed) == read


@pytest.mark.parametrize(
    "typed", ["(01)123(21)X", f"(01){GTIN}(99)X", f"(01){GTIN}(21)A B(", "/01/123/21/X"]
)
def test_a_malformed_link_or_element_string_is_refused(typed):
    with pytest.raises(ValidationError):
        read_code(typed)
