"""CPU of one consumer scan in process (Flask test client, no network), on PostgreSQL.

Robust to other work on the machine: it reports the process CPU time (not wall time) per
request of the JSON form, and with ``--cprofile`` the functions that take it. The database
is seeded like ``bench_consumer.py`` once and kept (``--seed`` again to rebuild it), so the
loop can be run after every change.

    python bench/profile_consumer.py --db postgresql://postgres@127.0.0.1:5432/trace_prof \
        [--seed] [--codes 1000000] [--requests 3000] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import time
from pathlib import Path

import sqlalchemy as sa

from app import create_app, migrate

PATHS = Path(__file__).resolve().parent / "results" / "profile-consumer-paths.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--accept", default="application/json")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    overrides = {
        "DATABASE_URL": args.db,
        "SECRET_KEY": "bench-secret",
        "TRACE_ENV": "production",
        "PUBLIC_RATE_LIMIT": "100000000 per minute",
        "MAX_CODES_PER_REQUEST": args.codes,
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
    paths = json.loads(PATHS.read_text())
    app = create_app(overrides)
    client = app.test_client()
    headers = {"Accept": args.accept}
    for p in paths[:200]:  # warm up: caches, statement caches, pool
        assert client.get(p, headers=headers).status_code == 200
    profiler = cProfile.Profile() if args.cprofile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for i in range(args.requests):
        client.get(paths[i % len(paths)], headers=headers)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
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
