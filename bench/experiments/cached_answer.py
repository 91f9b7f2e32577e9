"""A measurement of a design, not a fix: the resolver with the per-batch part of the answer
cached for 10 s in each worker and the unit looked up with one statement.

A gunicorn configuration file for ``bench/bench_consumer.py``::

    python bench/bench_consumer.py --gunicorn-args "-c bench/experiments/cached_answer.py"

After the app is loaded in each worker it (1) turns off the connection pool's pre-ping and
runs sessions in autocommit (no ``BEGIN``/``ROLLBACK`` round trips for a read), and (2)
replaces the resolver's lookup by ``SELECT batch_id, state FROM trace_codes WHERE serial =``
plus the product, batch, merchant and credit answer of the batch, built once by the real
``code_answer`` and kept for 10 s. It patches module globals of ``app.codes.resolver`` and
``app.codes.operations``, so it measures the resolver as it was written on 2026-11-22 and
stops working when that changes. What it leaves out, a real version would need: a bound on
the cache, the same staleness accepted for a recall and a credit decision (or an
invalidation across workers), and the unit's own history, which no per-batch cache holds.
"""

import time

import sqlalchemy as sa

TTL_S = 10


def post_worker_init(worker):
    ext = worker.wsgi.extensions["trace"]
    ext.engine.pool._pre_ping = False
    ext.sessionmaker.configure(bind=ext.engine.execution_options(isolation_level="AUTOCOMMIT"))

    import app.codes.resolver as resolver
    from app.codes import api, operations
    from trace.errors import NotFound
    from trace.gs1 import parse_digital_link

    real_find = operations.find_code
    lookup = sa.text("SELECT batch_id, state FROM trace_codes WHERE serial = :serial")
    batches: dict[int, tuple[float, dict]] = {}

    def find_and_answer(session, uri):
        link = parse_digital_link(uri)
        row = session.execute(lookup, {"serial": link.serial}).one_or_none()
        if row is None:
            raise NotFound("no trace code with this serial; it was never issued")
        hit = batches.get(row.batch_id)
        if hit is None or time.monotonic() - hit[0] > TTL_S:
            hit = (time.monotonic(), api.code_answer(real_find(session, link.serial)))
            batches[row.batch_id] = hit
        base = hit[1]
        if base["product"]["gtin"] != link.gtin14 or (
            link.lot is not None and base["batch"]["lot"] != link.lot
        ):
            raise NotFound("this serial was not issued for the product and lot in the link")
        prefix = base["uri"][: -len(base["serial"])]
        return base | {"serial": link.serial, "uri": prefix + link.serial, "state": row.state}

    operations.find_code_by_uri = find_and_answer
    resolver.code_answer = lambda answer: answer
