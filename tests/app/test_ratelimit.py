"""The in-process rate-limit storage: the same counting as limits' MemoryStorage, without a
timer thread started every 10 ms."""

import threading
import time

from limits import parse
from limits.strategies import FixedWindowRateLimiter

from app.ratelimit import SCHEME, InlineExpiryMemoryStorage


def test_the_app_counts_its_limits_in_the_inline_storage(app):
    limiter = app.extensions["limiter"]
    storage = next(iter(limiter)) if isinstance(limiter, set) else limiter
    assert isinstance(storage.storage, InlineExpiryMemoryStorage)
    assert SCHEME.startswith("trace-memory")


def test_a_limit_holds_in_its_window_and_resets_after_it(monkeypatch):
    storage = InlineExpiryMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    two_a_second = parse("2 per 1 second")
    assert limiter.hit(two_a_second, "client") and limiter.hit(two_a_second, "client")
    assert not limiter.hit(two_a_second, "client")
    assert limiter.hit(two_a_second, "another client")
    time.sleep(1.05)
    assert limiter.hit(two_a_second, "client")


def test_expired_counters_are_dropped_without_a_timer_thread(monkeypatch):
    storage = InlineExpiryMemoryStorage()
    time.sleep(0.05)  # the one timer MemoryStorage starts when it is made has run
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self))
    for n in range(100):
        storage.incr(f"client {n}", expiry=0.01)
    time.sleep(0.05)
    assert len(storage.storage) == 100  # expired, not yet dropped: cleaning is once a second
    storage._next_clean = 0.0  # as if a second had passed
    storage.incr("one more", expiry=60)
    assert set(storage.storage) == {"one more"} and started == []
