"""Unified social credit codes (统一社会信用代码), GB 32100-2015."""

from __future__ import annotations

import pytest

from tracecore.errors import ValidationError
from tracecore.uscc import USCC_ALPHABET, uscc_check_char, validate_uscc

# As published on the companies' business licences (营业执照).
REAL_USCCS = [
    pytest.param("914403001922038216", id="huawei-technologies"),
    pytest.param("91330100799655058B", id="alibaba-china"),
    pytest.param("9144030071526726XG", id="tencent"),
    pytest.param("91110302562134916R", id="jingdong"),
]


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_codes_are_valid(code: str) -> None:
    """Are the codes printed on real business licences accepted unchanged?"""
    assert validate_uscc(code) == code


@pytest.mark.parametrize("code", REAL_USCCS)
def test_check_char_of_real_codes(code: str) -> None:
    """Does the GB 32100 algorithm reproduce the check character of real codes?"""
    assert uscc_check_char(code[:17]) == code[17]


def test_check_char_value_31_maps_to_zero() -> None:
    """Is a weighted sum divisible by 31 given check character '0', not an out-of-range 31?"""
    assert uscc_check_char("0" * 17) == "0"


def test_alphabet_has_31_characters_without_i_o_z_s_v() -> None:
    """Is the alphabet the 31 characters of GB 32100, with I, O, Z, S, V left out?"""
    assert len(USCC_ALPHABET) == 31
    assert not set("IOZSV") & set(USCC_ALPHABET)


def test_lowercase_is_normalised() -> None:
    """Is a code typed in lowercase accepted and returned in uppercase?"""
    assert validate_uscc("91330100799655058b") == "91330100799655058B"


def test_surrounding_whitespace_is_stripped() -> None:
    """Is whitespace around a pasted code ignored?"""
    assert validate_uscc(" 9144030071526726XG\t") == "9144030071526726XG"


@pytest.mark.parametrize("code", REAL_USCCS)
def test_every_single_character_change_is_rejected(code: str) -> None:
    """Is any one wrong character, in any position, caught?"""
    for position, original in enumerate(code):
        for char in USCC_ALPHABET:
            if char == original:
                continue
            typo = code[:position] + char + code[position + 1 :]
            with pytest.raises(ValidationError):
                validate_uscc(typo)


@pytest.mark.parametrize("code", REAL_USCCS)
def test_every_transposition_in_the_first_17_is_rejected(code: str) -> None:
    """Is swapping any two different characters among positions 1-17 caught?"""
    for i in range(17):
        for j in range(i + 1, 17):
            if code[i] == code[j]:
                continue
            swapped = code[:i] + code[j] + code[i + 1 : j] + code[i] + code[j + 1 :]
            with pytest.raises(ValidationError):
                validate_uscc(swapped)


def test_wrong_check_char_message_names_the_expected_character() -> None:
    """Does the error for a bad check character say which character was expected?"""
    with pytest.raises(ValidationError) as caught:
        validate_uscc("9144030071526726XA")
    assert caught.value.message == "uscc check character is 'A' but should be 'G'"
    assert caught.value.field == "uscc"


@pytest.mark.parametrize("code", ["", "91440300192203821", "9144030019220382166", "91440300"])
def test_wrong_length_is_rejected(code: str) -> None:
    """Is a code that is not 18 characters long rejected?"""
    with pytest.raises(ValidationError, match="18"):
        validate_uscc(code)


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_forbidden_letters_are_rejected(letter: str) -> None:
    """Are I, O, Z, S and V rejected as letters GB 32100 does not use?"""
    code = "91440300" + letter + "922038216"
    with pytest.raises(ValidationError, match="I, O, Z, S and V are not used") as caught:
        validate_uscc(code)
    assert f"{letter!r} at position 9" in caught.value.message


def test_forbidden_lowercase_letter_is_rejected() -> None:
    """Is a lowercase 'o' rejected too, not slipped through by upper-casing?"""
    with pytest.raises(ValidationError, match="'O' at position 9"):
        validate_uscc("91440300o922038216")


def test_letter_o_error_suggests_digit_zero() -> None:
    """Does a letter O, the commonest typo, come with a hint that 0 was probably meant?"""
    with pytest.raises(ValidationError, match=r"did you mean '0'\?"):
        validate_uscc("9144O3001922038216")


@pytest.mark.parametrize("char", ["-", " ", "*", "中", "０"])
def test_characters_outside_the_alphabet_are_rejected(char: str) -> None:
    """Are punctuation, inner spaces and non-ASCII characters rejected?"""
    code = "914403001" + char + "22038216"
    with pytest.raises(ValidationError, match="uses only digits 0-9 and the letters"):
        validate_uscc(code)


def test_letters_in_region_code_are_rejected() -> None:
    """Are letters in positions 3-8 rejected even when the check character matches?"""
    first17 = "91AB0300192203821"
    code = first17 + uscc_check_char(first17)
    with pytest.raises(ValidationError, match="positions 3-8 must be the 6-digit"):
        validate_uscc(code)


def test_error_reports_the_callers_field_name() -> None:
    """Does the error carry the field name the caller passed?"""
    with pytest.raises(ValidationError) as caught:
        validate_uscc("123", field="supplier.uscc")
    assert caught.value.field == "supplier.uscc"


@pytest.mark.parametrize("first17", ["", "9144030019220382", "914403001922038216"])
def test_check_char_needs_exactly_17_characters(first17: str) -> None:
    """Does uscc_check_char refuse input that is not exactly 17 characters?"""
    with pytest.raises(ValidationError, match="17 characters"):
        uscc_check_char(first17)


def test_non_string_is_rejected() -> None:
    """Is a non-string rejected with a validation error rather than a crash?"""
    with pytest.raises(ValidationError, match="must be a string"):
        validate_uscc(914403001922038216)  # type: ignore[arg-type]
