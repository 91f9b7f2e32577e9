"""The consumer page and its JSON form under load: the production server, PostgreSQL, 1M codes.

Issues 1,000,000 trace codes of one batch into a scratch PostgreSQL + PostGIS database (the
real issuance, COPY), gives a random sample of them a full history (10 events each, loaded
with COPY), then serves the app with the production server (``python -m app.serve``: granian)
on a free loopback port, or with gunicorn (``--server gunicorn``, the server before it, as
bench/gunicorn_baseline.py sets it up), and loads it with
wrk from a separate process, one endpoint after the other in the same run:

- ``GET /healthz``, a trivial endpoint of the same app (no database): the server's ceiling;
- ``GET /01/{gtin}/10/{lot}/21/{serial}`` with ``Accept: application/json`` (the JSON form);
- the same with ``Accept: text/html`` (the page);
- the page of a code never issued (a made-up serial under the batch's GTIN and lot: the
  counterfeit verdict with its report form, its check recorded for the counterfeit map up to
  the network's daily bound, then only answered), which answers 404,

each rotating over a few thousand URLs (real codes: half with a history), after a warm-up,
as fast as the server answers (32 connections, each sending its next request at once): the
server's capacity. Then the JSON form and the page again, **paced** at the goal's rate
(``--rate``, 1,000 a second: requests sent at fixed moments over 40 connections, whichever is
free): the latency a client sees at that load.
Goal (issues 5 and 16): the JSON form and the page each keep 1,000 requests/s with p99 < 50 ms,
judged on the paced runs. (As fast as it answers, the p99 is mostly the queue the connections
keep full: 32 connections at 1,000 a second wait 32 ms on average by Little's law, whatever
the service costs.)

The server runs with app.serve's settings (the README's production command);
``--workers``/``--threads`` override them, and ``--server-args`` adds options.

Besides requests/s and latency, it reports the CPU each request cost the server's workers,
the database backends, Redis (the rate-limit counters) and wrk (read from /proc during the
run), and the rate those costs allow on two idle cores: on a shared machine the rate swings
with whatever else runs, the cost per request much less.

    python bench/bench_consumer.py [--codes 1000000] [--workers N] [--threads N]
        [--connections 32] [--duration 15] [--rate 1000] [--pg URL] [--db-prefix trace_bench]
        [--server granian|gunicorn] [--server-args "…"] [--profile]

``--profile`` samples one worker with py-spy (``pip install py-spy``) during the JSON run
into ``bench/results/consumer-json.folded``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import psycopg
import sqlalchemy as sa

from app import create_app, migrate
from app.codes.api import code_uri
from app.codes.operations import find_code
from bench.bench_history import setup
from bench.machine import describe, reference_ms
from bench.scratch import scratch_database
from tracecore.serials import new_serials

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: Connections of the paced runs: enough that a free one is there at each scheduled moment.
PACED_CONNECTIONS = 40
WRK_SCRIPT = """
local paths = {%s}
local counter = 0
function setup(thread)
  thread:set("start", counter * 997)
  counter = counter + 1
end
function init(args)
  i = start or 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        subprocess.run([str(ROOT / "scripts" / "bootstrap.sh"), "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


def paths_of(app, serials: list[str]) -> list[str]:
    """The Digital Link paths (what a phone opens) of ``serials``."""
    with app.app_context(), app.extensions["trace"].sessionmaker() as s:
        return [urlsplit(code_uri(find_code(s, serial))).path for serial in serials]


def queries_per_request(app, paths: list[str], accept: str) -> int:
    """Statements one request sends once the per-process caches are warm (counted in
    process, on the same database, at the driver: the ORM's and the one-statement scan's
    alike; BEGIN and COMMIT, which psycopg sends itself, are not counted)."""
    client = app.test_client()
    resp = client.get(paths[0], headers={"Accept": accept})  # warms the caches
    assert resp.status_code == 200, resp.data[:300]
    seen: list[str] = []
    execute = psycopg.Cursor.execute

    def counting(cursor, query, *args, **kwargs):
        seen.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    with mock.patch.object(psycopg.Cursor, "execute", counting):
        resp = client.get(paths[1], headers={"Accept": accept})
        assert resp.status_code == 200, resp.data[:300]
    return len(seen)


def served_with(workers: int | None, threads: int | None) -> tuple[int, int]:
    """Workers and threads the server runs with: the options given, else app.serve's defaults
    (the settings of the README's production command)."""
    from app.serve import default_threads, default_workers

    return workers or default_workers(), threads or default_threads()


def start_server(
    url: str,
    port: int,
    workers: int | None,
    threads: int | None,
    extra: list[str],
    server: str = "granian",
) -> subprocess.Popen:
    """The production server (``python -m app.serve``), or gunicorn with
    bench/gunicorn_baseline.py (``server="gunicorn"``), the options given overriding their
    settings."""
    env = os.environ | {
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret",
        "TRACE_ENV": "production",
        # One load generator is one client address: lift the per-client limit (the limiter
        # still counts every request, so its cost stays in the figures).
        "PUBLIC_RATE_LIMIT": "100000000 per minute",
        # Production refuses in-process limit counters with more than one worker (config.py):
        # the machine's Redis, as production uses it.
        "RATE_LIMIT_STORAGE": os.environ.get("RATE_LIMIT_STORAGE", "redis://127.0.0.1:6379/0"),
    }
    workers, threads = served_with(workers, threads)
    sized = ["--workers", str(workers), "--threads", str(threads)]
    if server == "gunicorn":
        env["WEB_WORKERS"] = str(workers)
        cmd = [
            str(Path(sys.executable).with_name("gunicorn")),
            *("--config", str(ROOT / "bench" / "gunicorn_baseline.py")),
            *("--bind", f"127.0.0.1:{port}", *sized, "--log-level", "warning"),
            *extra,
            "wsgi:app",
        ]
    else:
        cmd = [sys.executable, "-m", "app.serve", "--bind", f"127.0.0.1:{port}", *sized, *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            sys.exit(f"{server} exited at start")
    proc.terminate()
    sys.exit(f"{server} did not answer within 60 s")


def check(base: str, path: str, serial: str) -> None:
    """The server answers the JSON form and the page for a real code before it is loaded."""
    for accept, kind in (("application/json", "application/json"), ("text/html", "text/html")):
        req = urllib.request.Request(base + path, headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read().decode()
            assert r.status == 200 and r.headers["Content-Type"].startswith(kind), r.headers
            assert serial in body


UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    wrk: str,
    base: str,
    script: Path,
    accept: str,
    args,
    seconds: float,
    not_found: bool = False,
    connections: int | None = None,
) -> dict:
    """wrk's figures for one endpoint; any error answer stops the bench, except the 404s of
    an endpoint that answers ``not_found``."""
    cmd = [
        wrk,
        "-t",
        "2",
        "-c",
        str(connections or args.connections),
        "-d",
        f"{seconds:g}s",
        "--latency",
        "--timeout",
        "5s",
        "-H",
        f"Accept: {accept}",
        "-s",
        str(script),
        base,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    latency = {
        p: float(v) * UNIT[u]
        for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    if errors and not (not_found and int(errors.group(1)) == requests):
        sys.exit(f"wrk saw error responses:\n{out}")
    # Requests still unanswered after wrk's --timeout are counted, not fatal: under
    # overload they are the latency tail.
    timeouts = re.search(r"Socket errors: .*timeout (\d+)", out)
    return {
        "timeouts": int(timeouts.group(1)) if timeouts else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency["50"],
        "p99": latency["99"],
        "requests": requests,
    }


#: The paced runs' schedule (LuaJIT, which wrk embeds): each wrk thread sends its requests
#: at fixed moments, ``interval`` ms apart, whichever of its connections is free; ``delay()``
#: is called before each request and returns the time until the next free moment.
PACED_SCHEDULE = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = %f
local next_at = nil
function delay()
  local now = now_ms()
  next_at = (next_at or now) + interval
  local wait = next_at - now
  if wait < 0 then return 0 end
  return math.floor(wait + 0.5)
end
"""


def run_paced(wrk: str, base: str, paths_lua: str, accept: str, args, tmp: Path) -> dict:
    """The endpoint at a steady ``--rate`` instead of as fast as it answers: wrk's two
    threads each send a request every ``2 / rate`` seconds on a fixed schedule
    (PACED_SCHEDULE), over PACED_CONNECTIONS connections. A request whose moment comes while
    the server is behind goes as soon as a connection is free, so the achieved rate falls
    short of the schedule only when the server cannot keep up. Below saturation the latency
    is the service's and what little queue that rate makes; as fast as it answers
    (``run_wrk`` with 32 connections), the p99 is mostly the queue the 32 connections keep
    full (Little's law: 32 / rate)."""
    script = tmp / f"paced-{accept.split('/')[1]}.lua"
    script.write_text(paths_lua + PACED_SCHEDULE % (2 * 1000 / args.rate))
    return run_wrk(wrk, base, script, accept, args, args.duration, connections=PACED_CONNECTIONS)


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU each live process has used so far."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it has exited
        out[pid] = (int(fields[11]) + int(fields[12])) * TICK_S
    return out


def backend_pids(url: str) -> list[int]:
    """PostgreSQL server processes serving the bench database."""
    out = subprocess.run(
        [
            "psql",
            "-qAt",
            url,
            "-c",
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(p) for p in out.split()]


class CpuMeter:
    """CPU used during a run by the gunicorn workers, the database backends, Redis and wrk, so
    the cost of a request can be told apart from what other work on the machine takes."""

    def __init__(self, master: int, url: str):
        self.master, self.url = master, url

    def __enter__(self):
        self.before = cpu_seconds(worker_pids(self.master) + backend_pids(self.url) + redis_pids())
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        workers = cpu_seconds(worker_pids(self.master))
        backends = cpu_seconds(backend_pids(self.url))
        redis = cpu_seconds(redis_pids())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.app = sum(v - self.before.get(p, 0) for p, v in workers.items())
        self.db = sum(v - self.before.get(p, 0) for p, v in backends.items())
        self.redis = sum(v - self.before.get(p, 0) for p, v in redis.items())
        self.load = (children.ru_utime + children.ru_stime) - (
            self.children.ru_utime + self.children.ru_stime
        )


def redis_pids() -> list[int]:
    """The Redis server's processes (the rate-limit storage; shared with whatever else uses
    it on the machine, so its figure is an upper bound)."""
    out = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=20_000, help="codes with 10 events")
    parser.add_argument("--urls", type=int, default=4000, help="distinct codes requested")
    parser.add_argument("--workers", type=int, help="default: app.serve's")
    parser.add_argument("--threads", type=int, help="default: app.serve's")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument(
        "--rate", type=int, default=1000, help="the paced runs' rate, req/s (the goal's)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy one worker (JSON)")
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    parser.add_argument("--server-args", default="", help="more server options, quoted")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--db-prefix", default="trace_bench", help="scratch database name")
    args = parser.parse_args()
    wrk = ensure_wrk()

    with scratch_database(args.pg, args.db_prefix) as url:
        migrate.upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "bench-secret",
                "TRACE_ENV": "testing",
                "MAX_CODES_PER_REQUEST": args.codes,
            }
        )
        t0 = time.perf_counter()
        serials, _ = setup(app, args.codes, history_units=args.history)
        with app.extensions["trace"].engine.connect() as conn:
            codes = conn.execute(sa.text("SELECT count(*) FROM trace_codes")).scalar()
            events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        print(f"loaded {codes:,} codes, {events:,} events in {time.perf_counter() - t0:.0f} s")
        rng = random.Random(5)
        half = args.urls // 2
        picked = rng.sample(serials[: args.history], half) + rng.sample(
            serials[args.history :], args.urls - half
        )
        rng.shuffle(picked)
        paths = paths_of(app, picked)
        queries = {
            accept: queries_per_request(app, paths, accept)
            for accept in ("application/json", "text/html")
        }
        app.extensions["trace"].engine.dispose()
        del serials

        tmp = Path(tempfile.mkdtemp(prefix="bench-consumer-"))
        codes_lua = tmp / "codes.lua"
        codes_lua.write_text(WRK_SCRIPT % ",".join(f'"{p}"' for p in paths))
        fakes_lua = tmp / "fakes.lua"
        lot_path = paths[0].rsplit("/21/", 1)[0]
        fakes = [f"{lot_path}/21/{serial}" for serial in new_serials(args.urls)]
        fakes_lua.write_text(WRK_SCRIPT % ",".join(f'"{p}"' for p in fakes))
        healthz_lua = tmp / "healthz.lua"
        healthz_lua.write_text(WRK_SCRIPT % '"/healthz"')

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        speed = reference_ms()
        server = start_server(
            url, port, args.workers, args.threads, shlex.split(args.server_args), args.server
        )
        results = {}
        try:
            check(base, paths[0], picked[0])
            for name, script, accept in (
                ("trivial /healthz", healthz_lua, "application/json"),
                ("JSON form", codes_lua, "application/json"),
                ("HTML page", codes_lua, "text/html"),
                ("never-issued page", fakes_lua, "text/html"),
            ):
                fake = script is fakes_lua
                run_wrk(wrk, base, script, accept, args, args.warmup, fake)
                spy = None
                if args.profile and name == "JSON form":
                    RESULTS.mkdir(parents=True, exist_ok=True)
                    spy = subprocess.Popen(
                        [
                            str(Path(sys.executable).with_name("py-spy")),
                            "record",
                            "--pid",
                            str(worker_pids(server.pid)[0]),
                            "--duration",
                            str(int(args.duration) - 1),
                            "--format",
                            "raw",
                            "--output",
                            str(RESULTS / "consumer-json.folded"),
                            "--nonblocking",
                        ]
                    )
                with CpuMeter(server.pid, url) as cpu:
                    results[name] = run_wrk(wrk, base, script, accept, args, args.duration, fake)
                n = results[name]["requests"]
                results[name] |= {
                    "app_ms": cpu.app / n * 1000,
                    "db_ms": cpu.db / n * 1000,
                    "redis_ms": cpu.redis / n * 1000,
                    "wrk_ms": cpu.load / n * 1000,
                }
                if spy:
                    spy.wait()
            paths_lua = WRK_SCRIPT % ",".join(f'"{p}"' for p in paths)
            paced = {
                name: run_paced(wrk, base, paths_lua, accept, args, tmp)
                for name, accept in (("JSON form", "application/json"), ("HTML page", "text/html"))
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
            shutil.rmtree(tmp, ignore_errors=True)
        speed_after = reference_ms()

    trivial = results["trivial /healthz"]
    args.workers, args.threads = served_with(args.workers, args.threads)
    print(
        f"\n{args.server}, {args.workers} workers × {args.threads} threads; "
        f"wrk 2 threads, {args.connections} connections, {args.duration:g} s each after "
        f"{args.warmup:g} s warm-up; {codes:,} codes, {events:,} events, "
        f"{len(paths):,} distinct codes requested"
    )
    print(
        f"{'endpoint':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs trivial':>10} "
        f"{'queries':>8} {'CPU ms/request: app':>20} {'db':>6} {'redis':>6} {'wrk':>6} "
        f"{'2 cores/CPU':>12}"
    )
    for name, r in results.items():
        q = {
            "trivial /healthz": 0,
            "JSON form": queries["application/json"],
            "HTML page": queries["text/html"],
        }
        cpu = r["app_ms"] + r["db_ms"] + r["redis_ms"] + r["wrk_ms"]
        print(
            f"{name:<18} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
            f"{r['rps'] / trivial['rps']:>10.2f} {q.get(name, '-'):>8} {r['app_ms']:>20.2f} "
            f"{r['db_ms']:>6.2f} {r['redis_ms']:>6.2f} {r['wrk_ms']:>6.2f} {2000 / cpu:>12.0f}"
        )
    print(
        "CPU ms/request: what the server's workers, the database backends, Redis and wrk used per "
        "request; 2 cores/CPU: the req/s those costs allow on two otherwise idle cores"
    )
    print(
        f"\npaced at {args.rate:,} req/s (sent on a fixed schedule over {PACED_CONNECTIONS} "
        f"connections; the goal's load): achieved rate, latency"
    )
    print(f"{'endpoint':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in paced.items():
        print(f"{name:<18} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}")
    json_form, page = results["JSON form"], results["HTML page"]
    # Kept: the schedule asks exactly --rate; wrk divides by its whole run, the connects and
    # the last answer included, so a server that keeps up shows 99.5-100 % of it.
    goal = all(r["rps"] >= 0.99 * args.rate and r["p99"] < 50 for r in paced.values())
    for name, r in results.items():
        if r["timeouts"]:
            print(f"{name}: {r['timeouts']} requests unanswered after 5 s (not in the rates)")
    print(describe(speed, speed_after))
    print(
        f"goal (JSON and page keep {args.rate:,} req/s with p99 < 50 ms, paced; kept: at "
        f"least 99 % of the scheduled rate achieved): "
        f"{'met' if goal else 'NOT met'}"
    )
    for key, r in (("json", paced["JSON form"]), ("html", paced["HTML page"])):
        print(
            f"RESULT consumer_paced_{key}_rps={r['rps']:.0f} paced_{key}_p50_ms={r['p50']:.2f} "
            f"paced_{key}_p99_ms={r['p99']:.2f}"
        )
    fakes = results["never-issued page"]
    for key, r in (("trivial", trivial), ("json", json_form), ("html", page), ("fake", fakes)):
        print(
            f"RESULT consumer_{key}_rps={r['rps']:.0f} {key}_p50_ms={r['p50']:.2f} "
            f"{key}_p99_ms={r['p99']:.2f}"
        )


if __name__ == "__main__":
    main()
