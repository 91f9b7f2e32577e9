"""Signed webhooks, the parts that need no database: topics, the signature (the Standard
Webhooks scheme), the secret's form, the retry schedule and the rules a target URL must meet.

The signature follows the Standard Webhooks specification: the headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64>``, the HMAC-SHA256
of ``"{id}.{timestamp}.{body}"`` under the secret's bytes; a secret is written
``whsec_<base64>``. Any verifier of that specification checks our deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from tracecore.errors import ValidationError

#: What a subscription may ask for.
#: decision: findings decided (confirmed, dismissed, withdrawn) and regulators' credit records;
#: list: red and black list entries and exits; notice: public notices (the black list);
#: recall: batches recalled; finding: new findings about the subscriber's own parties;
#: events: a batch's or a merchant's events, EPCIS-shaped; exchange: the credit exchange's
#: items (docs/credit-exchange.md) as they become public after due process.
TOPICS = ("decision", "list", "notice", "recall", "finding", "events", "exchange")
#: Public information: every subscriber may have it (the public lists, notices and recalls).
PUBLIC_TOPICS = frozenset({"list", "notice", "recall"})

SECRET_PREFIX = "whsec_"


def secret_bytes(key: str, salt: str) -> bytes:
    """A subscription's signing key: derived from the service's key and the subscription's
    random salt, never stored (a copy of the database signs nothing)."""
    return hmac.new(key.encode(), f"webhook:{salt}".encode(), hashlib.sha256).digest()


def secret_text(key: bytes) -> str:
    """The secret as the subscriber is shown it (once): ``whsec_`` and the key in base64."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256 of
    ``id.timestamp.body``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, now: int, tolerance_s: int = 300):
    """Whether the headers sign ``body`` under ``secret`` (``whsec_…``) within
    ``tolerance_s`` of ``now``: the receiver's side, in ten lines (docs/webhooks.md)."""
    h = {k.lower(): v for k, v in headers.items()}
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    timestamp = int(h["webhook-timestamp"])
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(key, h["webhook-id"], timestamp, body).encode()
    return any(hmac.compare_digest(expected, s.encode()) for s in h["webhook-signature"].split())


@dataclass(frozen=True)
class Retry:
    """When to try again after a failure, and when to give up on the subscription."""

    #: The first wait; each further failure doubles it, up to ``cap``.
    base: timedelta
    cap: timedelta
    #: Disabled after this many failures in a row ...
    max_failures: int
    #: ... or after failing for this long, whichever comes first.
    max_failing: timedelta

    def wait(self, failures: int, rand: Callable[[], float] = random.random) -> timedelta:
        """The wait after the ``failures``-th failure in a row: exponential, capped, with
        jitter (between half and all of it), so receivers coming back are not stampeded."""
        full = min(self.cap, self.base * (2 ** min(failures - 1, 30)))
        return full * (0.5 + 0.5 * rand())

    def give_up(self, failures: int, failing_since: datetime, now: datetime) -> str | None:
        """Why the subscription is disabled now, or None to keep trying."""
        if failures >= self.max_failures:
            return f"{failures} deliveries in a row failed"
        if now - failing_since >= self.max_failing:
            hours = (now - failing_since).total_seconds() / 3600
            return f"deliveries failed for {hours:.1f} hours"
        return None


def check_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """The topics asked for, known and without repeats, in :data:`TOPICS` order."""
    wanted = set(topics)
    unknown = sorted(wanted - set(TOPICS))
    if unknown or not wanted:
        raise ValidationError(
            f"topics are some of: {', '.join(TOPICS)}"
            + (f" (unknown: {', '.join(t[:20] for t in unknown[:3])})" if unknown else ""),
            field="topics",
        )
    return tuple(t for t in TOPICS if t in wanted)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, production: bool) -> str:
    """A target URL a subscription may have: https (http only to a loopback host outside
    production, for development and tests), a host, no credentials, no fragment."""
    if len(url) > 500:
        raise ValidationError("the URL is longer than 500 characters", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValidationError("not a URL", field="url") from None
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise ValidationError("give an https:// URL with a host, no user or #", field="url")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and not production and _loopback(host):
        return url
    raise ValidationError(
        "the URL must be https:// (http:// only to a loopback address outside production)",
        field="url",
    )


def refused_address(address: str, production: bool) -> str | None:
    """Why a resolved address may not be delivered to, or None: in production, no private,
    loopback, link-local, reserved or multicast address (a subscriber may not make the
    service call into its own network); elsewhere anything."""
    if not production:
        return None
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        return f"{ip} is not a public address"
    return None
