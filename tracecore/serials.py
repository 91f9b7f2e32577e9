"""Unguessable trace-code serials (GS1 AI 21).

A serial is 80 bits from the operating system's CSPRNG, written as 16 characters of the
RFC 4648 base32 alphabet (A–Z, 2–7). That alphabet is inside the GS1 AI 21 character set,
needs no percent-encoding in a Digital Link URI, and leaves out 0/1/8/9, which a person
copying a label by hand could confuse with O/I/B/G. At 80 bits a forger's chance of hitting
one of a billion issued codes by guessing is below one in a quadrillion per try.
Uniqueness is finally enforced by the database (the serial is the primary key); a
collision (about 1e-12 for a million new codes against a billion stored) is retried.
"""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
from dataclasses import replace

from tracecore.gs1 import DigitalLink, parse_digital_link, parse_element_string

SERIAL_BITS = 80
SERIAL_LENGTH = 16  # 80 bits / 5 bits per base32 character
_BYTES = SERIAL_BITS // 8

#: The digits a serial never has, read as the letter a person copying a label in capitals
#: most likely took for them. The alphabet has every letter, so each digit maps to one:
#: 0 → O, 1 → I (a capital L does not look like a 1), 8 → B, 9 → G (a handwritten g).
CONFUSABLE_DIGITS = {"0": "O", "1": "I", "8": "B", "9": "G"}
#: What people put between groups of characters: spaces of any kind and dashes of any kind
#: (after NFKC, which turns full-width forms typed with a Chinese input method into ASCII).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30fc\uff0d_.·]+")
_TRANSLATE = str.maketrans(CONFUSABLE_DIGITS)
_CANONICAL = re.compile(r"[A-Z2-7]{16}")


def new_serials(count: int) -> list[str]:
    """``count`` fresh serials, distinct among themselves."""
    if count <= 0:
        return []
    while True:
        # One encode call for the whole lot: a million serials in well under a second.
        text = base64.b32encode(secrets.token_bytes(_BYTES * count)).decode("ascii")
        serials = [text[i : i + SERIAL_LENGTH] for i in range(0, len(text), SERIAL_LENGTH)]
        if len(set(serials)) == count:
            return serials


def normalize_serial(typed: str) -> str:
    """The serial a person meant by what they typed: full-width forms made ASCII (NFKC),
    spaces and dashes dropped, letters in capitals, and the digits 0, 1, 8 and 9, which no
    serial has, read as the letters they are confused with (:data:`CONFUSABLE_DIGITS`).

    Pure and total: any text comes back normalised, whether or not it is then a well-formed
    serial (:func:`is_serial`); a canonical serial comes back unchanged."""
    if _CANONICAL.fullmatch(typed):  # the scan's usual case: a serial from a QR code
        return typed
    text = unicodedata.normalize("NFKC", typed)
    return _SEPARATORS.sub("", text).upper().translate(_TRANSLATE)


def is_serial(text: str) -> bool:
    """Whether ``text`` has the shape of a serial this service issues (16 characters of
    A–Z and 2–7). Not whether it was issued."""
    return _CANONICAL.fullmatch(text) is not None


def grouped(serial: str, size: int = 4) -> str:
    """A serial as people read it off a label: groups of ``size`` characters, space-separated
    (``HYSS ULQX NMWM TTRR``). Typing it back with or without the spaces finds the same code."""
    return " ".join(serial[i : i + size] for i in range(0, len(serial), size))


def read_code(typed: str) -> DigitalLink | str:
    """What to look up for what a person typed into the entry page or its camera read: a
    Digital Link (a URI or its path), the text under a barcode (``(01)…(10)…(21)…``, or the
    same as a scanner returns it) as a :class:`~tracecore.gs1.DigitalLink` with its serial
    normalised; anything else as a serial (:func:`normalize_serial`). Raises
    :class:`~tracecore.errors.ValidationError` for a link or element string that is not
    well formed."""
    text = typed.strip()
    if "/01/" in text:
        link = parse_digital_link(text, field="code")
    elif text.startswith(("(", "]")) or (text[:16].isdigit() and len(text) > 16):
        link = parse_element_string(text)
    else:
        return normalize_serial(text)
    if link.serial is None:
        return link
    return replace(link, serial=normalize_serial(link.serial))
