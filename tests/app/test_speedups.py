"""The speed layer (docs/performance.md): SPEEDUPS=off runs the libraries' own code, and each
library internal still used does what the library does (the paho read path is checked in
tests/devices/test_worker_failures.py)."""

import sqlite3

import pytest
import sqlalchemy as sa

from config import ConfigError, load_config


def test_speedups_is_on_or_off():
    assert load_config({"SECRET_KEY": "k"}, environ={}).SPEEDUPS == "on"
    assert load_config({"SECRET_KEY": "k"}, environ={"SPEEDUPS": "off"}).SPEEDUPS == "off"
    with pytest.raises(ConfigError, match="SPEEDUPS"):
        load_config({"SECRET_KEY": "k"}, environ={"SPEEDUPS": "fast"})


@pytest.mark.parametrize("speedups", [True, False])
def test_speedups_off_gives_the_ingest_worker_pahos_own_read_path(app, speedups):
    import paho.mqtt.client as mqtt

    from app.ingest import mqtt_client
    from app.ingest.worker import BrokerAddress, Worker

    worker = Worker(
        app.extensions["trace"].sessionmaker,
        "k",
        BrokerAddress.parse("mqtt://127.0.0.1:1"),
        client_id="speedups-test",
        speedups=speedups,
    )
    cls = type(worker.client)
    assert cls is (mqtt_client.Client if speedups else mqtt_client.PausingClient)
    own = ("_handle_publish", "_handle_on_message")
    assert all((getattr(cls, n) is getattr(mqtt.Client, n)) is not speedups for n in own)


def test_the_pool_renews_its_connections_after_the_scans_invalidation(tmp_path):
    """app.consumer.operations calls the pool's private ``_invalidate`` with a connection
    from outside the pool when the server dropped it: SQLAlchemy's own disconnect handling,
    which renews every pooled connection made before then at its next checkout."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=sa.pool.QueuePool)
    try:
        with engine.connect() as conn:
            before = conn.connection.dbapi_connection
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is before  # pooled, reused
        outside = sqlite3.connect(tmp_path / "pool.db")  # not a pool's record
        engine.pool._invalidate(outside, Exception("server closed the connection"))
        outside.close()
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is not before
    finally:
        engine.dispose()


def test_responses_reach_the_server_as_werkzeugs_would(app):
    """The speed layer's Response hands the server the same status, headers and body as
    werkzeug's own, for the statuses and headers werkzeug fixes up and for those it leaves
    alone."""
    import flask
    from werkzeug.test import EnvironBuilder

    from app.wrappers import Response

    speedups = app.extensions["trace"].config.SPEEDUPS == "on"
    assert app.response_class is (Response if speedups else flask.Response)

    def streamed():
        yield b"a"
        yield b"bc"

    cases = [
        (b'{"a": 1}', 200, {"Content-Type": "application/json"}),
        ("页面", 200, {"X-Custom": "1", "Set-Cookie": "a=b"}),
        (b"x", 200, {"Content-Length": "1"}),
        (b"", 302, {"Location": "/t/ABC?x=页"}),
        (b"", 201, {"Content-Location": "/api/v1/批次/1"}),
        (["a", "页"], 200, {}),
        (b"", 204, {"Content-Length": "0"}),
        (b"", 304, {"Content-Type": "text/html", "ETag": '"1"'}),
        (b"", 101, {"Upgrade": "h2c"}),
        (b"gone", 404, {}),
    ]
    for method in ("GET", "HEAD"):
        environ = EnvironBuilder(path="/t/ABC", method=method).get_environ()
        for body, status, headers in [*cases, (None, 200, {})]:
            made = []
            for cls in (Response, flask.Response):
                response = cls(streamed() if body is None else body, status, headers)
                app_iter, status_line, sent = response.get_wsgi_response(environ)
                made.append((status_line, sent, b"".join(app_iter)))
            assert made[0] == made[1], (method, status, headers)


def test_requests_read_the_cookies_werkzeug_reads(app):
    """The speed layer's Request reads the same cookies as werkzeug's own, which finds the
    Cookie header among all the environ's variables: none, one, several, repeated, quoted,
    empty, malformed, and not ASCII (a WSGI string is Latin-1)."""
    import flask
    from werkzeug.test import EnvironBuilder

    from app.wrappers import Request

    speedups = app.extensions["trace"].config.SPEEDUPS == "on"
    assert app.request_class is (Request if speedups else flask.Request)
    cookies = [
        None,
        "",
        "tc_client=0123456789abcdef0123456789abcdef",
        'a=1; trace_session="x.y\\"z"; a=2',
        "; ;=; b=; =c; d",
        "页=面; é=\xe9",
    ]
    for cookie in cookies:
        environ = EnvironBuilder(path="/t/ABC", headers={"User-Agent": "x"}).get_environ()
        if cookie is not None:
            environ["HTTP_COOKIE"] = cookie.encode().decode("latin-1")
        ours, werkzeugs = Request(environ).cookies, flask.Request(environ).cookies
        assert type(ours) is type(werkzeugs)
        assert list(ours.items(multi=True)) == list(werkzeugs.items(multi=True)), cookie


def test_sessions_sign_and_save_as_flasks_own_do(app):
    """The speed layer's session interface signs a session as Flask's own does, and writes a
    cookie exactly when Flask's own would."""
    from flask.sessions import SecureCookieSessionInterface

    from app.wrappers import SessionInterface

    ours, flasks = SessionInterface(), SecureCookieSessionInterface()
    assert ours.get_signing_serializer(app) is ours.get_signing_serializer(app)
    payload = {"uid": 7, "csrf": "x"}
    signed = ours.get_signing_serializer(app).dumps(payload)
    assert flasks.get_signing_serializer(app).loads(signed) == payload
    for change in (None, "read", "write"):
        written = []
        for interface in (ours, flasks):
            with app.test_request_context("/workspace/"):
                session = interface.open_session(app, __import__("flask").request)
                if change == "read":
                    session.get("uid")
                elif change == "write":
                    session["uid"] = 7
                response = app.response_class()
                interface.save_session(app, session, response)
                written.append(response.headers.get("Set-Cookie", "")[:20])
        assert written[0] == written[1], change


def test_views_run_as_flasks_ensure_sync_gives_them(app):
    """The kept ensure_sync answer is Flask's own, for plain and async functions."""
    import flask

    from app.wrappers import Flask

    def view():
        return "x"

    async def coroutine():
        return "y"

    ours = Flask("probe")
    plain = flask.Flask("probe")
    assert ours.ensure_sync(view) is plain.ensure_sync(view) is view
    assert ours.ensure_sync(view) is ours.ensure_sync(view)
    pytest.importorskip("asgiref")
    assert ours.ensure_sync(coroutine)() == plain.ensure_sync(coroutine)() == "y"
