"""The in-process rate-limit storage: the same counting as limits' MemoryStorage, without a
timer thread started every 10 ms."""

import threading
import time

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from app.ratelimit import SCHEME, InlineExpiryMemoryStorage
from tests.app.conftest import post_sign_in


def test_the_app_counts_its_limits_in_the_inline_storage_with_the_speedups(app):
    """With SPEEDUPS=off, limits' own MemoryStorage (Flask-Limiter's documented setup)."""
    limiter = app.extensions["limiter"]
    storage = next(iter(limiter)) if isinstance(limiter, set) else limiter
    if app.extensions["trace"].config.SPEEDUPS == "on":
        assert isinstance(storage.storage, InlineExpiryMemoryStorage)
    else:
        assert type(storage.storage) is MemoryStorage
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


def _twin_apps(storage_uri: str):
    """Two apps alike but for how one blueprint is limited: Flask-Limiter's shared blueprint
    limit scoped per group of endpoints (DocumentedLimit, SPEEDUPS=off) and
    app.ratelimit.PublicLimit (SPEEDUPS=on); ``/a`` and ``/b`` are one group."""
    from flask import Blueprint, Flask
    from flask_limiter import Limiter

    from app.ratelimit import PublicLimit, public_scope

    scope_of = public_scope({"group": ["pages.a", "pages.b"]})
    apps = []
    for kind in ("flask-limiter", "public-limit"):
        flask_app = Flask(kind)
        flask_app.config.update(RATELIMIT_STORAGE_URI=storage_uri, RATELIMIT_HEADERS_ENABLED=True)
        limiter = Limiter(lambda: "192.0.2.1", app=flask_app, key_prefix=kind)
        bp = Blueprint("pages", kind)

        @bp.get("/a")
        def a():
            return "a"

        @bp.get("/b")
        def b():
            return "b"

        @bp.get("/late")
        def late():
            return "late", 503, {"Retry-After": "3600"}

        if kind == "flask-limiter":
            limiter.shared_limit("3 per minute; 4 per hour", scope=scope_of)(bp)
        else:
            public = PublicLimit(limiter, "3 per minute; 4 per hour", lambda: "192.0.2.1", scope_of)
            public.apply(flask_app, bp)
            public.take_over(flask_app)
        flask_app.register_blueprint(bp)

        @flask_app.get("/free")
        def free():
            return "free"

        apps.append((flask_app, limiter))
    return apps


LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")


@pytest.mark.parametrize("storage", ["trace-memory://", "redis://127.0.0.1:6379/15"])
def test_public_limit_answers_as_flask_limiters_blueprint_limit(storage):
    """Same statuses, same headers (a view's own later Retry-After kept), the same counter
    keys in the storage, a budget per group of endpoints (else per endpoint), and no limit
    outside the blueprint."""
    if storage.startswith("redis"):
        redis = pytest.importorskip("redis")
        try:
            redis.Redis.from_url(storage).flushdb()
        except redis.exceptions.ConnectionError:
            pytest.skip("no Redis on 127.0.0.1:6379")
    seen = []
    for flask_app, limiter in _twin_apps(storage):
        client = flask_app.test_client()
        answers = []
        for path in ["/a"] * 2 + ["/b"] * 3 + ["/late"] * 2 + ["/free"] * 6:
            resp = client.get(path)
            answers.append((path, resp.status_code, *(resp.headers.get(h) for h in LIMIT_HEADERS)))
        stats = limiter.limiter.get_window_stats(
            parse("3 per minute"), limiter._key_prefix, "192.0.2.1", "group"
        )
        seen.append((answers, stats.remaining))
    (reference, ref_remaining), (ours, remaining) = seen
    assert [a[:3] for a in ours] == [a[:3] for a in reference]
    assert [a[1] for a in ours][:7] == [200, 200, 200, 429, 429, 503, 503]
    assert (
        ours == reference
        or all(  # the reset times may straddle a second
            abs(int(x) - int(y)) <= 1
            for a, b in zip(ours, reference, strict=True)
            for x, y in zip(a[3:], b[3:], strict=True)
            if x is not None
        )
    )
    assert int(ours[5][-1]) > 3000  # the view's Retry-After, not the window's
    assert ours[-1][2] is None  # outside the blueprint: no limit
    assert remaining == ref_remaining == 0


def test_sign_in_keeps_its_own_limit_beside_the_public_limit(database_url):
    """The sign-in form's limit (a named limit, checked by its view) and the public limit
    (PublicLimit.take_over skipping Flask-Limiter's hooks) hold side by side: a scan carries
    one set of headers, the public limit's."""
    from app import create_app

    limited = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "SIGN_IN_RATE_LIMIT": "2 per minute",
            "PUBLIC_RATE_LIMIT": "5 per minute",
        }
    )
    try:
        client = limited.test_client()
        form = {"username": "nobody", "password": "wrong"}
        codes = [post_sign_in(client, form).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        resp = client.get("/t/AAAAAAAAAAAAAAAA", headers={"Accept": "application/json"})
        assert resp.status_code == 404
        assert resp.headers.getlist("X-RateLimit-Limit") == ["5"]
        assert resp.headers.getlist("X-RateLimit-Remaining") == ["4"]
    finally:
        limited.extensions["trace"].engine.dispose()


@pytest.mark.parametrize("kind", ["default", "application", "blueprint", "decorated"])
def test_flask_limiters_other_limits_hold_outside_the_public_blueprint(kind):
    """PublicLimit.take_over skips Flask-Limiter's hooks on a request only when they have
    nothing to do: a default, application, other blueprint's or decorated limit still
    limits the other views, with its headers; a view without one gets no headers."""
    from flask import Blueprint, Flask
    from flask_limiter import Limiter

    from app.ratelimit import PublicLimit

    flask_app = Flask(kind)
    flask_app.config.update(RATELIMIT_STORAGE_URI=SCHEME, RATELIMIT_HEADERS_ENABLED=True)
    limiter = Limiter(
        lambda: "192.0.2.1",
        app=flask_app,
        default_limits=["2 per minute"] if kind == "default" else [],
        application_limits=["2 per minute"] if kind == "application" else [],
    )
    pages, other = Blueprint("pages", kind), Blueprint("other", kind)
    pages.get("/a")(lambda: "a")

    def view():
        return "b"

    other.get("/b")(limiter.limit("2 per minute")(view) if kind == "decorated" else view)
    if kind == "blueprint":
        limiter.limit("2 per minute")(other)
    public = PublicLimit(limiter, "5 per minute", lambda: "192.0.2.1")
    public.apply(flask_app, pages)
    public.take_over(flask_app)
    flask_app.register_blueprint(pages)
    flask_app.register_blueprint(other)
    flask_app.get("/free")(lambda: "free")
    client = flask_app.test_client()

    answers = [client.get("/b") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers.get("X-RateLimit-Remaining") for r in answers[:2]] == ["1", "0"]
    assert client.get("/a").headers.getlist("X-RateLimit-Limit") == ["5"]
    free = client.get("/free")
    if kind in ("blueprint", "decorated"):
        assert free.status_code == 200 and "X-RateLimit-Limit" not in free.headers


def _redis_storage(key_prefix: str):
    """limits' own Redis storage on database 15 (this module's), or a skip without Redis."""
    redis = pytest.importorskip("redis")
    from limits.storage import RedisStorage

    storage = RedisStorage("redis://127.0.0.1:6379/15", key_prefix=key_prefix)
    try:
        storage.get_connection().ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return storage


def test_the_one_trip_counter_counts_and_expires_as_limits_does():
    """Does the one-trip counter keep the counts and expiries limits' own ``incr`` and
    ``get_expiry`` keep, in the same keys, counting on from each other's counts, and stop
    at the first limit broken (the later ones not counted, as Flask-Limiter does)?"""
    import uuid

    from app.ratelimit import RedisCounter

    storage = _redis_storage(f"test-{uuid.uuid4().hex}")
    counter = RedisCounter(storage)
    minute, hour = parse("3 per minute"), parse("5 per hour")
    ours = [f"ours-{uuid.uuid4().hex}", f"ours-{uuid.uuid4().hex}"]
    theirs = [f"theirs-{uuid.uuid4().hex}", f"theirs-{uuid.uuid4().hex}"]
    pttl = storage.get_connection().pttl
    try:
        for n in range(1, 4):
            counted = counter.hit(ours, [minute, hour])
            assert [c for c, _ in counted] == [n, n]
            for key, item in zip(theirs, (minute, hour), strict=True):
                assert storage.incr(key, item.get_expiry()) == n
            for (_, reset_at), key in zip(counted, theirs, strict=True):
                assert abs(reset_at - storage.get_expiry(key)) <= 1
        assert [round(r - time.time(), -1) for _, r in counted] == [60, 3600]
        assert counter.hit(ours, [minute, hour])[0][0] == 4  # the minute is broken:
        assert storage.get(ours[1]) == 3  # the hour is not counted
        assert storage.incr(ours[0], 60) == 5 and storage.get(ours[0]) == 5
        time.sleep(1.1)
        counter.hit(ours, [minute, hour])
        assert pttl(storage.prefixed_key(ours[0])) < 59_000  # the window is not extended
        short = [f"short-{uuid.uuid4().hex}"]
        assert counter.hit(short, [parse("9 per second")])[0][0] == 1
        time.sleep(2.1)
        assert counter.hit(short, [parse("9 per second")])[0][0] == 1  # a new window
    finally:
        for key in (*ours, *theirs):
            storage.clear(key)


def test_the_public_limit_makes_one_round_trip_to_redis_a_request():
    """Does a limited request cost one command to Redis (it took two: ``incr``, then
    ``ttl`` for the X-RateLimit-Reset header), with the headers Flask-Limiter gives?"""
    import uuid
    from unittest import mock

    _redis_storage("probe")
    flask_app, limiter = _twin_apps("redis://127.0.0.1:6379/15")[1]
    limiter._key_prefix = f"test-{uuid.uuid4().hex}"
    client = flask_app.test_client()
    client.get("/a")  # the script is registered and loaded on the first request
    connection = limiter.limiter.storage.get_connection()
    with mock.patch.object(connection, "execute_command", wraps=connection.execute_command) as sent:
        resp = client.get("/b")
    assert resp.status_code == 200
    assert [c.args[0] for c in sent.call_args_list] == ["EVALSHA"]
    assert resp.headers["X-RateLimit-Remaining"] == "1"
    assert 58 <= int(resp.headers["X-RateLimit-Reset"]) - time.time() <= 61
