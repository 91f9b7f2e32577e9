"""How long issuing 1,000,000 trace codes for one batch takes, on PostgreSQL and SQLite.

Each database is measured against its own bulk-load speed in the same run: the baseline is a
bare load of the same number of precomputed rows into the same table (same indexes), by the
driver alone (COPY on PostgreSQL, executemany on SQLite). ``issue_codes`` adds what a real
issuance needs: 80-bit CSPRNG serials, the quantity reservation, the issuance record, the
savepoint and the commit. Rounds alternate baseline and issuance; the median is reported.

    python bench/bench_issuance.py [--count 1000000] [--rounds 2] [--pg URL] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import time

import sqlalchemy as sa

from app import migrate
from app.codes.operations import issue_codes
from app.db import create_engine, make_sessionmaker
from bench.catalog import bench_batch
from bench.scratch import scratch_url
from tracecore.access import OPERATOR
from tracecore.serials import new_serials


def setup(sessionmaker, count: int, rounds: int) -> int:
    with sessionmaker() as s:
        batch = bench_batch(s, count * rounds * 2).batch
        s.commit()
        return batch.id


def baseline(engine: sa.Engine, batch_id: int, count: int) -> float:
    """Bare bulk load of ``count`` precomputed rows (data prepared untimed), timed to commit."""
    rows = new_serials(count)
    with engine.connect() as conn:
        issuance = conn.execute(
            sa.text(
                "INSERT INTO issuances (batch_id, count, issued_at) "
                "VALUES (:b, :c, :t) RETURNING id"
            ),
            {"b": batch_id, "c": count, "t": "2026-01-01T00:00:00+00:00"},
        ).scalar()
        conn.commit()
        raw = conn.connection.driver_connection
        if engine.dialect.name == "postgresql":
            text = "".join(f"{s}\t{batch_id}\t{issuance}\tissued\n" for s in rows)
            start = time.perf_counter()
            with (
                raw.cursor() as cur,
                cur.copy(
                    "COPY trace_codes (serial, batch_id, issuance_id, state) FROM STDIN"
                ) as copy,
            ):
                copy.write(text)
        else:
            params = [(s, batch_id, issuance, "issued") for s in rows]
            start = time.perf_counter()
            raw.executemany(
                "INSERT INTO trace_codes (serial, batch_id, issuance_id, state) "
                "VALUES (?, ?, ?, ?)",
                params,
            )
        raw.commit()
        return time.perf_counter() - start


def issuance(sessionmaker, batch_id: int, count: int) -> float:
    start = time.perf_counter()
    with sessionmaker() as s:
        issue_codes(s, OPERATOR, batch_id, count, max_count=count)
        s.commit()
    return time.perf_counter() - start


def run(label: str, url: str, count: int, rounds: int) -> dict:
    migrate.upgrade(url)
    engine = create_engine(url)
    sessionmaker = make_sessionmaker(engine)
    batch_id = setup(sessionmaker, count, rounds)
    base, ours = [], []
    for _ in range(rounds):
        base.append(baseline(engine, batch_id, count))
        ours.append(issuance(sessionmaker, batch_id, count))
    engine.dispose()
    result = {
        "db": label,
        "count": count,
        "baseline_s": statistics.median(base),
        "issue_s": statistics.median(ours),
    }
    result["ratio"] = result["issue_s"] / result["baseline_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (a scratch database is created there)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()

    results = []
    if not args.skip_pg:
        with scratch_url(args.pg) as url:
            results.append(run("PostgreSQL+PostGIS", url, args.count, args.rounds))
    if not args.skip_sqlite:
        with scratch_url(None) as url:
            results.append(run("SQLite+SpatiaLite", url, args.count, args.rounds))

    print(f"\nIssuing {args.count:,} codes for one batch (median of {args.rounds} rounds)")
    print(
        f"{'database':<20} {'bare bulk load':>15} {'issue_codes':>12} {'codes/s':>10} {'ratio':>6}"
    )
    for r in results:
        print(
            f"{r['db']:<20} {r['baseline_s']:>14.1f}s {r['issue_s']:>11.1f}s "
            f"{r['count'] / r['issue_s']:>10,.0f} {r['ratio']:>6.2f}"
        )
    for r in results:
        key = r["db"].split("+")[0].lower()
        print(
            f"RESULT issuance_{key}_seconds={r['issue_s']:.2f} "
            f"baseline_{key}_seconds={r['baseline_s']:.2f} ratio_{key}={r['ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
