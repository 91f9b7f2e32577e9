"""CPU per event of :func:`app.ingest.run.ingest` alone, without MQTT: a development
tool that is robust to a busy machine (it counts CPU time, not wall time).

The same scratch database and backlog as bench/bench_ingest.py; the messages are fed to
``ingest`` in batches as the worker would, each batch committed. Prints the CPU seconds of
this process and of its PostgreSQL backend per event, rules on and off. The cycle collector
is tuned as the worker tunes it (``--default-gc``: Python's defaults).

    python bench/ingest_cpu.py [--events 40000] [--batch-size 500] [--rules on|off|both]
                               [--profile FILE] [--default-gc]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from bench.bench_ingest import MASTER_KEY, cpu_seconds, setup
from bench.scratch import scratch_database


def run(url: str, backlog, batch_size: int, rules: bool, profile: str | None) -> dict:
    from app.db import create_engine, make_sessionmaker
    from app.ingest.run import Inbound, Limits, ingest
    from devices.protocol import device_id_from_topic

    engine = create_engine(url)
    make = make_sessionmaker(engine)
    limits = Limits(rules=rules)
    with make() as s:
        backend = s.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        s.commit()
        db_before = cpu_seconds(backend)
        cpu_before, wall = time.process_time(), time.perf_counter()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        events = 0
        for i in range(0, len(backlog), batch_size):
            inbound = [
                Inbound(device_id_from_topic(topic), payload, datetime.now(UTC))
                for topic, payload in backlog[i : i + batch_size]
            ]
            result = ingest(s, MASTER_KEY, inbound, limits=limits)
            s.commit()
            events += result.accepted
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        cpu = time.process_time() - cpu_before
        wall = time.perf_counter() - wall
        db = cpu_seconds(backend) - db_before
    engine.dispose()
    return {"events": events, "cpu": cpu, "db": db, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--per-message", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rules", choices=("on", "off", "both"), default="both")
    parser.add_argument("--profile", help="write a cProfile of the rules-on run here")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--default-gc", action="store_true", help="not the worker's collector settings"
    )
    args = parser.parse_args()
    if not args.default_gc:
        from app.ingest.worker import _tune_gc

        _tune_gc()
    runs = {"on": [True], "off": [False], "both": [True, False]}[args.rules]
    for rules in runs:
        with scratch_database(args.pg, prefix="trace_ingest_cpu") as url:
            backlog = setup(url, args.events, 40, args.per_message)
            r = run(url, backlog, args.batch_size, rules, args.profile if rules else None)
        n = r["events"]
        print(
            f"rules {'on ' if rules else 'off'}: {n} events, ingest CPU "
            f"{1e6 * r['cpu'] / n:.0f} µs/event, PostgreSQL backend {1e6 * r['db'] / n:.0f} "
            f"µs/event, wall {1e6 * r['wall'] / n:.0f} µs/event (pid {os.getpid()})",
            flush=True,
        )


if __name__ == "__main__":
    main()
