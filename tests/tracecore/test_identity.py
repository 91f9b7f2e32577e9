"""Keyed hashes of personal identifiers, and the check character of a resident ID number."""

import hashlib
import hmac

import pytest

from tracecore.identity import keyed_hash, resident_id_check_char, validate_resident_id


@pytest.mark.parametrize(
    "secret,value", [("s", "x"), ("another secret", "x"), ("", "身份证"), ("k" * 100, "")]
)
def test_a_keyed_hash_is_the_hmac_sha256_of_the_value(secret, value):
    """Each secret keys its own hashes (the key set up once per secret changes nothing)."""
    expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
    assert keyed_hash(secret, value) == expected
    assert keyed_hash(secret, value) == expected


@pytest.mark.parametrize(
    "first17,check",
    # The standard's worked example (check character X), and another of a digit.
    [("11010519491231002", "X"), ("44052418800101001", "4")],
)
def test_the_check_character_of_a_resident_id_number(first17, check):
    """Is the check character the one ISO 7064 MOD 11-2 gives, and does the number it
    completes pass validation?"""
    assert resident_id_check_char(first17) == check
    assert validate_resident_id(first17 + check) == first17 + check
