"""History endpoint latency with 1,000,000 (or --events) events stored, on PostgreSQL + PostGIS.

Loads units with 10 events each (shelved, sold, packed, picked up, 4 transit scans, out for
delivery, signed — one parcel per unit; --events / 10 units) straight into a scratch database
with COPY, then times ``GET /api/v1/codes/{serial}/history`` for random units through the WSGI
app (no network), next to a trivial endpoint of the same app in the same run.

With ``--keep NAME`` the database NAME is loaded once and kept: a later run with the same NAME
measures the same data again without loading it (10,000,000 events take a while to load).

    PYTHONPATH=. python bench/bench_history.py [--events 1000000] [--requests 2000] [--pg URL]
        [--keep NAME]

(``PYTHONPATH=.``: the checkout's packages, not those of the virtualenv's editable install.)
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import create_app, migrate
from app.auth.operations import create_token
from app.codes.operations import issue_codes
from app.events.models import DeviceKind
from app.events.registry import register_device
from app.parties import operations as parties
from bench.catalog import bench_batch
from bench.scratch import scratch_database
from tracecore.access import OPERATOR, Role

PARCEL_STEPS = [
    "packed",
    "picked_up",
    "in_transit",
    "in_transit",
    "in_transit",
    "in_transit",
    "out_for_delivery",
    "signed",
]


def setup(app, units: int, history_units: int | None = None) -> tuple[list[str], str]:
    """Issue ``units`` codes of one batch and give the first ``history_units`` of them (all
    by default; serials are random, so it is a random sample) a full history."""
    secret = app.extensions["trace"].config.SECRET_KEY
    with app.extensions["trace"].sessionmaker() as s:
        merchant, _, batch = bench_batch(s, units)
        company = parties.register_logistics_company(
            s, OPERATOR, name="bench express", uscc="91330100799655058B", region_code="320400"
        )
        courier = parties.register_courier(
            s,
            OPERATOR,
            secret,
            name="王小明",
            id_number="320402199001010017",
            phone="13800000001",
            company_id=company.id,
            region_code="320411",
        )
        serials = issue_codes(s, OPERATOR, batch.id, units, max_count=units).serials
        shelf, _ = register_device(
            s,
            OPERATOR,
            secret,
            kind=DeviceKind.SHELF_SCANNER,
            owner_type="merchant",
            owner_id=merchant.id,
        )
        pos, _ = register_device(
            s,
            OPERATOR,
            secret,
            kind=DeviceKind.POS_SCANNER,
            owner_type="merchant",
            owner_id=merchant.id,
        )
        handheld, _ = register_device(
            s,
            OPERATOR,
            secret,
            kind=DeviceKind.COURIER_HANDHELD,
            owner_type="courier",
            owner_id=courier.id,
        )
        token, _ = create_token(s, Role.REGULATOR)
        ids = {
            "merchant": merchant.id,
            "company": company.id,
            "courier": courier.id,
            "shelf": shelf.id,
            "pos": pos.id,
            "handheld": handheld.id,
        }
        s.commit()
    load_events(app.extensions["trace"].engine, serials[:history_units], ids)
    return serials, token


#: Units written per COPY round (10 events each), so that memory stays flat at any size.
CHUNK_UNITS = 50_000


def load_events(engine: sa.Engine, serials: list[str], ids: dict) -> None:
    seq = {"shelf": 0, "pos": 0, "handheld": 0}
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            for first in range(0, len(serials), CHUNK_UNITS):
                chunk = serials[first : first + CHUNK_UNITS]
                parcels, items, events = _chunk(chunk, first, ids, seq)
                with cur.copy(
                    "COPY parcels (waybill, merchant_id, logistics_company_id, consignee, "
                    "consignee_region_code, state, packed_at) FROM STDIN"
                ) as copy:
                    copy.write(parcels)
                with cur.copy("COPY parcel_items (waybill, serial) FROM STDIN") as copy:
                    copy.write(items)
                with cur.copy(
                    "COPY events (event_id, device_id, seq, type, serial, waybill, "
                    "occurred_at, utc_offset_min, received_at, location, accuracy_m, "
                    "party_type, party_id, data, violation) FROM STDIN"
                ) as copy:
                    copy.write(events)
            for device, top in seq.items():
                cur.execute("UPDATE devices SET max_seq = %s WHERE id = %s", (top, ids[device]))
            cur.execute(
                "UPDATE trace_codes SET state = 'signed' WHERE serial = ANY(%s)", (serials,)
            )
    # What autovacuum would do within a minute of such a load: done now, so that it does not
    # run during the measurements (it took a core for several seconds of the first one).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE)"))


def _chunk(serials: list[str], offset: int, ids: dict, seq: dict) -> tuple[str, str, str]:
    """COPY text of the parcels, parcel items and events of ``serials`` (the units numbered
    from ``offset``)."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events, parcels, items = io.StringIO(), io.StringIO(), io.StringIO()
    for n, serial in enumerate(serials, offset):
        t = start + timedelta(seconds=n * 7)
        waybill = f"SF{n:010d}"
        lat, lon = 31.70 + (n % 100) / 500, 119.90 + (n % 77) / 500
        parcels.write(
            f"{waybill}\t{ids['merchant']}\t{ids['company']}\t"
            f"SRID=4326;POINT({lon} {lat})\t320411\tsigned\t{t.isoformat()}\n"
        )
        items.write(f"{waybill}\t{serial}\n")
        rows = [
            ("shelf", "shelved", serial, None, "merchant", ids["merchant"]),
            ("pos", "sold", serial, None, "merchant", ids["merchant"]),
        ]
        rows += [
            (
                "shelf" if kind == "packed" else "handheld",
                kind,
                None,
                waybill,
                "merchant" if kind == "packed" else "courier",
                ids["merchant"] if kind == "packed" else ids["courier"],
            )
            for kind in PARCEL_STEPS
        ]
        for i, (device, kind, ev_serial, ev_waybill, party_type, party_id) in enumerate(rows):
            seq[device] += 1
            when = (t + timedelta(minutes=30 * i)).isoformat()
            events.write(
                "\t".join(
                    [
                        str(uuid.uuid4()),
                        ids[device],
                        str(seq[device]),
                        kind,
                        ev_serial or r"\N",
                        ev_waybill or r"\N",
                        when,
                        "480",
                        when,
                        f"SRID=4326;POINT({lon} {lat})",
                        "10",
                        party_type,
                        str(party_id),
                        "{}",
                        r"\N",
                    ]
                )
                + "\n"
            )
    return parcels.getvalue(), items.getvalue(), events.getvalue()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(client, urls: list[str], headers: dict) -> list[float]:
    timings = []
    for url in urls:
        t0 = time.perf_counter()
        resp = client.get(url, headers=headers)
        timings.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, resp.get_json()
    return timings


@contextmanager
def bench_database(server: str, keep: str | None) -> Iterator[str]:
    """A scratch database dropped afterwards, or the kept database ``keep`` (created if absent)."""
    if keep is None:
        with scratch_database(server) as url:
            yield url
        return
    admin = sa.create_engine(
        server.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": keep}
        ).first()
        if found is None:
            conn.execute(sa.text(f'CREATE DATABASE "{keep}"'))
    admin.dispose()
    yield f"{server}/{keep}"


def loaded(app) -> tuple[list[str], str] | None:
    """The serials and a regulator's token of a kept database loaded by an earlier run."""
    with app.extensions["trace"].sessionmaker() as s:
        serials = list(s.scalars(sa.text("SELECT serial FROM parcel_items")))
        if not serials:
            return None
        token, _ = create_token(s, Role.REGULATOR)
        s.commit()
    return serials, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events stored (10 a unit)")
    parser.add_argument("--requests", type=int, default=2000)
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
        with app.extensions["trace"].engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        print(
            f"{'found' if found else 'loaded'} {stored:,} events for {len(serials):,} units "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        rng = random.Random(7)
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        picks = [f"/api/v1/codes/{rng.choice(serials)}/history" for _ in range(args.requests)]
        measure(client, picks[:100], headers)  # warm-up: imports, connection pool, caches
        trivial = measure(client, ["/bench/ping"] * args.requests, headers)
        history = measure(client, picks, headers)
        app.extensions["trace"].engine.dispose()

    print(
        f"\nGET /api/v1/codes/{{serial}}/history with {stored:,} events stored "
        f"({args.requests} random units, in process, no network)"
    )
    print(f"{'endpoint':<22} {'p50 ms':>8} {'p99 ms':>8}")
    for label, values in (("trivial (same app)", trivial), ("history", history)):
        print(f"{label:<22} {statistics.median(values):>8.2f} {percentile(values, 99):>8.2f}")
    print(f"RESULT history_events_stored={stored}")
    print(
        f"RESULT history_p50_ms={statistics.median(history):.2f} "
        f"history_p99_ms={percentile(history, 99):.2f}"
    )
    print(
        f"RESULT trivial_p50_ms={statistics.median(trivial):.2f} "
        f"trivial_p99_ms={percentile(trivial, 99):.2f}"
    )


if __name__ == "__main__":
    main()
