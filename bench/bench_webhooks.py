"""Webhook delivery under ingest: events written at a steady rate (default 1,000 a second,
in batches of 100 every 100 ms), a subscription to their batch's ``events``, the deliverer
as its own process (``flask --app wsgi hooks deliver``) POSTing to a receiver in this
process. Reports the delivery delay of every event (arrival at the receiver minus the
commit of its ingest batch: the event's ``recordTime``), p50/p99/max, the deliverer's CPU
time, and as the baseline of the same run the ingest transaction's time with and without
the feed row the outbox adds.

The events are inserted through the ingest run's writers (``insert_events`` and the feed's
``record_events``, one transaction per batch), not through MQTT: the broker and the
signature checks are measured by bench/bench_ingest.py, and are not what is measured here.

    PYTHONPATH=. python -m bench.bench_webhooks [--rate 1000] [--seconds 20] [--pg URL|--sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from app import create_app, migrate
from app.codes.operations import issue_codes
from app.events.models import DeviceKind
from app.events.registry import register_device
from app.events.writers import insert_events
from app.hooks.operations import subscribe
from app.outbox.feed import record_events
from bench.catalog import bench_batch
from bench.machine import describe, reference_ms
from bench.scratch import scratch_url
from tracecore.access import OPERATOR

ROOT = Path(__file__).resolve().parents[1]
BATCH = 100


class Receiver:
    """Keeps the arrival time of every event delivered, against its recordTime."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                arrived = time.time()
                outer.posts += 1
                for event in body["data"]["events"]:
                    recorded = datetime.fromisoformat(event["recordTime"]).timestamp()
                    outer.delays.append(arrived - recorded)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _rows(device: str, seq0: int, serials: list[str], merchant: int) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "event_id": str(uuid.uuid4()),
            "device_id": device,
            "seq": seq0 + i,
            "type": "shelved",
            "serial": serial,
            "waybill": None,
            "occurred_at": now,
            "utc_offset_min": 480,
            "received_at": now,
            "location": None,
            "accuracy_m": None,
            "party_type": "merchant",
            "party_id": merchant,
            "data": {},
            "violation": None,
            "flag": None,
        }
        for i, serial in enumerate(serials)
    ]


def ingest(app, device, serials, merchant, rate: int, seconds: float, feed: bool) -> list[float]:
    """Write ``rate`` events a second for ``seconds``; the time of each batch's transaction."""
    sessions = app.extensions["trace"].sessionmaker
    per_second = rate / BATCH
    times, seq, start = [], int(time.time() * 1000) * 1000, time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / per_second
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        picked = [serials[(n * BATCH + i) % len(serials)] for i in range(BATCH)]
        t0 = time.perf_counter()
        with sessions() as s:
            rows = _rows(device, seq, picked, merchant)
            insert_events(s, rows)
            if feed:
                record_events(s, rows)
            s.commit()
        times.append(time.perf_counter() - t0)
        seq += BATCH
        n += 1
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="events a second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    args = parser.parse_args()
    before = reference_ms()
    with scratch_url(None if args.sqlite else args.pg) as url:
        migrate.upgrade(url)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TRACE_ENV": "testing"})
        with app.extensions["trace"].sessionmaker() as s:
            merchant, _, batch = bench_batch(s, 5000)
            serials = issue_codes(s, OPERATOR, batch.id, 5000, max_count=5000).serials
            device, _ = register_device(
                s, OPERATOR, "bench", kind=DeviceKind.SHELF_SCANNER,
                owner_type="merchant", owner_id=merchant.id,
            )  # fmt: skip
            merchant_id, batch_id, device_id = merchant.id, batch.id, device.id
            s.commit()
        # the baseline: the same ingest without any feed row (nobody subscribed)
        plain = ingest(app, device_id, serials, merchant_id, args.rate, args.seconds / 4, False)
        receiver = Receiver()
        with app.extensions["trace"].sessionmaker() as s:
            subscribe(
                s, OPERATOR, receiver.url, ["events"], "bench", production=False,
                batch_id=batch_id,
            )  # fmt: skip
            s.commit()
        env = os.environ | {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "TRACE_ENV": "testing",
            "WEBHOOK_POLL_MS": "50",
        }
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "hooks", "deliver"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(2)  # the process starts
            fed = ingest(app, device_id, serials, merchant_id, args.rate, args.seconds, True)
            written = len(fed) * BATCH
            deadline = time.monotonic() + 30
            while len(receiver.delays) < written and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, _status, usage = os.wait4(proc.pid, 0)
        receiver.server.shutdown()
        after = reference_ms()
        delays = receiver.delays
        cpu = usage.ru_utime + usage.ru_stime
        print(
            f"database: {'SQLite' if args.sqlite else 'PostgreSQL'}; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {describe(before, after)}"
        )
        print(
            f"ingest: {written:,} events in {len(fed)} transactions over {args.seconds:.0f} s "
            f"({written / args.seconds:,.0f}/s asked {args.rate:,}/s)"
        )
        print(
            f"delivered: {len(delays):,} events in {receiver.posts:,} POSTs; lost "
            f"{written - len(delays):,}"
        )
        if delays:
            print(
                f"delivery delay: p50 {pct(delays, 50) * 1000:.0f} ms, p99 "
                f"{pct(delays, 99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
            )
        print(
            f"deliverer CPU: {cpu:.1f} s for {args.seconds:.0f} s of ingest "
            f"({cpu / args.seconds * 100:.0f} % of a core)"
        )
        print(
            f"ingest transaction, p50: {statistics.median(plain) * 1000:.1f} ms without the "
            f"feed row, {statistics.median(fed) * 1000:.1f} ms with it (ratio "
            f"{statistics.median(fed) / statistics.median(plain):.2f})"
        )


if __name__ == "__main__":
    main()
