"""A consumer scan of a code already checked many times, on PostgreSQL + PostGIS.

Every scan counts all of its code's past checks (how often, by how many clients, in how many
districts, since when). A genuine code is checked a few times; a code copied onto a run of
fakes may be checked hundreds of thousands of times. This gives one code 10, 1,000, 10,000
and 100,000 past checks (COPY: random clients, a fifth of them with one of twelve districts)
and times its scans through the WSGI app (JSON, no network): the first, which counts every
past check and rolls them up (CheckRollup), once; then the median of the scans after it, and
of the scan's one statement alone on the scan's own connection. The baseline, in the same
run, is the same for a code checked only by the run itself (a few dozen checks). Single
client: the times are the database's work for one scan, which load multiplies.

    python bench/bench_checks.py [--checks 10,1000,10000,100000] [--repeat 30] [--pg URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from app import create_app, migrate
from app.consumer.scan_pg import _run_in_one
from bench.bench_history import setup
from bench.profile_consumer import wsgi_caller
from bench.scratch import scratch_database

DISTRICTS = ["110101", "310101", "440305", "330106", "320402", "510104"] * 2


def add_checks(engine, serial: str, count: int) -> None:
    """``count`` past checks of ``serial`` by random clients over the last days, then ANALYZE
    (as autovacuum would after so many)."""
    rng = random.Random(count)
    start = datetime.now(UTC) - timedelta(days=30)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            copy = (
                "COPY verifications (serial, client_hash, verified_at, district_code, new_client)"
                " FROM STDIN"
            )
            with cur.copy(copy) as rows:
                for i in range(count):
                    district = rng.choice(DISTRICTS) if rng.random() < 0.2 else None
                    at = start + timedelta(seconds=i * 2_592_000 / max(count, 1))
                    rows.write_row((serial, f"{rng.getrandbits(64):016x}", at, district, True))
        raw.commit()
        raw.autocommit = True
        raw.cursor().execute("ANALYZE verifications")
    finally:
        raw.close()


def median_ms(run, repeat: int) -> float:
    for _ in range(3):  # warm: prepared statement, caches, the copied-code finding written
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="10,1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    counts = [int(c) for c in args.checks.split(",")]

    with scratch_database(args.pg, "trace_bench_checks") as url:
        migrate.upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench-secret",
                "TRACE_ENV": "production",
                "PUBLIC_RATE_LIMIT": "100000000 per minute",
            }
        )
        serials, _ = setup(app, len(counts) + 1, history_units=len(counts) + 1)
        engine = app.extensions["trace"].engine
        get = wsgi_caller(app, "application/json")
        now = datetime.now(UTC)

        def timed(serial: str) -> tuple[float, float, float]:
            params = {"serial": serial, "client": "b" * 16, "now": now, "gtin": None, "lot": None}
            with app.app_context():
                t0 = time.perf_counter()
                assert get(f"/t/{serial}") == 200
                first = (time.perf_counter() - t0) * 1000
                request = median_ms(lambda: get(f"/t/{serial}"), args.repeat)
            statement = median_ms(lambda: _run_in_one(engine, params), args.repeat)
            return first, statement, request

        base_first, base_statement, base_request = timed(serials[0])
        rows = []
        for serial, count in zip(serials[1:], counts, strict=True):
            add_checks(engine, serial, count)
            rows.append((count, *timed(serial)))
        engine.dispose()

    print(f"scans of a code with N past checks, one client; then: median of {args.repeat}")
    print(
        f"{'past checks':>12} {'first scan ms':>14} {'then: request ms':>17} {'ratio':>7} "
        f"{'statement ms':>13} {'ratio':>7}"
    )
    print(
        f"{'none':>12} {base_first:>14.2f} {base_request:>17.2f} {1:>7.2f} "
        f"{base_statement:>13.2f} {1:>7.2f}"
    )
    for count, first, statement, request in rows:
        print(
            f"{count:>12,} {first:>14.2f} {request:>17.2f} {request / base_request:>7.2f} "
            f"{statement:>13.2f} {statement / base_statement:>7.2f}"
        )
    for count, first, statement, request in rows:
        print(
            f"RESULT checks_{count}_first_ms={first:.2f} request_ms={request:.2f} "
            f"statement_ms={statement:.2f}"
        )


if __name__ == "__main__":
    main()
