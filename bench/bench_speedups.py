"""The consumer scan under load with the speed-ups on and off, in alternating runs.

bench/bench_consumer.py's setup (a scratch PostgreSQL database, issued codes, histories)
is made once; then each round starts the production server once per variant, in turn, and
loads it with wrk (the JSON form, and the page with ``--html``). A variant is ``NAME`` or
``NAME:K=V,K=V``, environment variables for the server: ``on:SPEEDUPS=on off:SPEEDUPS=off``
by default. On
a shared machine the rates swing from minute to minute; alternating the variants within a
round, and reading the CPU each request cost the workers, tells them apart.

    python -m bench.bench_speedups [--codes 50000] [--rounds 3] [--duration 10] [--html]
        [--variant on:SPEEDUPS=on --variant off:SPEEDUPS=off ...]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
from pathlib import Path

from app import create_app, migrate
from bench.bench_consumer import (
    WRK_SCRIPT,
    CpuMeter,
    check,
    ensure_wrk,
    free_port,
    paths_of,
    run_wrk,
    start_server,
)
from bench.bench_history import setup
from bench.scratch import scratch_database


def variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, pairs = text.partition(":")
    env = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    return name, env


def serve_and_load(url, env, paths, picked, wrk, script, accepts, args) -> dict:
    """Start the production server with ``env`` added, load it with each of ``accepts``, stop it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        server = start_server(url, port, args.workers, args.threads, [])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = {}
    try:
        check(base, paths[0], picked[0])
        for kind, accept in accepts:
            run_wrk(wrk, base, script, accept, args, args.warmup)
            with CpuMeter(server.pid, url) as cpu:
                r = run_wrk(wrk, base, script, accept, args, args.duration)
            n = r["requests"]
            total = (cpu.app + cpu.db + cpu.load) / n * 1000
            out[kind] = r | {"app_ms": cpu.app / n * 1000, "cores2": 2000 / total}
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=50_000)
    parser.add_argument("--history", type=int, default=5_000)
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--html", action="store_true", help="also load the HTML page")
    parser.add_argument("--variant", action="append", type=variant)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    variants = args.variant or [variant("on:SPEEDUPS=on"), variant("off:SPEEDUPS=off")]
    accepts = [("json", "application/json")] + ([("html", "text/html")] if args.html else [])
    wrk = ensure_wrk()

    with scratch_database(args.pg, "trace_speedups") as url:
        migrate.upgrade(url)
        app = create_app(
            {"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "TRACE_ENV": "testing"}
        )
        serials, _ = setup(app, args.codes, history_units=args.history)
        rng = random.Random(5)
        half = args.urls // 2
        picked = rng.sample(serials[: args.history], half) + rng.sample(
            serials[args.history :], args.urls - half
        )
        rng.shuffle(picked)
        paths = paths_of(app, picked)
        app.extensions["trace"].engine.dispose()
        tmp = Path(tempfile.mkdtemp(prefix="bench-speedups-"))
        script = tmp / "codes.lua"
        script.write_text(WRK_SCRIPT % ",".join(f'"{p}"' for p in paths))
        runs: dict[tuple[str, str], list[dict]] = {}
        try:
            for n in range(args.rounds):
                order = variants if n % 2 == 0 else variants[::-1]
                for name, env in order:
                    got = serve_and_load(url, env, paths, picked, wrk, script, accepts, args)
                    for kind, r in got.items():
                        runs.setdefault((name, kind), []).append(r)
                        print(
                            f"round {n + 1} {name:<12} {kind:<4} {r['rps']:>7.0f} req/s  "
                            f"p50 {r['p50']:>6.2f} ms  p99 {r['p99']:>6.2f} ms  "
                            f"app CPU {r['app_ms']:.3f} ms/request  "
                            f"2 cores/CPU {r['cores2']:.0f} req/s",
                            flush=True,
                        )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.codes:,} codes; {args.rounds} alternating rounds of {args.duration:g} s")
    print(
        f"{'variant':<12} {'kind':<4} {'req/s (median, runs)':<34} {'p99 ms':<24} "
        f"{'app ms/req':<10} 2 cores/CPU"
    )
    for (name, kind), rs in runs.items():
        rps = [round(r["rps"]) for r in rs]
        p99 = [round(r["p99"], 1) for r in rs]
        cpu = statistics.median(r["app_ms"] for r in rs)
        cores2 = statistics.median(r["cores2"] for r in rs)
        print(
            f"{name:<12} {kind:<4} {statistics.median(rps):>6.0f} {rps!s:<27} "
            f"{p99!s:<24} {cpu:<10.3f} {cores2:.0f}"
        )
        print(
            f"RESULT speedups_{name}_{kind}_rps={statistics.median(rps):.0f} "
            f"p99_ms={statistics.median(p99):.1f} app_ms={cpu:.3f}"
        )


if __name__ == "__main__":
    main()
