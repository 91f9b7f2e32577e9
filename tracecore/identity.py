"""Personal identifiers of couriers: validated, then kept only as a keyed hash and a mask.

A keyed hash (HMAC-SHA256 with the service's secret) lets a regulator who holds a number
find the courier it belongs to, while a copy of the database alone reveals nothing: the ID
number space is small enough that an unkeyed hash could be reversed by enumeration.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

from tracecore.errors import ValidationError
from tracecore.regions import validate_region_code

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MOBILE = re.compile(r"1[3-9]\d{9}")


def resident_id_check_char(first17: str) -> str:
    """The check character (a digit or X, ISO 7064 MOD 11-2) of a resident identity number
    whose first 17 characters are the digits ``first17``."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_resident_id(value: str, field: str = "id_number") -> str:
    """An 18-character resident identity number (GB 11643), check character per ISO 7064."""
    value = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise ValidationError("ID number must be 17 digits and a digit or X", field=field)
    validate_region_code(value[:6], field=field)
    expected = resident_id_check_char(value[:17])
    if value[17] != expected:
        raise ValidationError(
            f"ID number check character is {value[17]} but should be {expected}", field=field
        )
    return value


def validate_mobile(value: str, field: str = "phone") -> str:
    """A mainland China mobile number, 11 digits starting 13–19 (an optional +86 is dropped)."""
    value = re.sub(r"[\s-]", "", value)
    value = value.removeprefix("+86")
    if not _MOBILE.fullmatch(value):
        raise ValidationError("phone must be an 11-digit mainland mobile number", field=field)
    return value


def keyed_hash(secret: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` keyed with ``secret``, in hex."""
    keyed = _keyed(secret).copy()
    keyed.update(value.encode())
    return keyed.hexdigest()


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    # Set up once per secret (a third of each hash's time): every scan hashes twice.
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def mask_id_number(value: str) -> str:
    """Keep the region (6) and the last 4 characters: 320402********1234."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    return value[:3] + "****" + value[-4:]


def mask_name(value: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***; a Latin name keeps its first letter."""
    return value[:1] + "*" * max(len(value) - 1, 1)
