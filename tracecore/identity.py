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
from collections.abc import Callable
from dataclasses import dataclass

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


# -- personal identifiers in free text (a search term, a log line) ---------------------------

#: An 18-character resident ID number (digits may be grouped by spaces or dashes).
_ID_IN_TEXT = re.compile(r"(?<![\dA-Za-z])\d(?:[\s-]*\d){16}[\s-]*[\dXx](?![\dA-Za-z])")
#: A mainland mobile number, with or without +86, digits may be grouped.
_MOBILE_IN_TEXT = re.compile(r"(?<![\dA-Za-z+])(?:\+?86[\s-]*)?1[3-9](?:[\s-]*\d){9}(?![\dA-Za-z])")


@dataclass(frozen=True)
class Redacted:
    """Free text with its personal identifiers masked, and their keyed hashes."""

    #: The text with each identifier in its masked form (``138****0001``).
    text: str
    #: ``kind:hash`` per identifier found (``phone:…``, ``id_number:…``, ``name:…``): the
    #: same keyed hash as the couriers' table keeps, so a holder of the number can match it.
    hashes: tuple[str, ...] = ()

    @property
    def personal(self) -> bool:
        return bool(self.hashes)


def redact_identifiers(secret: str, text: str) -> Redacted:
    """Mask every resident ID number and mobile number in ``text``; keep their keyed hashes
    (``keyed_hash(secret, number)``, as :class:`Courier` stores them)."""
    hashes: list[str] = []

    def masked(kind: str, mask: Callable[[str], str]) -> Callable[[re.Match], str]:
        def replace(match: re.Match) -> str:
            number = re.sub(r"[\s-]", "", match.group(0)).upper()
            if kind == "phone":
                number = number.removeprefix("+86").removeprefix("86")
            hashes.append(f"{kind}:{keyed_hash(secret, number)}")
            return mask(number)

        return replace

    text = _ID_IN_TEXT.sub(masked("id_number", mask_id_number), text)
    text = _MOBILE_IN_TEXT.sub(masked("phone", mask_phone), text)
    return Redacted(text, tuple(hashes))


def redact_name(secret: str, name: str) -> Redacted:
    """A person's name (or part of one) as a log may keep it: masked, with its keyed hash."""
    return Redacted(mask_name(name), (f"name:{keyed_hash(secret, 'name:' + name)}",))
