"""The production server: ``python -m app.serve`` (granian with the project's settings), run
as the README says, answering over a real socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# The server, started once for the module.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture(scope="module")
def server(database_url):
    port = _free_port()
    env = os.environ | {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "production-server-test",
        "TRACE_ENV": "production",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.serve", "--bind", f"127.0.0.1:{port}", *("--workers", "1")],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not start:\n{proc.communicate()[1][-3000:]}")
            time.sleep(0.2)
    yield port
    proc.terminate()
    _, errors = proc.communicate(timeout=30)
    assert "Traceback" not in errors, errors[-3000:]


def test_each_worker_drops_the_secrets_from_its_environment(monkeypatch, database_url):
    """granian copies the process environment into every request's WSGI environ: a worker
    builds the app from it, then drops the secrets; and it freezes the app's objects for the
    collector only with SPEEDUPS=on."""
    import gc

    from app import serve

    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *a: calls.append(a))
    monkeypatch.delitem(sys.modules, "wsgi", raising=False)  # the worker's first import
    secrets = {
        "SECRET_KEY": "worker-secret",
        "DATABASE_URL": database_url,
        "MQTT_URL": "mqtt://ingest:password@127.0.0.1:1883",
        "RATE_LIMIT_STORAGE": "memory://",
    }
    assert set(secrets) == set(serve.SECRETS)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPEEDUPS", "on")  # the suite also runs with SPEEDUPS=off
    app = serve.worker_app()
    assert app.extensions["trace"].config.SECRET_KEY == "worker-secret"
    assert not any(name in os.environ for name in serve.SECRETS)
    assert calls == ["freeze", (20_000, 20, 20)]
    calls.clear()
    monkeypatch.setenv("SPEEDUPS", "off")
    serve.worker_app()
    assert calls == []


def test_the_bind_address_is_host_and_port():
    from app.serve import parse_bind

    assert parse_bind("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_bind("[::1]:8443") == ("::1", 8443)
    for bad in ("8000", "host:", ":80", "host:port"):
        with pytest.raises(SystemExit, match="HOST:PORT"):
            parse_bind(bad)


def test_the_server_answers_keep_alive_requests(server):
    """Two requests on one connection (as a phone's browser and the load benchmark send
    them), each answered in full with the app's headers."""
    one = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = _raw(server, one + last)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answer.count(b'{"status":"ok"}') == 2
    assert b"x-content-type-options: nosniff" in answer.lower()


def test_the_server_answers_an_unknown_code_in_json(server):
    request = urllib.request.Request(
        f"http://127.0.0.1:{server}/t/NOSUCHCODE0000",
        headers={"Accept": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    with answer.value as response:
        assert response.code == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert b"NOSUCHCODE0000" in response.read()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /healthz HTTP/1.1\r\nHo st: a\r\n\r\n",
        b"GET /healthz\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["two lengths", "space in a name", "NUL in the target"],
)
def test_the_server_refuses_ambiguous_requests(server, request_bytes):
    """Requests that two HTTP parsers could read differently (the stuff of request
    smuggling) get 400 and a closed connection, not an answer."""
    answer = _raw(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b'{"status":"ok"}' not in answer


def test_a_length_beside_chunked_is_read_by_the_chunks_and_the_connection_closed(server):
    """Both Transfer-Encoding and Content-Length: RFC 9112 (6.3) lets a server read the body
    by the chunks alone, and requires it to close the connection after answering, so a
    request smuggled behind the body is never read."""
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    answer = _raw(
        server,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n0\r\n\r\n" + smuggled,
    )
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"connection: close" in answer.lower()


@pytest.mark.committed
def test_a_lot_with_a_slash_reaches_its_unit_through_the_server(server, make):
    """granian gives the app only the decoded path: a link whose lot holds a percent-encoded
    '/' still names the unit (app.consumer.pages._raw_path)."""
    serial = make.codes(make.batch(lot="AB/12"), 1)[0]
    request = urllib.request.Request(
        f"http://127.0.0.1:{server}/t/{serial}", headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        uri = json.loads(response.read())["code"]["uri"]
    path = uri.split("://", 1)[1].split("/", 1)[1]
    assert "/10/AB%2F12/21/" in "/" + path
    request = urllib.request.Request(
        f"http://127.0.0.1:{server}/{path}", headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["code"]["serial"] == serial
