"""Sign-in limits: per address and per account, shared by every worker and instance that
shares ``RATE_LIMIT_STORAGE`` (named limits of app/ratelimit.py).

- **Per address** (``SIGN_IN_RATE_LIMIT``, 10 a minute): every attempt from one address,
  whatever the account.
- **Per account** (``SIGN_IN_ACCOUNT_LIMIT``, 5 per 15 minutes): failures only. From an
  address that signed in to the account within ``KNOWN_ADDRESS_S``, they are counted per
  account and that address; from any other address, per account, shared by all such
  addresses (ten addresses guess no faster than one). So guesses from elsewhere never lock
  the owner out of the addresses they use, and a successful sign-in clears the count it was
  counted on. Unknown usernames are counted alike: a refusal tells nothing of who exists.

An attempt is counted before the password is checked and cleared when it is right: parallel
guesses cannot slip past the count, and a refused attempt costs no password hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import render_template

from app.errors import error_response, wants_page
from app.ratelimit import account_key, named_limits

#: How long an address that signed in to an account stays that account's known address.
KNOWN_ADDRESS_S = 30 * 24 * 3600


@dataclass
class Attempt:
    """One sign-in attempt, counted: ``wait`` > 0 when refused (``refused_by`` says by which
    limit: ``"address"`` or ``"account"``), the seconds until it may be tried again."""

    #: The username as the account is known (stripped, lower case).
    account: str
    #: The address and the account, as the known-address mark names them.
    known_key: str
    #: The counter the attempt's failure counts on.
    bucket: str
    wait: int = 0
    refused_by: str = ""

    @classmethod
    def start(cls, username: str, address: str) -> Attempt:
        limits = named_limits()
        account = username.strip().lower()
        known_key = f"{account_key(account)}/{address}"
        known = limits.remembers("sign_in_from", known_key)
        attempt = cls(account, known_key, known_key if known else account_key(account))
        attempt.wait = limits.hit("sign_in_address", address)
        if attempt.wait:
            attempt.refused_by = "address"
            return attempt
        attempt.wait = limits.hit("sign_in_account", attempt.bucket)
        if attempt.wait:
            attempt.refused_by = "account"
        return attempt

    def succeeded(self) -> None:
        """The password was right: the count is cleared, the address becomes known."""
        limits = named_limits()
        limits.clear("sign_in_account", self.bucket)
        limits.remember("sign_in_from", self.known_key, KNOWN_ADDRESS_S)


def too_many(wait: int):
    """429 with ``Retry-After``: the form again, with the reason in Chinese first, for a
    browser; the one error shape for any other client."""
    headers = {"Retry-After": str(wait)}
    if wants_page():
        minutes = math.ceil(wait / 60)
        error = (
            f"登录尝试过多，请 {minutes} 分钟后再试 · "
            f"Too many sign-in attempts; try again in {minutes} min"
        )
        return render_template("workspace/sign_in.html", error=error), 429, headers
    message = f"too many sign-in attempts; try again in {wait} s"
    return error_response(429, "too_many_requests", message, headers=headers)
