"""Rate limits through Flask-Limiter's documented API: the public pages' and answers'
``PUBLIC_RATE_LIMIT`` is its blueprint limit, counted in limits' storage (``memory://`` or
Redis); sign-in keeps its own decorated limit."""

import time

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter


def test_the_app_counts_its_limits_in_limits_memory_storage(app):
    limiter = app.extensions["limiter"]
    storage = next(iter(limiter)) if isinstance(limiter, set) else limiter
    assert type(storage.storage) is MemoryStorage


def test_a_limit_holds_in_its_window_and_resets_after_it(monkeypatch):
    storage = MemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    two_a_second = parse("2 per 1 second")
    assert limiter.hit(two_a_second, "client") and limiter.hit(two_a_second, "client")
    assert not limiter.hit(two_a_second, "client")
    assert limiter.hit(two_a_second, "another client")
    time.sleep(1.05)
    assert limiter.hit(two_a_second, "client")


def _limited_app(storage_uri: str, limit: str = "3 per minute; 4 per hour"):
    """An app whose blueprint is limited as app.create_app limits the public pages."""
    from flask import Blueprint, Flask
    from flask_limiter import Limiter

    flask_app = Flask("limited")
    flask_app.config.update(RATELIMIT_STORAGE_URI=storage_uri, RATELIMIT_HEADERS_ENABLED=True)
    limiter = Limiter(lambda: "192.0.2.1", app=flask_app, key_prefix="limited")
    bp = Blueprint("pages", "limited")

    @bp.get("/a")
    def a():
        return "a"

    @bp.get("/late")
    def late():
        return "late", 503, {"Retry-After": "3600"}

    limiter.limit(limit)(bp)
    flask_app.register_blueprint(bp)

    @flask_app.get("/free")
    def free():
        return "free"

    return flask_app, limiter


LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")


@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379/15"])
def test_the_public_limit_answers_per_endpoint_with_its_headers(storage):
    """Statuses and headers of the public blueprint's limit (a view's own later Retry-After
    kept), a budget per endpoint, the counters in the storage, no limit outside it."""
    if storage.startswith("redis"):
        redis = pytest.importorskip("redis")
        try:
            redis.Redis.from_url(storage).flushdb()
        except redis.exceptions.ConnectionError:
            pytest.skip("no Redis on 127.0.0.1:6379")
    flask_app, limiter = _limited_app(storage)
    client = flask_app.test_client()
    ours = []
    for path in ["/a"] * 5 + ["/late"] * 2 + ["/free"] * 6:
        resp = client.get(path)
        ours.append((path, resp.status_code, *(resp.headers.get(h) for h in LIMIT_HEADERS)))
    remaining = limiter.limiter.get_window_stats(
        parse("3 per minute"), "limited", "192.0.2.1", "pages.a"
    ).remaining
    assert [a[1] for a in ours][:7] == [200, 200, 200, 429, 429, 503, 503]
    assert [a[2] for a in ours][:3] == ["3", "3", "3"]
    assert [a[3] for a in ours][:3] == ["2", "1", "0"]
    assert int(ours[5][-1]) > 3000  # the view's Retry-After, not the window's
    assert ours[-1][2] is None  # outside the blueprint: no limit
    assert remaining == 0


def test_flask_limiter_still_limits_sign_in_and_leaves_the_public_pages_alone(database_url):
    """The sign-in form keeps its own limit and headers beside the public pages' limit; a
    scan carries one set of headers."""
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
        codes = [client.post("/workspace/sign-in", data=form).status_code for _ in range(3)]
        assert codes[-1] == 429 and 429 not in codes[:2]
        resp = client.post("/workspace/sign-in", data=form)
        assert resp.headers.getlist("X-RateLimit-Limit") == ["2"]
        resp = client.get("/t/AAAAAAAAAAAAAAAA", headers={"Accept": "application/json"})
        assert resp.status_code == 404
        assert resp.headers.getlist("X-RateLimit-Limit") == ["5"]
        assert resp.headers.getlist("X-RateLimit-Remaining") == ["4"]
    finally:
        limited.extensions["trace"].engine.dispose()


@pytest.mark.parametrize("kind", ["default", "application", "blueprint", "decorated"])
def test_flask_limiters_other_limits_hold_outside_the_public_blueprint(kind):
    """Beside the public blueprint's limit, a default, application, other blueprint's or
    decorated limit still limits the other views, with its headers; a view without one
    gets no headers."""
    from flask import Blueprint, Flask
    from flask_limiter import Limiter

    flask_app = Flask(kind)
    flask_app.config.update(RATELIMIT_STORAGE_URI="memory://", RATELIMIT_HEADERS_ENABLED=True)
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
    limiter.limit("5 per minute")(pages)
    flask_app.register_blueprint(pages)
    flask_app.register_blueprint(other)
    flask_app.get("/free")(lambda: "free")
    client = flask_app.test_client()

    answers = [client.get("/b") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert [r.headers.get("X-RateLimit-Remaining") for r in answers[:2]] == ["1", "0"]
    a = client.get("/a")
    if kind == "application":  # an application limit holds for every view, /a's too
        assert a.status_code == 429
    else:
        assert a.headers.getlist("X-RateLimit-Limit") == ["5"]
    free = client.get("/free")
    if kind in ("blueprint", "decorated"):
        assert free.status_code == 200 and "X-RateLimit-Limit" not in free.headers
