"""The rate limits: named limits a view checks for a key of its choosing (sign-in), and the
public limit with its speed-ups (``SPEEDUPS=on``; see docs/performance.md).

Every limit counts in Flask-Limiter's storage (``RATE_LIMIT_STORAGE``): with Redis, every
worker and instance shares the counters; ``memory://`` counts in one process only, which is
why production refuses it with more than one worker (config.py).

Named limits (:class:`NamedLimits`, reached with :func:`named_limits`): ``create_app``
defines each by name and limit string; a view then calls :func:`check` (count one, answer
429 with ``Retry-After`` when over), or ``hit``/``test``/``clear`` for finer control, for a
key it chooses: a client's address, an account, both. ::

    named_limits(app).define("sign_in_address", "10 per minute")   # in create_app
    check("sign_in_address", client_address())                      # in a view

The public limit: one counter per client for each group of endpoints that serve the same
answer (:func:`public_scope`: a unit's page by ``/t/`` or ``/01/``, its API answer, lookup
and label images share one), one per endpoint for the others. With ``SPEEDUPS=off`` it is
Flask-Limiter's documented shared blueprint limit, with that scope, on limits' own storage
(:class:`DocumentedLimit`). With the speed-ups,
measured to carry the scan's goal (about a quarter of a JSON scan's app CPU), the same limit
is checked by :class:`PublicLimit` and counted in :class:`InlineExpiryMemoryStorage`: both
use Flask-Limiter's and limits' private names, pinned (pyproject.toml) and tested against
the libraries' own behaviour (tests/app/test_ratelimit.py).

With Redis (``RATE_LIMIT_STORAGE=redis://…``) and the speed-ups, the public limit counts and
reads its counter's expiry (for the ``X-RateLimit-Reset`` header) in one round trip, a Lua
script registered with redis-py's ``register_script`` on the storage's own connection
(:class:`RedisCounter`), instead of limits' ``incr`` and ``get_expiry``, two round trips.

The in-process storage (``RATE_LIMIT_STORAGE=memory://``):

limits' ``MemoryStorage`` starts a new timer thread, to drop expired counters, whenever the
last one has finished, at most every 10 ms: under load that is a thread start every 10 ms
per process, about a tenth of a consumer scan's CPU (py-spy, bench/bench_consumer.py).
The counters do not need it: a counter past its window is dropped when it is next read.
This storage does the same cleaning in the request's thread, at most once a second.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import ClassVar

from flask import Flask, current_app, g, request
from flask.globals import request_ctx
from limits import parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

#: The scheme :func:`app.create_app` gives Flask-Limiter for ``memory://``.
SCHEME = "trace-memory://"


class InlineExpiryMemoryStorage(MemoryStorage):
    """``MemoryStorage`` whose expired counters are dropped inline, once a second."""

    STORAGE_SCHEME: ClassVar[list[str]] = ["trace-memory"]
    CLEAN_EVERY_S = 1.0

    def __init__(self, uri: str | None = None, **options) -> None:
        super().__init__(uri, **options)
        self._next_clean = time.monotonic() + self.CLEAN_EVERY_S
        self._cleaning = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer thread
        now = time.monotonic()
        if now < self._next_clean or not self._cleaning.acquire(blocking=False):
            return
        try:
            self._next_clean = now + self.CLEAN_EVERY_S
            self._MemoryStorage__expire_events()
        finally:
            self._cleaning.release()


class RedisCounter:
    """Fixed windows' counters in limits' Redis storage, counted and their expiry read in one
    round trip for all the limits of a request: the same keys (the storage's
    ``prefixed_key``), the same counts and expiries as limits' ``RedisStorage.incr`` and
    ``get_expiry`` one limit after the other, stopping at the first limit broken as
    Flask-Limiter does (tested against them); through the storage's own connection
    (``get_connection``) and a script redis-py registers (``register_script``: ``EVALSHA``,
    loaded again if Redis has forgotten it)."""

    #: limits' ``incr_expire.lua`` for each key in turn, answering the count and the time to
    #: live of each key counted; ARGV holds each key's expiry and limit.
    SCRIPT = """
local answer = {}
for i, key in ipairs(KEYS) do
    local current = redis.call("incrby", key, 1)
    if current == 1 then
        redis.call("expire", key, ARGV[2 * i - 1])
    end
    answer[#answer + 1] = current
    answer[#answer + 1] = redis.call("ttl", key)
    if current > tonumber(ARGV[2 * i]) then
        break
    end
end
return answer
"""

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._script = storage.get_connection().register_script(self.SCRIPT)

    def hit(self, keys: list[str], items: list) -> list[tuple[int, float]]:
        """Count one under each key (a window of its item's expiry from its first count),
        in order, up to and including the first whose count passes its item's amount: each
        counted key's count, and when its window resets (epoch seconds, as ``get_expiry``)."""
        args: list[int] = []
        for item in items:
            args += (item.get_expiry(), item.amount)
        flat = self._script([self._storage.prefixed_key(k) for k in keys], args)
        now = time.time()
        return [(int(flat[i]), max(int(flat[i + 1]), 0) + now) for i in range(0, len(flat), 2)]


def one_trip_counter(storage) -> RedisCounter | None:
    """The one-trip counter for limits' Redis storage (and its sentinel and cluster kinds);
    None for any other storage, which is counted as limits counts it."""
    return RedisCounter(storage) if isinstance(storage, RedisStorage) else None


# -- named limits, checked by the views themselves ---------------------------------------------


class NamedLimits:
    """Limits defined by name and checked for a key (``create_app`` keeps one per app, made
    on Flask-Limiter's limiter: its storage and strategy, so its sharing between workers).
    Counters are keyed ``trace/<name>/<key>``; a key may be anything printable."""

    def __init__(self, limiter) -> None:
        self._limiter = limiter
        self._items: dict[str, list] = {}

    def define(self, name: str, limit: str) -> None:
        """``limit`` in Flask-Limiter's syntax, e.g. ``"10 per minute; 100 per hour"``."""
        self._items[name] = sorted(parse_many(limit))

    def hit(self, name: str, key: str) -> int:
        """Count one for ``key``: 0 when it is within every window of ``name``, else the
        seconds until the fullest window it broke resets (a ``Retry-After``)."""
        strategy = self._limiter.limiter
        wait = 0
        for item in self._items[name]:
            if not strategy.hit(item, "trace", name, key):
                wait = max(wait, self._reset_in(item, name, key))
        return wait

    def test(self, name: str, key: str) -> int:
        """What :meth:`hit` would answer for one more, without counting it."""
        strategy = self._limiter.limiter
        wait = 0
        for item in self._items[name]:
            if not strategy.test(item, "trace", name, key):
                wait = max(wait, self._reset_in(item, name, key))
        return wait

    def clear(self, name: str, key: str) -> None:
        """Forget what ``key`` has counted under ``name``."""
        for item in self._items[name]:
            self._limiter.limiter.clear(item, "trace", name, key)

    def remember(self, name: str, key: str, seconds: int) -> None:
        """Keep a mark (``name``, ``key``) for ``seconds`` in the same storage."""
        self._limiter.limiter.storage.incr(f"trace/{name}/{key}", seconds)

    def remembers(self, name: str, key: str) -> bool:
        """Is the mark (``name``, ``key``) kept and not yet expired?"""
        return self._limiter.limiter.storage.get(f"trace/{name}/{key}") > 0

    def _reset_in(self, item, name: str, key: str) -> int:
        reset_at, _ = self._limiter.limiter.get_window_stats(item, "trace", name, key)
        return max(1, math.ceil(reset_at - time.time()))


def named_limits(app: Flask | None = None) -> NamedLimits:
    """The app's named limits (the current app's by default)."""
    return (app or current_app).extensions["trace_limits"]


def check(name: str, key: str, message: str = "too many requests; try again later") -> None:
    """Count one request of ``key`` against the limit ``name``; over it, a 429 in the one
    error shape with ``Retry-After`` (werkzeug's ``TooManyRequests``)."""
    wait = named_limits().hit(name, key)
    if wait:
        raise TooManyRequests(f"{message} (in {wait} s)", retry_after=wait)


def storage_unavailable(exc: Exception):
    """The rate-limit storage (Redis) did not answer: a limit could not be counted, so the
    request was not served; nothing was saved. 503 with ``Retry-After`` in the one error
    shape (not a 500): the client may simply try again once Redis is back."""
    from app.errors import error_response

    current_app.logger.warning("rate-limit storage unavailable: %s", exc)
    return error_response(
        503,
        "rate_limit_storage_unavailable",
        "The rate-limit storage does not answer; nothing was saved. Try again.",
        headers={"Retry-After": "1"},
    )


def account_key(account: str) -> str:
    """A fixed-length key for an account name (a username as typed): never reveals it in
    the storage, never clashes with the separators of a composite key."""
    return hashlib.blake2b(account.encode(), digest_size=16).hexdigest()


# -- the public limit ----------------------------------------------------------------------------


def public_scope(groups: dict[str, Iterable[str]]) -> Callable[[str], str]:
    """The public limit's scope of an endpoint: the name of its group when ``groups`` lists
    it (an endpoint, or ``"blueprint.*"`` for every endpoint of a blueprint), else the
    endpoint itself (a counter of its own, as Flask-Limiter's blueprint limit keeps)."""
    members: dict[str, str] = {}
    blueprints: dict[str, str] = {}
    for group, names in groups.items():
        for name in names:
            if name.endswith(".*"):
                blueprints[name[:-2]] = group
            else:
                members[name] = group
    found: dict[str, str] = {}

    def scope_of(endpoint: str) -> str:
        scope = found.get(endpoint)
        if scope is None:
            blueprint = endpoint.rpartition(".")[0]
            scope = members.get(endpoint) or blueprints.get(blueprint) or endpoint
            found[endpoint] = scope
        return scope

    return scope_of


def storage_uri(configured: str, speedups: bool) -> str:
    """What Flask-Limiter is given as its storage: the inline-expiry storage in place of
    ``memory://`` with the speed-ups, else the setting as it is."""
    return SCHEME if speedups and configured.startswith("memory://") else configured


def public_limit(limiter, limit: str, key_func, speedups: bool, scope_of=None):
    """The public limit: :class:`PublicLimit` with the speed-ups, else :class:`DocumentedLimit`.
    Both are used alike: ``apply(app, bp)`` per blueprint, then ``take_over(app)`` once.
    ``scope_of`` (:func:`public_scope`) names each endpoint's counter; none: the endpoint."""
    scope_of = scope_of or public_scope({})
    if speedups:
        return PublicLimit(limiter, limit, key_func, scope_of)
    return DocumentedLimit(limiter, limit, scope_of)


class DocumentedLimit:
    """Flask-Limiter's documented shared blueprint limit, scoped per endpoint group
    (``limiter.shared_limit(limit, scope=scope_of)(bp)``)."""

    def __init__(self, limiter, limit: str, scope_of) -> None:
        self._decorate = limiter.shared_limit(limit, scope=scope_of)

    def apply(self, app, bp) -> None:
        self._decorate(bp)

    def take_over(self, app) -> None:
        """Nothing to take over: Flask-Limiter's own hooks check the limit."""


class PublicLimit:
    """The public pages' limit (``PUBLIC_RATE_LIMIT``) per client and endpoint group, checked
    by the blueprints' own hooks instead of Flask-Limiter's general resolution (blueprint
    limits, exemption scopes and ancestors worked out again on every request: about a tenth
    of a consumer scan's CPU). The same counters as Flask-Limiter's shared blueprint limit (its
    storage, strategy, keys ``LIMITER/{address}/{scope}/…``), the same ``X-RateLimit-*`` headers,
    and the same 429 (Flask-Limiter's ``RateLimitExceeded``); Flask-Limiter skips these
    blueprints (:meth:`take_over`) and keeps every other limit."""

    def __init__(
        self, limiter, limit_string: str, key_func, scope_of=None, *, one_trip: bool = True
    ) -> None:
        """``one_trip=False`` counts in Redis as limits does (``incr``, then ``get_expiry``
        for the headers): bench/bench_ratelimit.py's baseline."""
        from flask_limiter import RateLimitExceeded
        from flask_limiter._limits import RuntimeLimit

        self._limiter = limiter
        self._key_func = key_func
        self._scope_of = scope_of or public_scope({})
        self._exceeded = RateLimitExceeded
        self._items = sorted(parse_many(limit_string))
        self._runtime = {item: RuntimeLimit(item, key_func, None) for item in self._items}
        self._blueprints: set[str] = set()
        #: (storage, its one-trip counter or None), found on the first request.
        self._counter: tuple[object, RedisCounter | None] = (None, None)
        self._one_trip_wanted = one_trip

    def take_over(self, app) -> None:
        """Flask-Limiter's own hooks in ``app`` (check, headers, context reset: about a tenth
        of a consumer scan's CPU even with nothing to limit) skip the requests of the
        blueprints this limit applies to. For the other requests, its check runs whenever it
        has a limit that applies without a decorator (default, application, meta, another
        blueprint's, in-memory fallback), its headers and context reset whenever it kept
        something for the request (a decorated view's limit, such as sign-in's): every other
        limit holds as before, and a request with none (``/healthz``) pays nothing."""
        limiter, ours = self._limiter, self._blueprints
        manager = limiter.limit_manager

        def limiters(hook) -> bool:
            return getattr(hook, "__self__", None) is limiter or (
                isinstance(hook, functools.partial) and limiter in hook.args
            )

        def checks_without_decorator() -> bool:
            # What Flask-Limiter's before_request hook can find for a request (its
            # __filter_limits and __evaluate_limits); the decorated limits check themselves.
            return bool(
                manager._application_limits
                or manager._default_limits
                or limiter._meta_limits
                or limiter._in_memory_fallback
                or not ours.issuperset(manager._blueprint_limits)
            )

        def kept_something() -> bool:
            # Flask-Limiter keeps what a request hit in a context on the request's context,
            # made on first use (its ``context`` property).
            return hasattr(request_ctx._get_current_object(), "_limiter_request_context")

        def before(hook):
            def limiters_before_request():
                if request.blueprint not in ours and checks_without_decorator():
                    return hook()
                return None

            return limiters_before_request

        def after(hook):
            def limiters_after_request(response):
                if kept_something() and request.blueprint not in ours:
                    return hook(response)
                return response

            return limiters_after_request

        def teardown(hook):
            def limiters_teardown_request(exc=None):
                if kept_something() and request.blueprint not in ours:
                    hook(exc)

            return limiters_teardown_request

        for table, wrap in (
            (app.before_request_funcs, before),
            (app.after_request_funcs, after),
            (app.teardown_request_funcs, teardown),
        ):
            hooks = table.get(None, [])
            found = [h for h in hooks if limiters(h)]
            if not found:
                raise RuntimeError("Flask-Limiter's hooks were not found: update take_over")
            table[None] = [wrap(h) if limiters(h) else h for h in hooks]

    def apply(self, app, bp) -> None:
        """Limit every view of ``bp`` in ``app`` (the hooks are the app's, for the blueprint:
        blueprints are shared by every app built in the process)."""
        self._blueprints.add(bp.name)
        app.before_request_funcs.setdefault(bp.name, []).append(self.check)
        app.after_request_funcs.setdefault(bp.name, []).append(self.headers)

    def check(self) -> None:
        limiter = self._limiter
        endpoint = request.endpoint
        if not (limiter.enabled and limiter.initialized) or not endpoint:
            return
        args = [*([limiter._key_prefix] if limiter._key_prefix else ()), self._key_func()]
        args.append(self._scope_of(endpoint))
        strategy = limiter.limiter
        # The fixed window (the default strategy) counts straight in the storage: the count
        # the hit returns is what the headers tell, and the key is made once, not thrice.
        fixed = type(strategy) is FixedWindowRateLimiter
        counter = self._one_trip(strategy.storage) if fixed else None
        counted = None
        if counter is not None:  # every window counted, its expiry read, in one round trip
            keys = [item.key_for(*args) for item in self._items]
            counted = counter.hit(keys, self._items)
        breached = None
        for n, item in enumerate(self._items):
            if counted is not None:
                count, reset_at = counted[n]
                found = (item, args, keys[n], count, reset_at)
                allowed = count <= item.amount
            elif fixed:
                key = item.key_for(*args)
                count = strategy.storage.incr(key, item.get_expiry())
                found = (item, args, key, count, None)
                allowed = count <= item.amount
            else:
                found = (item, args, None, None, None)
                allowed = strategy.hit(item, *args)
            if item is self._items[0]:  # the headers tell the first limit, or the breached
                g.public_limit = found
            if not allowed:
                limiter.logger.info(
                    "ratelimit %s (%s) exceeded at endpoint: %s", item, args[-2], args[-1]
                )
                breached = item
                g.public_limit = found
                break
        if breached is not None:
            raise self._exceeded(self._runtime[breached])

    def _one_trip(self, storage) -> RedisCounter | None:
        known, counter = self._counter
        if known is not storage:  # the first request (or Flask-Limiter's storage was reset)
            counter = one_trip_counter(storage) if self._one_trip_wanted else None
            self._counter = (storage, counter)
        return counter

    def headers(self, response):
        found = g.get("public_limit")
        if found is None:
            return response
        item, args, key, count, reset_at = found
        if key is None:
            reset_at, remaining = self._limiter.limiter.get_window_stats(item, *args)
        else:
            if reset_at is None:
                reset_at = self._limiter.limiter.storage.get_expiry(key)
            remaining = max(0, item.amount - count)
        reset_at = int(reset_at + 1)
        headers = response.headers
        headers.add("X-RateLimit-Limit", str(item.amount))
        headers.add("X-RateLimit-Remaining", str(remaining))
        headers.add("X-RateLimit-Reset", str(reset_at))
        existing = headers.get("Retry-After")  # a view's own (503) wins if later
        if existing is None:  # as set() would, without looking for it again
            headers.add("Retry-After", str(int(reset_at - time.time())))
            return response
        from werkzeug.http import parse_date

        retry_after = parse_date(existing)
        if retry_after is None:
            retry_after = time.time() + int(existing)
        if isinstance(retry_after, datetime):
            retry_after = time.mktime(retry_after.timetuple())
        reset_at = max(int(retry_after), reset_at)
        headers.set("Retry-After", str(int(reset_at - time.time())))
        return response
