"""The anomaly scenario suite at a larger scale: precision and recall per anomaly type.

A day of simulated traffic (handhelds offline for hours, sweeps every two simulated hours)
with ``--inject`` cases of every anomaly type and the clean cases of
``app/ingest/clean_traffic.py``, run end to end through the ingest use case (signatures,
lifecycle, rules) and the sweeps, on a scratch SQLite or PostgreSQL database; then the same
day with nothing injected, which must raise nothing, not even for a while.

    python bench/bench_scenarios.py [--inject 10] [--shops 6] [--pg URL]
"""

from __future__ import annotations

import argparse
import time

from app import create_app, migrate
from app.ingest import scenarios
from bench.scratch import scratch_url


def one_run(pg, inject, shops, couriers, codes):
    with scratch_url(pg) as url:
        migrate.upgrade(url)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "scenarios", "TRACE_ENV": "testing"})
        t0 = time.perf_counter()
        report = scenarios.run(
            app, shops=shops, couriers=couriers, codes_per_shop=codes, inject=inject
        )
        app.extensions["trace"].engine.dispose()
        return report, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inject", type=int, default=10)
    parser.add_argument("--shops", type=int, default=6)
    parser.add_argument("--couriers", type=int, default=4)
    parser.add_argument("--codes", type=int, default=300)
    parser.add_argument("--pg", default="", help="PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()

    clean, clean_s = one_run(args.pg, 0, args.shops, args.couriers, args.codes)
    found_clean = sum(len(s.found) for s in clean.scores.values())
    print(
        f"clean day: {clean.events_sent:,} events, {clean.accepted:,} accepted, "
        f"{found_clean} anomalies ({clean_s:.0f} s)"
    )
    dirty, dirty_s = one_run(args.pg, args.inject, args.shops, args.couriers, args.codes)
    print(
        f"injected day: {dirty.events_sent:,} events, {args.inject} cases of every type "
        f"({dirty_s:.0f} s)\n"
    )
    print(dirty.table())
    print(
        f"clean parties accused: {dirty.clean_parties_accused} (clean day: "
        f"{clean.clean_parties_accused}); findings withdrawn by later evidence: "
        f"{dirty.withdrawn} (clean day: {clean.withdrawn})"
    )
    print(
        f"RESULT clean_parties_accused={dirty.clean_parties_accused + clean.clean_parties_accused}"
    )
    print(f"RESULT clean_day_anomalies={found_clean}")
    worst_p = min(s.precision for s in dirty.scores.values())
    worst_r = min(s.recall for s in dirty.scores.values())
    print(f"RESULT min_precision={worst_p:.3f} min_recall={worst_r:.3f}")


if __name__ == "__main__":
    main()
