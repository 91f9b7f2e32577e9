"""The webhooks' pure parts: the signature against the Standard Webhooks reference verifier
(the ``standardwebhooks`` package), the retry schedule, and the URL and address rules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tracecore import webhooks
from tracecore.errors import ValidationError


def _signed(key: bytes, body: bytes) -> dict:
    now = int(time.time())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhooks.signature(key, "msg_1", now, body),
    }


def test_the_reference_verifier_accepts_our_signature():
    """Does the Standard Webhooks reference implementation verify what we sign, with the
    secret as the subscriber is shown it?"""
    key = webhooks.secret_bytes("service key", "salt")
    body = '{"type":"finding.confirmed","data":{"名":"商户"}}'.encode()
    headers = _signed(key, body)
    assert Webhook(webhooks.secret_text(key)).verify(body, headers) == {
        "type": "finding.confirmed",
        "data": {"名": "商户"},
    }
    assert webhooks.verify(webhooks.secret_text(key), headers, body, int(time.time()))


def test_the_reference_verifier_refuses_another_body_or_secret():
    key = webhooks.secret_bytes("service key", "salt")
    headers = _signed(key, b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.secret_text(key)).verify(b'{"a":2}', headers)
    other = webhooks.secret_bytes("service key", "another salt")
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.secret_text(other)).verify(b'{"a":1}', headers)
    assert not webhooks.verify(webhooks.secret_text(other), headers, b'{"a":1}', int(time.time()))


def test_each_salt_and_service_key_derive_their_own_secret():
    a = webhooks.secret_bytes("k", "s1")
    assert len(a) == 32
    assert a != webhooks.secret_bytes("k", "s2") != webhooks.secret_bytes("k2", "s1")
    assert webhooks.secret_text(a).startswith("whsec_")


RETRY = webhooks.Retry(timedelta(seconds=1), timedelta(minutes=10), 5, timedelta(hours=24))


def test_waits_double_with_jitter_up_to_the_cap():
    assert RETRY.wait(1, lambda: 1.0) == timedelta(seconds=1)
    assert RETRY.wait(4, lambda: 1.0) == timedelta(seconds=8)
    assert RETRY.wait(4, lambda: 0.0) == timedelta(seconds=4)
    assert RETRY.wait(40, lambda: 1.0) == timedelta(minutes=10)


def test_gives_up_after_n_failures_or_t_hours():
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert RETRY.give_up(4, now - timedelta(hours=1), now) is None
    assert "5 deliveries" in RETRY.give_up(5, now, now)
    assert "24.0 hours" in RETRY.give_up(2, now - timedelta(hours=24), now)


@pytest.mark.parametrize(
    "url",
    ["https://platform.example.cn/hooks", "https://1.2.3.4:8443/x?y=1"],
)
def test_https_urls_are_taken_everywhere(url):
    assert webhooks.check_url(url, production=True) == url


@pytest.mark.parametrize(
    ("url", "production"),
    [
        ("http://platform.example.cn/hooks", False),  # plain http to the world
        ("http://127.0.0.1:8080/hook", True),  # loopback, in production
        ("ftp://example.cn/", False),
        ("https://user:pw@example.cn/", False),
        ("https:///nohost", False),
        ("https://example.cn/#frag", False),
        ("https://example.cn:99999/", False),
        ("not a url", False),
    ],
)
def test_other_urls_are_refused(url, production):
    with pytest.raises(ValidationError):
        webhooks.check_url(url, production)


def test_http_to_loopback_is_taken_outside_production():
    assert webhooks.check_url("http://127.0.0.1:8080/hook", production=False)
    assert webhooks.check_url("http://localhost/hook", production=False)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "::1",
        "fd00::1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_addresses_are_refused_in_production(address):
    assert webhooks.refused_address(address, production=True)
    assert webhooks.refused_address(address, production=False) is None


def test_public_addresses_are_taken():
    assert webhooks.refused_address("8.8.8.8", production=True) is None


def test_unknown_topics_are_refused():
    assert webhooks.check_topics(["events", "decision", "events"]) == ("decision", "events")
    with pytest.raises(ValidationError):
        webhooks.check_topics(["decisions"])
    with pytest.raises(ValidationError):
        webhooks.check_topics([])
