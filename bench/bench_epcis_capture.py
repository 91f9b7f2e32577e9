"""EPCIS capture on PostgreSQL + PostGIS: ``POST /epcis/capture`` of a document of ``--events``
ObjectEvents naming units of ours (each resolved to its trace code, checked, hashed, stored),
next to the baseline of the same run: reading those events back, one ``GET /epcis/events``
page of the same size (rendered from what was stored).

    PYTHONPATH=. python -m bench.bench_epcis_capture [--events 500] [--documents 10] [--pg URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import create_app, migrate
from app.auth.operations import create_token
from app.epcis.query import SOURCES, Position
from bench.bench_history import setup
from bench.machine import reference_ms
from bench.scratch import scratch_database
from tracecore.access import Role
from tracecore.epcis import EPCIS_CONTEXT

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def document(gtin: str, serials: list[str], start: int) -> dict:
    """``len(serials)`` shipping events (a distributor's), one a unit, each at its own time."""
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": (T0 + timedelta(seconds=start + i)).isoformat(),
            "eventTimeZoneOffset": "+08:00",
            "epcList": [f"https://id.gs1.org/01/{gtin}/21/{serial}"],
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
        }
        for i, serial in enumerate(serials)
    ]
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": T0.isoformat(),
        "epcisBody": {"eventList": events},
    }


def timed(call) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) of ``call()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="events per document")
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    units = args.events * args.documents
    print(f"load average {os.getloadavg()[0]:.1f}; reference workload {reference_ms():.0f} ms")

    with scratch_database(args.pg) as url:
        migrate.upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench",
                "TRACE_ENV": "testing",
                "MAX_CODES_PER_REQUEST": units,
                "EPCIS_CAPTURE_LIMIT": args.events,
                "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
                "EPCIS_CAPTURE_FILE_SIZE_LIMIT": 16 * 1024 * 1024,
            }
        )
        serials, regulator = setup(app, units, history_units=0)
        with app.extensions["trace"].sessionmaker() as s:
            merchant, gtin = s.execute(
                sa.text("SELECT p.merchant_id, p.gtin FROM products p LIMIT 1")
            ).one()
            system, _ = create_token(s, Role.MERCHANT, merchant, outside_system="bench ERP")
            s.commit()
        client = app.test_client()
        capture_headers = {"Authorization": f"Bearer {system}"}
        read_headers = {"Authorization": f"Bearer {regulator}"}
        captured = SOURCES.index("captured")
        captures, reads = [], []
        for n in range(args.documents):
            chunk = serials[n * args.events : (n + 1) * args.events]
            body = json.dumps(document(gtin, chunk, n * args.events))

            def post(body=body):
                resp = client.post(
                    "/epcis/capture",
                    data=body,
                    headers=capture_headers,
                    content_type="application/ld+json",
                )
                assert resp.status_code == 202, resp.get_data(as_text=True)
                job = client.get(resp.headers["Location"], headers=capture_headers).get_json()
                assert job["captured"] == args.events, job

            with app.extensions["trace"].engine.connect() as conn:
                last = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM captured_events"))
                after = last.scalar()
            captures.append(timed(post))
            page = (
                f"/epcis/events?perPage={args.events}&nextPageToken="
                + Position(captured, after).token()
            )

            def read(page=page):
                resp = client.get(page, headers=read_headers)
                assert resp.status_code == 200
                found = resp.get_json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
                assert len(found) == args.events

            reads.append(timed(read))
        app.extensions["trace"].engine.dispose()

    print(f"\n{args.documents} documents of {args.events} events (in process, PostgreSQL)")
    print("| request | median ms | CPU ms (median) | per event ms |")
    print("| --- | --- | --- | --- |")
    for name, rows in (
        (f"POST /epcis/capture ({args.events} events)", captures),
        (f"GET /epcis/events, a page of {args.events} (baseline)", reads),
    ):
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {wall / args.events:.2f} |")
    ratio = statistics.median(w for w, _ in captures) / statistics.median(w for w, _ in reads)
    print(f"\ncapture / read-back: {ratio:.1f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
