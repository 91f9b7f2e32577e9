"""Administrative region codes (行政区划代码), GB/T 2260.

A region code has 6 digits: province-level division (2), prefecture (2), county (2).
Only the province-level part is checked against the official list: the lower levels are
renumbered every year, and a stale table would reject real addresses.
"""

from __future__ import annotations

import re

from tracecore.errors import ValidationError

__all__ = ["PROVINCES", "province_name", "validate_region_code"]

#: The 34 province-level divisions of GB/T 2260: code -> (Chinese name, English name).
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京市", "Beijing"),
    "12": ("天津市", "Tianjin"),
    "13": ("河北省", "Hebei"),
    "14": ("山西省", "Shanxi"),
    "15": ("内蒙古自治区", "Inner Mongolia"),
    "21": ("辽宁省", "Liaoning"),
    "22": ("吉林省", "Jilin"),
    "23": ("黑龙江省", "Heilongjiang"),
    "31": ("上海市", "Shanghai"),
    "32": ("江苏省", "Jiangsu"),
    "33": ("浙江省", "Zhejiang"),
    "34": ("安徽省", "Anhui"),
    "35": ("福建省", "Fujian"),
    "36": ("江西省", "Jiangxi"),
    "37": ("山东省", "Shandong"),
    "41": ("河南省", "Henan"),
    "42": ("湖北省", "Hubei"),
    "43": ("湖南省", "Hunan"),
    "44": ("广东省", "Guangdong"),
    "45": ("广西壮族自治区", "Guangxi"),
    "46": ("海南省", "Hainan"),
    "50": ("重庆市", "Chongqing"),
    "51": ("四川省", "Sichuan"),
    "52": ("贵州省", "Guizhou"),
    "53": ("云南省", "Yunnan"),
    "54": ("西藏自治区", "Xizang"),  # "Tibet" in older English usage
    "61": ("陕西省", "Shaanxi"),
    "62": ("甘肃省", "Gansu"),
    "63": ("青海省", "Qinghai"),
    "64": ("宁夏回族自治区", "Ningxia"),
    "65": ("新疆维吾尔自治区", "Xinjiang"),
    "71": ("台湾省", "Taiwan"),
    "81": ("香港特别行政区", "Hong Kong"),
    "82": ("澳门特别行政区", "Macao"),
}

_SIX_DIGITS = re.compile(r"[0-9]{6}")


def validate_region_code(value: str, field: str = "region_code") -> str:
    """Validate a 6-digit GB/T 2260 region code and return it (whitespace stripped).

    The first two digits must name one of the 34 province-level divisions, which catches
    placeholders such as ``000000`` and ``990000``.
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string of 6 digits, got {type(value).__name__}", field=field
        )
    code = value.strip()
    if not _SIX_DIGITS.fullmatch(code):
        raise ValidationError(
            f"{field} must be exactly 6 ASCII digits (GB/T 2260), got {value!r}", field=field
        )
    if code[:2] not in PROVINCES:
        raise ValidationError(
            f"{field} {code!r} starts with {code[:2]!r}, which is not a province-level "
            "division code (GB/T 2260: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)",
            field=field,
        )
    return code


def province_name(code: str) -> tuple[str, str]:
    """Return the (Chinese, English) name of the province-level division of ``code``.

    ``code`` is a 6-digit region code, or the 2-digit province-level code on its own.
    E.g. ``province_name("320102") == ("江苏省", "Jiangsu")``.
    """
    field = "region_code"
    if isinstance(code, str) and len(code.strip()) == 2:
        prefix = code.strip()
        if prefix not in PROVINCES:
            raise ValidationError(
                f"{field} {prefix!r} is not a province-level division code (GB/T 2260)",
                field=field,
            )
        return PROVINCES[prefix]
    return PROVINCES[validate_region_code(code, field)[:2]]
