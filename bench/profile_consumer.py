"""CPU of one consumer scan in process (no network), on PostgreSQL.

Robust to other work on the machine: it reports the process CPU time (not wall time) per
request of the JSON form (``--accept text/html``: the page; ``--path /healthz``: one path
instead of the scans), and with ``--cprofile`` the functions that take it. The database is
seeded like ``bench_consumer.py`` once and kept (``--seed`` again to rebuild it), so the
loop can be run after every change.

Requests go straight to the WSGI application, as gunicorn calls it; ``--client test`` goes
through Flask's test client instead, which costs more than a scan's own work and hides it.
The machine's speed may vary from one minute to the next: compare two versions in
alternation, or count instructions, e.g. ``valgrind --tool=callgrind`` on ``--requests 0``
and on ``--requests 500`` (the difference is the 500 requests' own).

    python bench/profile_consumer.py --db postgresql://postgres@127.0.0.1:5432/trace_prof \
        [--seed] [--codes 1000000] [--requests 3000] [--accept application/json] \
        [--path /healthz] [--client wsgi|test] [--cprofile] [--limits redis://…|memory://]

The rate limits count in the machine's Redis, as in production (``--limits memory://`` counts
them in the process, with ``WEB_WORKERS=1``, which production allows).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from app import create_app, migrate

PATHS = Path(__file__).resolve().parent / "results" / "profile-consumer-paths.json"


def wsgi_caller(app, accept: str) -> Callable[[str], int]:
    """A function that sends ``GET path[?query]`` straight to ``app``'s WSGI callable (the
    environ gunicorn would build for wrk's request) and returns the response's status code."""
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def get(uri: str) -> int:
        path, _, query = uri.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "RAW_URI": uri,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT": accept,
            "HTTP_USER_AGENT": "wrk",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        body = app(environ, start_response)
        try:
            b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        return int(statuses.pop().split(" ", 1)[0])

    return get


def test_client_caller(app, accept: str) -> Callable[[str], int]:
    """The same through Flask's test client."""
    client = app.test_client()
    headers = {"Accept": accept}
    return lambda path: client.get(path, headers=headers).status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--accept", default="application/json")
    parser.add_argument("--path", help="request this path every time (e.g. /healthz)")
    parser.add_argument("--client", choices=("wsgi", "test"), default="wsgi")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--limits", default="redis://127.0.0.1:6379/0", help="RATE_LIMIT_STORAGE")
    args = parser.parse_args()
    overrides = {
        "DATABASE_URL": args.db,
        "SECRET_KEY": "bench-secret",
        "TRACE_ENV": "production",
        "PUBLIC_RATE_LIMIT": "100000000 per minute",
        "MAX_CODES_PER_REQUEST": args.codes,
        "RATE_LIMIT_STORAGE": args.limits,
        **({"WEB_WORKERS": 1} if args.limits.startswith("memory://") else {}),
    }
    if args.seed:
        from bench.bench_consumer import paths_of
        from bench.bench_history import setup

        server, name = args.db.rsplit("/", 1)
        admin = sa.create_engine(
            server.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        migrate.upgrade(args.db)
        app = create_app(overrides | {"TRACE_ENV": "testing"})
        serials, _ = setup(app, args.codes, history_units=args.history)
        rng = random.Random(5)
        picked = rng.sample(serials[: args.history], 1000) + rng.sample(
            serials[args.history :], 1000
        )
        rng.shuffle(picked)
        PATHS.parent.mkdir(parents=True, exist_ok=True)
        PATHS.write_text(json.dumps(paths_of(app, picked)))
        app.extensions["trace"].engine.dispose()
        analyze = sa.create_engine(args.db.replace("postgresql://", "postgresql+psycopg://", 1))
        with analyze.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        analyze.dispose()
    paths = [args.path] if args.path else json.loads(PATHS.read_text())
    app = create_app(overrides)
    get = (wsgi_caller if args.client == "wsgi" else test_client_caller)(app, args.accept)
    for i in range(200):  # warm up: caches, statement caches, pool
        assert get(paths[i % len(paths)]) == 200
    # CPU time, not wall time: waiting for the database is not what is measured here.
    profiler = cProfile.Profile(time.process_time) if args.cprofile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for i in range(args.requests):
        get(paths[i % len(paths)])
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if not args.requests:
        return
    print(
        f"{args.requests} requests: {cpu / args.requests * 1000:.3f} ms CPU (this process) "
        f"and {wall / args.requests * 1000:.3f} ms wall a request"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
