"""Keyed hashes of personal identifiers."""

import hashlib
import hmac

import pytest

from tracecore.identity import keyed_hash


@pytest.mark.parametrize(
    "secret,value", [("s", "x"), ("another secret", "x"), ("", "身份证"), ("k" * 100, "")]
)
def test_a_keyed_hash_is_the_hmac_sha256_of_the_value(secret, value):
    """Each secret keys its own hashes (the key set up once per secret changes nothing)."""
    expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
    assert keyed_hash(secret, value) == expected
    assert keyed_hash(secret, value) == expected
