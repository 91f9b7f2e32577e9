"""The production web server: ``python -m app.serve`` runs the app under granian (a Rust HTTP
server for Python) with the service's settings, read once before any worker starts.

    python -m app.serve [--bind 127.0.0.1:8000] [--workers N] [--threads N]
                        [--forwarded-allow-ips 10.0.0.5,10.0.1.0/24]

- **Workers**: one process per core (``WEB_WORKERS``, or ``--workers``). The count is checked
  against the settings before anything starts: production refuses rate-limit counters kept
  in each worker's memory when there are several workers (``config.py``), and the server
  then stops with that message instead of failing in every worker.
- **Threads**: each worker runs the app in two threads (``WEB_THREADS``, or ``--threads``):
  a request waits on PostgreSQL for part of its time, and the second thread fills that wait.
  Connections are held by granian's own I/O runtime, not by the threads, so an idle
  keep-alive connection never holds a thread, and every connection of a worker is served in
  turn.
- **Why granian and not gunicorn**: the same scan costs about 0.7 ms less CPU a request
  (gunicorn's gthread worker does its HTTP and connection handling in Python), which is what
  the consumer scan's goal of 1,000 a second on two cores needs (decision 0016,
  docs/performance.md).
- **Behind a reverse proxy**: the proxies whose ``X-Forwarded-For`` and
  ``X-Forwarded-Proto`` are believed (``FORWARDED_ALLOW_IPS``, or
  ``--forwarded-allow-ips``: addresses and networks). A request from one of them takes its
  client address from the header (the nearest address that is not a trusted proxy), so the
  rate limits and the consumer checks count clients, not the proxy. From anywhere else the
  headers are ignored: a client cannot name its own address. None are trusted by default.
- **Each worker** builds the app (:func:`worker_app`), then drops the service's secrets from
  its process environment, which granian copies into every request's WSGI environ, and
  freezes the app's objects out of the collector's scans (decision 0012).
"""

from __future__ import annotations

import argparse
import copy
import gc
import ipaddress
import os
import sys

#: The environment variables that hold secrets or credentials: read into the settings when the
#: worker builds the app, then dropped from its environment (granian copies the environment
#: into every request's WSGI environ).
SECRETS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "MQTT_URL",
    "RATE_LIMIT_STORAGE",
)


def worker_app():
    """The app of one worker process (granian's factory, called once in each worker)."""
    from wsgi import app

    for name in SECRETS:
        os.environ.pop(name, None)
    if os.environ.get("SPEEDUPS", "on") != "off":
        # The app's objects (modules, routes, templates, metadata) live as long as the worker:
        # the collector stops scanning them, and collects the youngest generation after
        # 20,000 new objects instead of 700 (a scan makes a few thousand, freed as it ends).
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "")
    if trusted:
        from granian.utils.proxies import wrap_wsgi_with_proxy_headers

        return wrap_wsgi_with_proxy_headers(app, trusted.split(","))
    return app


def parse_trusted_proxies(value: str) -> list[str]:
    """``FORWARDED_ALLOW_IPS``: proxies' addresses and networks, comma-separated (blank:
    none). Anything else, a host name or ``*`` included, is refused: trusting every peer
    would let any client name its own address."""
    trusted = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            net = ipaddress.ip_network(item)
        except ValueError:
            raise ValueError(
                f"FORWARDED_ALLOW_IPS must list IP addresses or networks (10.0.0.5, "
                f"10.0.1.0/24); got {item!r}"
            ) from None
        trusted.append(str(net) if net.num_addresses > 1 else str(net.network_address))
    return trusted


#: One line a request, after the worker's process id (the formatter's).
ACCESS_FORMAT = '[%(time)s] %(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1f ms'


def _logging(access_log: str | None) -> dict | None:
    """granian's logging settings with the access log written to ``access_log``, each line
    starting with the id of the worker process that served it."""
    if access_log is None:
        return None
    from granian.log import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = "%(process)d %(message)s"
    if access_log != "-":
        config["handlers"]["access"] = {
            "formatter": "access",
            "class": "logging.FileHandler",
            "filename": access_log,
        }
    return config


def default_workers() -> int:
    """``WEB_WORKERS``, else one process per core."""
    return int(os.environ.get("WEB_WORKERS") or os.cpu_count() or 2)


def default_threads() -> int:
    """``WEB_THREADS``, else two."""
    return int(os.environ.get("WEB_THREADS") or 2)


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as granian's address and port."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SystemExit(f"--bind must be HOST:PORT, e.g. 127.0.0.1:8000; got {bind!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"))
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--backlog", type=int, default=2048, help="connections waiting")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--access-log", metavar="FILE", help="log each request to FILE ('-': standard output)"
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get("FORWARDED_ALLOW_IPS", ""),
        metavar="ADDRESSES",
        help="reverse proxies whose X-Forwarded-For is believed (addresses, networks)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        raise SystemExit("--workers and --threads must be at least 1")
    try:
        os.environ["FORWARDED_ALLOW_IPS"] = ",".join(
            parse_trusted_proxies(args.forwarded_allow_ips)
        )
    except ValueError as exc:
        print(f"app.serve: {exc}", file=sys.stderr)
        raise SystemExit(3) from None

    from config import ConfigError, load_config

    # The workers' app learns the worker count it runs with, and the settings are checked once
    # here: a refused start stops the server with the message.
    os.environ["WEB_WORKERS"] = str(args.workers)
    try:
        load_config()
    except ConfigError as exc:
        print(f"app.serve: {exc}", file=sys.stderr)
        raise SystemExit(3) from None

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    address, port = parse_bind(args.bind)
    Granian(
        "app.serve:worker_app",
        factory=True,
        address=address,
        port=port,
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.threads,
        backlog=args.backlog,
        websockets=False,
        respawn_failed_workers=True,
        log_level=LogLevels(args.log_level),
        log_access=args.access_log is not None,
        log_access_format=ACCESS_FORMAT,
        log_dictconfig=_logging(args.access_log),
    ).serve()


if __name__ == "__main__":
    main()
