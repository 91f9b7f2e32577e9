"""Unguessable trace-code serials (GS1 AI 21).

A serial is 80 bits from the operating system's CSPRNG, written as 16 characters of the
RFC 4648 base32 alphabet (A–Z, 2–7). That alphabet is inside the GS1 AI 21 character set,
needs no percent-encoding in a Digital Link URI, and leaves out 0/1/8/9, which a person
copying a label by hand could confuse with O/I/B/g. At 80 bits a forger's chance of hitting
one of a billion issued codes by guessing is below one in a quadrillion per try.
Uniqueness is finally enforced by the database (the serial is the primary key); a
collision (about 1e-12 for a million new codes against a billion stored) is retried.
"""

from __future__ import annotations

import base64
import secrets

SERIAL_BITS = 80
SERIAL_LENGTH = 16  # 80 bits / 5 bits per base32 character
_BYTES = SERIAL_BITS // 8


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
