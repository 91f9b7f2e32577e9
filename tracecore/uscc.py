"""Unified social credit code (统一社会信用代码), GB 32100-2015.

Every Chinese legal person and organisation has one 18-character code, printed on its
business licence (营业执照). Layout, 1-based positions:

* 1 — registration authority code (登记管理部门代码), e.g. ``9`` market regulation;
* 2 — organisation type code (机构类别代码), e.g. ``1`` enterprise;
* 3–8 — administrative region code of the registering authority (GB/T 2260, 6 digits);
* 9–17 — organisation code body (主体标识码);
* 18 — check character.

Only the structure and the check character are verified here: the codes allowed in
positions 1–2 have been extended since 2015, and positions 3–8 may hold ``100000`` for
nationally registered bodies, which is not a province, so neither is checked against a list.
"""

from __future__ import annotations

from tracecore.errors import ValidationError

__all__ = ["USCC_ALPHABET", "uscc_check_char", "validate_uscc"]

#: The 31 characters of GB 32100-2015, in value order: I, O, Z, S and V are not used.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {char: value for value, char in enumerate(USCC_ALPHABET)}
#: Weight of positions 1..17: 3**(i-1) mod 31.
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_LENGTH = 18

# Letters left out of the alphabet because they look like digits; suggest the digit.
_LOOKALIKES = {"I": "1", "O": "0", "Z": "2", "S": "5"}
_ALPHABET_DESCRIPTION = "digits 0-9 and the letters A-H, J-N, P-R, T, U, W-Y"


def _check_characters(value: str, field: str) -> None:
    for index, char in enumerate(value):
        if char in _VALUES:
            continue
        position = index + 1
        if char in "IOZSV":
            hint = f" (did you mean {_LOOKALIKES[char]!r}?)" if char in _LOOKALIKES else ""
            raise ValidationError(
                f"{field} contains {char!r} at position {position}{hint}; the letters I, O, Z, "
                "S and V are not used in unified social credit codes",
                field=field,
            )
        raise ValidationError(
            f"{field} contains {char!r} at position {position}, which is not allowed; a "
            f"unified social credit code uses only {_ALPHABET_DESCRIPTION}",
            field=field,
        )


def uscc_check_char(first17: str) -> str:
    """Return the check character (position 18) for the first 17 characters of a USCC.

    C18 = 31 − (Σ value_i × weight_i mod 31), where 31 becomes 0, mapped back through the
    alphabet. Lowercase letters are accepted and treated as uppercase.
    """
    field = "uscc"
    if not isinstance(first17, str):
        raise ValidationError(
            f"{field} must be a string, got {type(first17).__name__}", field=field
        )
    body = first17.upper()
    if len(body) != _LENGTH - 1:
        raise ValidationError(
            f"the check character is computed from 17 characters, got {len(body)}", field=field
        )
    _check_characters(body, field)
    total = sum(_VALUES[char] * weight for char, weight in zip(body, _WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str, field: str = "uscc") -> str:
    """Validate a unified social credit code and return it normalised.

    Surrounding whitespace is stripped and letters are upper-cased (codes are often typed
    in lowercase); then length, alphabet, the 6-digit region code in positions 3–8 and the
    check character are verified.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, got {type(value).__name__}", field=field)
    code = value.strip().upper()
    if not code:
        raise ValidationError(
            f"{field} is empty; a unified social credit code has 18 characters", field=field
        )
    if len(code) != _LENGTH:
        raise ValidationError(
            f"{field} has {len(code)} characters; a unified social credit code has 18",
            field=field,
        )
    _check_characters(code, field)
    region = code[2:8]
    if not all(char in "0123456789" for char in region):
        raise ValidationError(
            f"{field} positions 3-8 must be the 6-digit administrative region code, got {region!r}",
            field=field,
        )
    expected = uscc_check_char(code[:17])
    actual = code[17]
    if actual != expected:
        raise ValidationError(
            f"{field} check character is {actual!r} but should be {expected!r}",
            field=field,
            details={"expected_check_char": expected, "actual_check_char": actual},
        )
    return code
