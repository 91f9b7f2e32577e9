"""gunicorn's settings for ``bench/bench_consumer.py --server gunicorn``: the production server
before granian (decision 0016), kept as the bench's baseline. One process per core
(``WEB_WORKERS``), two threads each (gthread, ``WEB_THREADS``), a socket per worker
(``reuse_port``: on one shared socket, the worker that woke first took nearly all of a burst
of new connections, decision 0011), gunicorn's C HTTP parser, and the collector's settings
of app.serve's workers (decision 0012)."""

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


def post_worker_init(worker):
    """As app.serve.worker_app: the app's objects frozen out of the collector's scans."""
    import gc

    if os.environ.get("SPEEDUPS", "on") == "off":
        return

    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
