"""What the public limit costs a request with Redis: one round trip against two, same run.

A small Flask app (one blueprint, a view that answers "ok") is limited three ways, each on
the machine's Redis, with ``PUBLIC_RATE_LIMIT``'s default limit:

- ``flask-limiter``: Flask-Limiter's documented shared blueprint limit (``SPEEDUPS=off``);
- ``two trips``: :class:`app.ratelimit.PublicLimit` counting as limits does (``incr``, then
  ``get_expiry`` for the ``X-RateLimit-Reset`` header): the code before 2026-12-07;
- ``one trip``: :class:`~app.ratelimit.PublicLimit` with its :class:`~app.ratelimit.RedisCounter`
  (one Lua script counts and reads the expiry);

and ``no limit`` is the same view without one (the floor). Requests go straight to the WSGI
callable, as gunicorn calls it. The ways take turns (``--rounds``) so that a change in the
machine's load falls on all of them; reported per request: this process's CPU, Redis's CPU
(its process, read from /proc), the wall time, and the ratios against ``two trips``.

    python -m bench.bench_ratelimit [--requests 5000] [--rounds 5] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from flask import Blueprint, Flask
from flask_limiter import Limiter

from app.ratelimit import PublicLimit
from bench.machine import describe, reference_ms
from config import Config

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
WAYS = ("no limit", "flask-limiter", "two trips", "one trip")


def limited_app(way: str, storage: str, limit: str) -> Flask:
    """The app limited one ``way``; its counters under a key prefix of its own."""
    flask_app = Flask(way.replace(" ", "-"))
    flask_app.config.update(RATELIMIT_STORAGE_URI=storage, RATELIMIT_HEADERS_ENABLED=True)
    limiter = Limiter(lambda: "192.0.2.1", app=flask_app, key_prefix=f"bench-{uuid.uuid4().hex}")
    bp = Blueprint("pages", __name__)

    @bp.get("/page")
    def page():
        return "ok"

    if way == "flask-limiter":
        limiter.shared_limit(limit, scope="pages")(bp)
    elif way != "no limit":
        public = PublicLimit(limiter, limit, lambda: "192.0.2.1", one_trip=way == "one trip")
        public.apply(flask_app, bp)
        public.take_over(flask_app)
    flask_app.register_blueprint(bp)
    return flask_app


def caller(app: Flask):
    """``GET /page`` straight to the WSGI callable; returns the status code."""
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def get() -> int:
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/page",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "192.0.2.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        body = app(environ, start_response)
        b"".join(body)
        if hasattr(body, "close"):
            body.close()
        return int(statuses.pop().split(" ", 1)[0])

    return get


def redis_cpu() -> float:
    """CPU seconds the Redis server has used so far (0 when it cannot be read)."""
    out = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout
    total = 0.0
    for pid in out.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) * TICK_S
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per way and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--limit", default="100000000 per minute", help="never reached")
    args = parser.parse_args()
    print(f"limit {args.limit!r} (the default is {Config.PUBLIC_RATE_LIMIT!r}); {args.redis}")
    gets = {way: caller(limited_app(way, args.redis, args.limit)) for way in WAYS}
    for get in gets.values():  # warm up: connections, the script loaded, caches
        for _ in range(300):
            assert get() == 200
    totals = {way: [0.0, 0.0, 0.0] for way in WAYS}  # app CPU, Redis CPU, wall
    speed = reference_ms()
    load = os.getloadavg()
    for _ in range(args.rounds):
        for way, get in gets.items():
            cpu0, redis0, wall0 = time.process_time(), redis_cpu(), time.perf_counter()
            for _ in range(args.requests):
                get()
            totals[way][0] += time.process_time() - cpu0
            totals[way][1] += redis_cpu() - redis0
            totals[way][2] += time.perf_counter() - wall0
    speed_after = reference_ms()
    n = args.requests * args.rounds
    per = {way: [v / n * 1000 for v in t] for way, t in totals.items()}
    base = per["two trips"]
    print(
        f"{n:,} requests per way, in {args.rounds} alternating rounds; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start"
    )
    print(
        f"{'way':<14} {'app CPU ms':>10} {'Redis CPU ms':>12} {'wall ms':>8} "
        f"{'app CPU vs two':>14} {'wall vs two':>11} {'limit CPU ms':>12}"
    )
    floor = per["no limit"][0]
    for way, (app_ms, redis_ms, wall_ms) in per.items():
        print(
            f"{way:<14} {app_ms:>10.3f} {redis_ms:>12.3f} {wall_ms:>8.3f} "
            f"{app_ms / base[0]:>14.2f} {wall_ms / base[2]:>11.2f} {app_ms - floor:>12.3f}"
        )
    print("limit CPU ms: the app CPU a request spends on its limit (over 'no limit')")
    print(describe(speed, speed_after))
    one, two = per["one trip"], per["two trips"]
    print(
        f"RESULT ratelimit_one_trip_app_cpu_ms={one[0]:.3f} two_trips_app_cpu_ms={two[0]:.3f} "
        f"limit_cpu_ratio={(one[0] - floor) / (two[0] - floor):.2f} "
        f"wall_ratio={one[2] / two[2]:.2f}"
    )


if __name__ == "__main__":
    main()
