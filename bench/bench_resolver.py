"""CPU of the resolver's answers next to the plain scan and ``/healthz``, in one process.

Each kind of request is sent straight to the WSGI application (as gunicorn calls it), in
rounds that alternate the kinds, and its process CPU time per request is reported with its
ratio to the plain scan's of the same run: the linkset (by ``Accept`` and by
``?linkType=linkset``), a ``linkType`` redirect, a product's and a batch's redirect to their
default link, and the description file. The database is seeded like
``profile_consumer.py`` (one batch, ``--codes`` units, ``--history`` of them with a full
history).

    PYTHONPATH=. python bench/bench_resolver.py \
        --db postgresql://postgres@127.0.0.1:5432/trace_resolver_bench [--seed] \
        [--codes 100000] [--requests 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import sqlalchemy as sa

from app import create_app, migrate
from bench.machine import describe, reference_ms
from bench.profile_consumer import wsgi_caller

PATHS = Path(__file__).resolve().parent / "results" / "bench-resolver-paths.json"


def seed(db: str, codes: int, history: int) -> list[str]:
    """A fresh database with ``codes`` units of one batch; the Digital Link paths of 1,000."""
    from bench.bench_consumer import paths_of
    from bench.bench_history import setup

    server, name = db.rsplit("/", 1)
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    migrate.upgrade(db)
    app = create_app({"DATABASE_URL": db, "SECRET_KEY": "bench-secret", "TRACE_ENV": "testing"})
    serials, _ = setup(app, codes, history_units=history)
    picked = random.Random(5).sample(serials, 1000)
    paths = paths_of(app, picked)
    app.extensions["trace"].engine.dispose()
    PATHS.parent.mkdir(parents=True, exist_ok=True)
    PATHS.write_text(json.dumps(paths))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    paths = seed(args.db, args.codes, args.history) if args.seed else json.loads(PATHS.read_text())
    app = create_app(
        {
            "DATABASE_URL": args.db,
            "SECRET_KEY": "bench-secret",
            "TRACE_ENV": "production",
            "PUBLIC_RATE_LIMIT": "100000000 per minute",
            "WEB_WORKERS": 1,
        }
    )
    json_get = wsgi_caller(app, "application/json")
    linkset_get = wsgi_caller(app, "application/linkset+json")
    lot = paths[0].split("/21/")[0]
    gtin = lot.split("/10/")[0]
    kinds = {
        "/healthz": (json_get, lambda i: "/healthz", 200),
        "scan, JSON (baseline)": (json_get, lambda i: paths[i % len(paths)], 200),
        "linkset, Accept": (linkset_get, lambda i: paths[i % len(paths)], 200),
        "linkset, ?linkType=linkset": (
            json_get,
            lambda i: paths[i % len(paths)] + "?linkType=linkset",
            200,
        ),
        "?linkType=gs1:certificationInfo": (
            json_get,
            lambda i: paths[i % len(paths)] + "?linkType=gs1:certificationInfo",
            307,
        ),
        "batch link -> default": (json_get, lambda i: lot, 307),
        "product link -> default": (json_get, lambda i: gtin, 307),
        "/.well-known/gs1resolver": (json_get, lambda i: "/.well-known/gs1resolver", 200),
    }
    for get, path, status in kinds.values():  # warm up, and check each answers as it should
        for i in range(100):
            got = get(path(i))
            assert got == status, (path(i), got)
    before = reference_ms()
    cpu = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, (get, path, _) in kinds.items():
            start = time.process_time()
            for i in range(args.requests):
                get(path(i))
            cpu[name].append((time.process_time() - start) / args.requests * 1e6)
    after = reference_ms()
    base = min(cpu["scan, JSON (baseline)"])
    print(f"{args.rounds} rounds of {args.requests} requests a kind, alternating; best round:")
    print(f"{'request':34} {'CPU µs':>8} {'/ scan':>7}")
    for name, values in cpu.items():
        print(f"{name:34} {min(values):8.0f} {min(values) / base:7.2f}")
    print(describe(before, after))


if __name__ == "__main__":
    main()
