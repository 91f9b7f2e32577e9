"""Limits that mean what they say: counted in Redis, they hold across workers and instances
(two apps built in one test stand in for two server workers); sign-in is limited per
address and per account; the public limit is one budget per client for the endpoints that
answer about one unit."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app import create_app
from tests.app.conftest import post_sign_in

REDIS_URL = "redis://127.0.0.1:6379/11"  # this suite's own database, flushed around each test
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}


@pytest.fixture
def redis_url():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def workers(database_url, redis_url):
    """Two apps on one database and one Redis, as two workers (or two instances) are."""
    made = []

    def build(**settings) -> list:
        for _ in range(2):
            made.append(
                create_app(
                    {
                        "DATABASE_URL": database_url,
                        "TRACE_ENV": "testing",
                        "SECRET_KEY": "test-secret",
                        "RATE_LIMIT_STORAGE": redis_url,
                        **settings,
                    }
                )
            )
        return [a.test_client() for a in made]

    yield build
    for a in made:
        a.extensions["trace"].engine.dispose()


def attempt(client, username, password, address="192.0.2.1", headers=HTML):
    return post_sign_in(
        client,
        {"username": username, "password": password},
        headers=headers,
        environ_base={"REMOTE_ADDR": address},
    )


# -- sign-in, per address ---------------------------------------------------------------------


def test_sign_in_attempts_from_one_address_are_counted_across_workers(workers):
    """Four attempts a minute from one address, whichever worker takes them (each has its own
    accounts, so only the address limit counts); the fifth is refused: the form again with a
    Chinese reason for a browser, the one error shape for another client, with Retry-After."""
    one, two = workers(SIGN_IN_RATE_LIMIT="4 per minute")
    statuses = [
        attempt(client, f"nobody{n}", "wrong password").status_code
        for n, client in enumerate([one, two, one, two])
    ]
    assert statuses == [401] * 4
    page = attempt(one, "nobody9", "wrong password")
    assert page.status_code == 429 and 0 < int(page.headers["Retry-After"]) <= 60
    assert "登录尝试过多" in page.get_data(as_text=True)
    answer = attempt(two, "nobody10", "wrong password", headers=JSON)
    assert answer.status_code == 429 and 0 < int(answer.headers["Retry-After"]) <= 60
    assert answer.get_json()["error"]["code"] == "too_many_requests"
    assert attempt(two, "nobody11", "wrong", address="192.0.2.2").status_code == 401


# -- sign-in, per account ---------------------------------------------------------------------


@pytest.mark.committed
def test_an_account_is_throttled_across_addresses_and_workers(make, workers):
    """Three failures per account from ten addresses over two workers: the fourth attempt is
    refused before its password is checked, right or not, and with Retry-After of the
    15-minute window; an unknown username is counted alike (a refusal tells nobody who
    exists); another account is untouched."""
    one, two = workers(SIGN_IN_ACCOUNT_LIMIT="3 per 15 minutes")
    username, password = make.user("admin")
    tries = [
        attempt([one, two][n % 2], username, "wrong password", address=f"192.0.2.{n}")
        for n in range(1, 4)
    ]
    assert [r.status_code for r in tries] == [401, 401, 401]
    refused = attempt(two, username, password, address="192.0.2.4")
    assert refused.status_code == 429 and 60 < int(refused.headers["Retry-After"]) <= 900
    assert "登录尝试过多" in refused.get_data(as_text=True)
    ghost = [
        attempt([one, two][n % 2], "ghost", "wrong password", address=f"192.0.2.{n}").status_code
        for n in range(5, 9)
    ]
    assert ghost == [401, 401, 401, 429]
    other, other_password = make.user("admin")
    assert attempt(one, other, other_password, address="192.0.2.9").status_code == 302


@pytest.mark.committed
def test_guesses_from_elsewhere_do_not_lock_the_owner_out_of_their_address(make, workers):
    """An address that signed in to an account is the owner's: the account's failures from
    other addresses do not count there, and its own are counted apart; a successful sign-in
    clears what its address had counted."""
    one, two = workers(SIGN_IN_ACCOUNT_LIMIT="3 per 15 minutes")
    username, password = make.user("admin")
    owner = "198.51.100.7"
    assert attempt(one, username, password, address=owner).status_code == 302
    for n in range(1, 5):  # an attacker locks the account for every other address
        attempt(two, username, "wrong password", address=f"203.0.113.{n}")
    assert attempt(one, username, password, address="203.0.113.9").status_code == 429
    assert attempt(two, username, password, address=owner).status_code == 302
    for _ in range(2):
        assert attempt(one, username, "typo password", address=owner).status_code == 401
    assert attempt(two, username, password, address=owner).status_code == 302  # clears
    typos = [attempt(one, username, "typo", address=owner).status_code for _ in range(4)]
    assert typos == [401, 401, 401, 429]


# -- the public limit -------------------------------------------------------------------------

UNIT_URLS = [
    "/t/AAAAAAAAAAAAAAAA",
    "/01/06901234567892/10/L1/21/AAAAAAAAAAAAAAAA",
    "/api/v1/codes/AAAAAAAAAAAAAAAA",
    "/api/v1/codes?uri=https://id.example.cn/01/06901234567892/10/L1/21/AAAAAAAAAAAAAAAA",
    "/api/v1/codes/AAAAAAAAAAAAAAAA/label.png",
]


@pytest.mark.parametrize("speedups", ["on", "off"])
def test_the_public_limit_is_one_budget_for_a_units_answers_across_workers(workers, speedups):
    """Four requests a minute: a unit's page by /t/ and /01/, its API answer and lookup,
    taken by two workers, use one client's budget; the fifth (a label image) is refused.
    Another client, and an endpoint outside the group, keep their own budgets."""
    one, two = workers(PUBLIC_RATE_LIMIT="4 per minute", SPEEDUPS=speedups)
    answers = [
        [one, two][n % 2].get(url, headers=JSON, environ_base={"REMOTE_ADDR": "192.0.2.1"})
        for n, url in enumerate(UNIT_URLS)
    ]
    assert [r.status_code == 429 for r in answers] == [False] * 4 + [True]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:4]] == ["3", "2", "1", "0"]
    assert answers[-1].get_json()["error"]["code"] == "too_many_requests"
    assert "Retry-After" in answers[-1].headers
    elsewhere = {"REMOTE_ADDR": "192.0.2.2"}
    assert one.get(UNIT_URLS[0], headers=JSON, environ_base=elsewhere).status_code == 404
    lists = two.get("/api/v1/credit/lists/red", environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert lists.status_code == 200


# -- with the production server (python -m app.serve) ---------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _serve(env: dict, *options: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.serve", "--bind", f"127.0.0.1:{port}", *options],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "RATE_LIMIT_STORAGE"} | env,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


@pytest.mark.slow
def test_the_server_refuses_production_with_in_process_limits_and_two_workers(database_url):
    """``--workers 2`` on the command line, WEB_WORKERS=1 in the environment: the server
    passes the count it runs with to the settings, which refuse it, naming Redis, before
    any worker starts."""
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "k", "TRACE_ENV": "production"}
    proc, port = _serve(env | {"WEB_WORKERS": "1"}, "--workers", "2")
    try:
        _, errors = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3
    assert "RATE_LIMIT_STORAGE=redis://127.0.0.1:6379/0" in errors
    with pytest.raises(OSError):  # refused before anything listened
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _started(proc: subprocess.Popen, port: int) -> None:
    """Wait until the server answers ``/healthz`` (a minute at most)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{proc.communicate()[1][-3000:]}")
            time.sleep(0.2)


def _scan(port: int, forwarded_for: str) -> int:
    """An unknown code's JSON answer (a public, limited request), through a proxy that says
    the client is ``forwarded_for``."""
    url = f"http://127.0.0.1:{port}{UNIT_URLS[0]}"
    request = urllib.request.Request(url, headers=JSON | {"X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as answer:
        answer.close()
        return answer.code


@pytest.mark.slow
def test_behind_a_trusted_proxy_the_limits_count_clients_whom_nobody_else_can_name(
    database_url,
):
    """Two public requests a minute. With the proxy (here 127.0.0.1) trusted, each client it
    names in X-Forwarded-For has its own budget, and an address a client writes in front of
    its own changes nothing: the proxy's nearest untrusted address counts. Without, the
    header is ignored: every request is the proxy's. ``*`` is refused before anything
    listens."""
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "k",
        "TRACE_ENV": "production",
        "PUBLIC_RATE_LIMIT": "2 per minute",
    }
    trusted = {}
    for proxies in ("127.0.0.1", ""):
        proc, port = _serve(env, "--workers", "1", "--forwarded-allow-ips", proxies)
        try:
            _started(proc, port)
            trusted[proxies] = [
                _scan(port, client)
                for client in ("203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2")
            ] + [_scan(port, "203.0.113.2, 198.51.100.7")]
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    assert trusted["127.0.0.1"] == [404, 404, 429, 404, 404]
    assert trusted[""] == [404, 404, 429, 429, 429]

    proc, port = _serve(env, "--forwarded-allow-ips", "*")
    _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "FORWARDED_ALLOW_IPS must list IP addresses" in errors
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _post(port: int, username: str) -> int:
    """A sign-in attempt on a connection of its own (the kernel picks the worker), with the
    form's token and cookie as a browser would send them (the cookie is ``Secure`` in
    production: a cookie jar would keep it from plain HTTP, so it is copied by hand)."""
    url = f"http://127.0.0.1:{port}/workspace/sign-in"
    with urllib.request.urlopen(urllib.request.Request(url, headers=HTML), timeout=10) as form:
        cookie = form.headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.read().decode()).group(1)
    body = urllib.parse.urlencode(
        {"csrf_token": token, "username": username, "password": "wrong password"}
    )
    request = urllib.request.Request(url, data=body.encode(), headers=HTML | {"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code


@pytest.mark.slow
@pytest.mark.committed
def test_two_server_workers_share_the_sign_in_limits(make, database_url, redis_url, tmp_path):
    """Two workers of the production server on Redis: an account's failures (3 per 15
    minutes) and an address's attempts (8 a minute) are counted once, whichever worker takes
    them."""
    username, _ = make.user("admin")
    access_log = tmp_path / "access.log"
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "k",
        "TRACE_ENV": "production",
        "RATE_LIMIT_STORAGE": redis_url,
        "SIGN_IN_RATE_LIMIT": "8 per minute",
        "SIGN_IN_ACCOUNT_LIMIT": "3 per 15 minutes",
    }
    proc, port = _serve(env, "--workers", "2", "--access-log", str(access_log))
    try:
        _started(proc, port)
        statuses = [_post(port, username) for _ in range(5)]
        statuses += [_post(port, f"nobody{n}") for n in range(7)]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert statuses == [401] * 3 + [429] * 2 + [401] * 3 + [429] * 4
    # Each line: the worker's process id, then the request (app.serve.ACCESS_FORMAT).
    posts = [line.split()[0] for line in access_log.read_text().splitlines() if '"POST ' in line]
    assert len(posts) == 12 and len(set(posts)) == 2  # both workers served


@pytest.fixture
def own_redis(tmp_path):
    """A private redis-server on a free port (nothing on disk), to stop and start again."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = []

    def start():
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), *options, "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        running.append(proc)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop():
        proc = running.pop()
        proc.terminate()
        proc.wait(timeout=10)

    start()
    yield port, start, stop
    while running:
        stop()


@pytest.mark.parametrize("speedups", ["on", "off"])
def test_while_redis_is_down_limited_requests_answer_503_and_recover(
    database_url, own_redis, speedups
):
    """Redis stops: a public page and a sign-in cannot be counted, and answer 503 with
    Retry-After in the one error shape (not a 500); Redis starts again: they are served."""
    port, start, stop = own_redis
    limited = create_app(
        {
            "DATABASE_URL": database_url,
            "TRACE_ENV": "testing",
            "SECRET_KEY": "test-secret",
            "RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{port}/0",
            "SPEEDUPS": speedups,
        }
    )
    try:
        client = limited.test_client()
        assert client.get(UNIT_URLS[0], headers=JSON).status_code == 404
        stop()
        for resp in (
            client.get(UNIT_URLS[0], headers=JSON),
            attempt(client, "a", "b", headers=JSON),
        ):
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
            assert resp.get_json()["error"]["code"] == "rate_limit_storage_unavailable"
        start()
        assert client.get(UNIT_URLS[0], headers=JSON).status_code == 404
        assert attempt(client, "a", "b").status_code == 401
    finally:
        limited.extensions["trace"].engine.dispose()
