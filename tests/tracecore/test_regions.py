"""Administrative region codes, GB/T 2260."""

from __future__ import annotations

import pytest

from tracecore.errors import ValidationError
from tracecore.regions import PROVINCES, province_name, validate_region_code

# fmt: off
OFFICIAL_PROVINCE_CODES = [str(code) for code in (
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42,
    43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
)]
# fmt: on


def test_province_list_is_the_official_34() -> None:
    """Does the table hold exactly the 34 province-level codes of GB/T 2260?"""
    assert sorted(PROVINCES) == OFFICIAL_PROVINCE_CODES


@pytest.mark.parametrize("province", OFFICIAL_PROVINCE_CODES)
def test_every_province_level_code_is_accepted(province: str) -> None:
    """Is the code of each province-level division itself (e.g. 320000) accepted?"""
    assert validate_region_code(province + "0000") == province + "0000"


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("110105", id="beijing-chaoyang"),
        pytest.param("320102", id="nanjing-xuanwu"),
        pytest.param("330106", id="hangzhou-xihu"),
        pytest.param("440305", id="shenzhen-nanshan"),
        pytest.param("650102", id="urumqi-tianshan"),
    ],
)
def test_real_county_codes_are_accepted(code: str) -> None:
    """Are real county-level codes accepted?"""
    assert validate_region_code(code) == code


@pytest.mark.parametrize(
    "uscc",
    ["914403001922038216", "91330100799655058B", "9144030071526726XG", "91110302562134916R"],
)
def test_region_part_of_real_credit_codes_is_accepted(uscc: str) -> None:
    """Do positions 3-8 of real unified social credit codes pass as region codes?"""
    assert validate_region_code(uscc[2:8]) == uscc[2:8]


def test_surrounding_whitespace_is_stripped() -> None:
    """Is whitespace around the code ignored?"""
    assert validate_region_code(" 320102\n") == "320102"


@pytest.mark.parametrize("code", ["000000", "990000", "100000", "160000", "720000", "830000"])
def test_unknown_province_prefix_is_rejected(code: str) -> None:
    """Are placeholders and unused province prefixes rejected, naming the prefix?"""
    with pytest.raises(ValidationError, match=f"starts with '{code[:2]}'") as caught:
        validate_region_code(code)
    assert caught.value.field == "region_code"


@pytest.mark.parametrize("code", ["", "32010", "3201020", "32-102", "3201O2", "３２０１０２"])
def test_malformed_code_is_rejected(code: str) -> None:
    """Is anything but exactly 6 ASCII digits rejected?"""
    with pytest.raises(ValidationError, match="exactly 6 ASCII digits"):
        validate_region_code(code)


def test_error_reports_the_callers_field_name() -> None:
    """Does the error carry the field name the caller passed?"""
    with pytest.raises(ValidationError) as caught:
        validate_region_code("990000", field="origin.region")
    assert caught.value.field == "origin.region"


@pytest.mark.parametrize(
    ("code", "names"),
    [
        ("320102", ("江苏省", "Jiangsu")),
        ("110105", ("北京市", "Beijing")),
        ("150000", ("内蒙古自治区", "Inner Mongolia")),
        ("610113", ("陕西省", "Shaanxi")),
        ("140105", ("山西省", "Shanxi")),
        ("810000", ("香港特别行政区", "Hong Kong")),
        ("820000", ("澳门特别行政区", "Macao")),
    ],
)
def test_province_name_of_region_code(code: str, names: tuple[str, str]) -> None:
    """Does a 6-digit code give the Chinese and English name of its province?"""
    assert province_name(code) == names


def test_province_name_of_two_digit_code() -> None:
    """Can the 2-digit province-level code be looked up on its own?"""
    assert province_name("44") == ("广东省", "Guangdong")


@pytest.mark.parametrize("code", ["99", "990000", "abc"])
def test_province_name_of_unknown_code_is_rejected(code: str) -> None:
    """Is an unknown code a validation error, not a KeyError?"""
    with pytest.raises(ValidationError):
        province_name(code)


def test_every_province_has_both_names() -> None:
    """Does each province-level division have a Chinese and an English name?"""
    for chinese, english in PROVINCES.values():
        assert chinese[-1] in "省市区"
        assert english.isascii()
        assert english
