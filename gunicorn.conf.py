"""gunicorn's settings for the service, read by ``gunicorn wsgi:app`` run from the project root
(the README's production command) and by ``bench/bench_consumer.py``.

One process per core, each with four threads (gthread): a request waits on PostgreSQL for
part of its time, and the threads fill that wait. More processes than cores cost more CPU a
request on two cores (consumer scans, workers + database + load generator, two runs each on
a shared machine: 2 × 4 threads 1.9 and 2.1 ms, 2 × 2 1.9 and 2.0, 3 × 2 2.2 and 2.4,
3 × 4 2.4, 4 × 2 3.2). Override with ``WEB_WORKERS`` and ``WEB_THREADS``, or gunicorn's own
command-line options.

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
threads = int(os.environ.get("WEB_THREADS", 4))
reuse_port = True
# Room for bursts of new connections (phones opening a page at once) while all threads work.
backlog = 2048
# gunicorn's HTTP parser in C (gunicorn_h1c, a dependency), not its pure-Python one: about
# 0.1 ms less CPU a request (a JSON scan 2.23 against 2.37 ms, /healthz 0.99 against 1.11,
# alternating runs under wrk). "fast" fails loudly if the extension is missing.
http_parser = "fast"


def post_worker_init(worker):
    """The application is loaded: its objects (modules, routes, templates, metadata) live as
    long as the worker, so the collector stops scanning them (``gc.freeze``). A full
    collection held every thread of the worker for 145 ms with the app's 143,000 objects
    scanned, and 1.4 ms with them frozen: such a pause is a load test's p99. The youngest
    generation is collected after 20,000 new objects instead of 700 (a scan makes a few
    thousand, freed as the request ends)."""
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
