"""gunicorn's settings for the service, read by ``gunicorn wsgi:app`` run from the project root
(the README's production command) and by ``bench/bench_consumer.py``.

One process per core, each with two threads (gthread): a request waits on PostgreSQL for
part of its time, and the second thread fills that wait. A consumer scan spends about 0.3 ms
in PostgreSQL against 0.7 ms in Python, so more threads only contend for the GIL, and the
slowest requests wait longer (bench/bench_consumer.py, alternating runs on one machine: p99
of the JSON scan 26 and 35 ms with two threads, 39 and 33 with three; with four, on a scratch
database, 52, 43 and 40 against 35, 37 and 33 with two). More processes than cores cost more
CPU a request (3 × 3 against 2 × 3, and earlier 3 × 2, 3 × 4 and 4 × 2 against 2 × 2). A
long request (a regulator's export) holds a thread for its duration: a deployment that
serves many of them beside the consumer scans can raise ``WEB_THREADS``. Override with
``WEB_WORKERS`` and ``WEB_THREADS``, or gunicorn's own command-line options.

Each worker listens on a socket of its own (``reuse_port``, SO_REUSEPORT), and the kernel
spreads new connections over them. On one shared socket, the worker that woke first took
nearly all of a burst of new connections: when wrk opened its 32 at once, one process got
31 or all 32 (one GIL then served nearly everything, at about 500 req/s). With a socket
each, p99 of the consumer scan was 107, 113 and 83 ms against 140, 148 and 168 on one
socket (alternating runs, same machine minutes). The price: connections waiting in the
queue of a worker that exits are reset (gunicorn stops workers only on restart or reload).
"""

import os

workers = int(os.environ.get("WEB_WORKERS", os.cpu_count() or 2))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", 2))
reuse_port = True
# Room for bursts of new connections (phones opening a page at once) while all threads work.
backlog = 2048
# gunicorn's HTTP parser in C (gunicorn_h1c, a dependency), not its pure-Python one: about
# 0.1 ms less CPU a request (a JSON scan 2.23 against 2.37 ms, /healthz 0.99 against 1.11,
# alternating runs under wrk). "fast" fails loudly if the extension is missing.
http_parser = "fast"


def on_starting(server):
    """Before any worker starts: the workers' app learns the worker count gunicorn runs with
    (``WEB_WORKERS``, or ``--workers`` on the command line), and the settings are checked
    once here, so that a refused start (such as production counting its rate limits in
    each worker's memory) stops gunicorn with the message instead of failing every worker."""
    from config import load_config

    os.environ["WEB_WORKERS"] = str(server.cfg.workers)
    load_config()


def post_worker_init(worker):
    """The application is loaded: its objects (modules, routes, templates, metadata) live as
    long as the worker, so the collector stops scanning them (``gc.freeze``). A full
    collection held every thread of the worker for 145 ms with the app's 143,000 objects
    scanned, and 1.4 ms with them frozen: such a pause is a load test's p99. The youngest
    generation is collected after 20,000 new objects instead of 700 (a scan makes a few
    thousand, freed as the request ends). Not with ``SPEEDUPS=off``."""
    import gc

    if os.environ.get("SPEEDUPS", "on") == "off":
        return

    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
