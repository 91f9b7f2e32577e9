"""EPCIS query latency on PostgreSQL + PostGIS: a page of 100 events of ``GET /epcis/events``
(at random places in the event table), and one unit's ``GET /epcis/epcs/{epc}/events``.

Loads units with 10 events each as bench/bench_history.py does (--events / 10 units), then times
the requests through the WSGI app (no network), next to a trivial endpoint of the same app.

    PYTHONPATH=. python -m bench.bench_epcis [--events 100000] [--requests 500] [--pg URL]
        [--keep NAME]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from urllib.parse import quote

import sqlalchemy as sa

from app import create_app, migrate
from app.epcis.query import SOURCES, Position
from bench.bench_history import PARCEL_STEPS, bench_database, loaded, measure, percentile, setup
from tracecore.epcis import Uris


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events stored (10 a unit)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", metavar="NAME", help="load into database NAME once and keep it")
    args = parser.parse_args()
    units = args.events // len(["shelved", "sold", *PARCEL_STEPS])

    with bench_database(args.pg, args.keep) as url:
        migrate.upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "TRACE_ENV": "testing",
                "MAX_CODES_PER_REQUEST": units,
            }
        )
        app.add_url_rule("/bench/ping", "bench_ping", lambda: {"ok": True})
        t0 = time.perf_counter()
        found = loaded(app) if args.keep else None
        serials, token = found or setup(app, units)
        config = app.extensions["trace"].config
        with app.extensions["trace"].engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
            top = conn.execute(sa.text("SELECT max(id) FROM events")).scalar()
            gtin, lot = conn.execute(
                sa.text(
                    "SELECT p.gtin, b.lot FROM batches b JOIN products p ON p.id = b.product_id"
                )
            ).first()
        print(f"{stored:,} events, {len(serials):,} units; {time.perf_counter() - t0:.0f} s")
        uris = Uris(config.RESOLVER_HOST, config.RESOLVER_SCHEME)
        rng = random.Random(7)
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        event_source = SOURCES.index("event")
        pages = [
            "/epcis/events?perPage=100&nextPageToken="
            + Position(event_source, rng.randrange(max(1, top - 200))).token()
            for _ in range(args.requests)
        ]
        unit_events = [
            f"/epcis/epcs/{quote(uris.unit(gtin, lot, rng.choice(serials)), safe='')}/events"
            for _ in range(args.requests)
        ]
        measure(client, pages[:50] + unit_events[:50], headers)  # warm-up
        trivial = measure(client, ["/bench/ping"] * args.requests, headers)
        page = measure(client, pages, headers)
        unit = measure(client, unit_events, headers)
        app.extensions["trace"].engine.dispose()

    print(f"\nEPCIS queries with {stored:,} events stored ({args.requests} each, in process)")
    print(f"{'endpoint':<34} {'p50 ms':>8} {'p99 ms':>8}")
    for label, values in (
        ("trivial (same app)", trivial),
        ("/epcis/events, a page of 100", page),
        ("/epcis/epcs/{unit}/events", unit),
    ):
        print(f"{label:<34} {statistics.median(values):>8.2f} {percentile(values, 99):>8.2f}")
    print(f"RESULT epcis_events_stored={stored}")
    print(
        f"RESULT epcis_page100_p50_ms={statistics.median(page):.2f} "
        f"epcis_page100_p99_ms={percentile(page, 99):.2f}"
    )
    print(
        f"RESULT epcis_unit_p50_ms={statistics.median(unit):.2f} "
        f"epcis_unit_p99_ms={percentile(unit, 99):.2f}"
    )


if __name__ == "__main__":
    main()
