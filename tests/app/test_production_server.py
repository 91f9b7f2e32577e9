"""The production server: ``gunicorn wsgi:app`` with the project's gunicorn.conf.py, run as
the README says, answering over a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# gunicorn, started once for the module.
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
    gunicorn = Path(sys.executable).with_name("gunicorn")
    cmd = [str(gunicorn), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1", "--threads", "2", "wsgi:app"],
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
                pytest.fail(f"gunicorn did not start:\n{proc.communicate()[1][-3000:]}")
            time.sleep(0.2)
    yield port
    proc.terminate()
    _, errors = proc.communicate(timeout=30)
    assert "Traceback" not in errors, errors[-3000:]


def test_the_server_uses_its_c_http_parser():
    """gunicorn.conf.py asks for the C parser, and it is installed and usable (gunicorn
    refuses the request otherwise)."""
    import runpy

    from gunicorn.config import Config
    from gunicorn.http.message import _check_fast_parser

    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["http_parser"] == "fast"
    config = Config()
    config.set("http_parser", conf["http_parser"])
    assert _check_fast_parser(config) is True


def test_the_server_answers_keep_alive_requests(server):
    """Two requests on one connection (as a phone's browser and the load benchmark send
    them), each answered in full with the app's headers."""
    one = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = _raw(server, one + last)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answer.count(b'{"status":"ok"}') == 2
    assert b"X-Content-Type-Options: nosniff" in answer


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
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHo st: a\r\n\r\n",
        b"GET /healthz\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["two lengths", "chunked and length", "space in a name", "NUL in the target"],
)
def test_the_server_refuses_ambiguous_requests(server, request_bytes):
    """Requests that two HTTP parsers could read differently (the stuff of request
    smuggling) get 400 and a closed connection, not an answer."""
    answer = _raw(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b'{"status":"ok"}' not in answer
