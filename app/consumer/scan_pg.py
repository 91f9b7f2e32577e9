"""The consumer's scan on PostgreSQL in one statement: the same :class:`ScanFacts` as the
statement-by-statement scan (:func:`app.consumer.scan.scan`), in one round trip. It is what
meets the scan page's load goal (bench/bench_consumer.py).

Transactions: the statement, and the roll-up a scan may bring forward, run on this thread's
own connection (:data:`_CONNECTIONS`, a :class:`~app.db.StatementConnections`), in
autocommit and outside the request's session, by design: each statement is its own
transaction, so the check is committed when the statement returns, whatever happens to the
request after it (no BEGIN, no COMMIT: a round trip less, and no pool checkout). Only what
the statement does not read (the batch's details and the merchant's credit when they are not
kept, and the rare run of the copied-code rule, whose finding is written as the other rules'
are) goes through the request's session, which the request commits (``app.consumer.pages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.consumer.checks import copied_code_rule, open_anomalies
from app.consumer.facts import ScanFacts, Step, scan_facts
from app.consumer.units import Unit
from app.db import StatementConnections
from config import Config
from tracecore.anomalies import CheckSummary
from tracecore.errors import NotFound
from tracecore.gs1 import validate_serial

log = logging.getLogger(__name__)

#: The unit, the recorded check, the code's check totals with it, its anomalies and its
#: events with the companies' names: one round trip, one implicit transaction (autocommit).
#: A statement sees one snapshot, which does not hold the row its own INSERT adds: the totals
#: count the new check from the parameters (its place is not known yet, so it adds a check
#: and perhaps a client, never a district). The INSERT happens only when the unit exists and
#: the link's GTIN and lot are its own. The check is its client's first of the code when
#: the unique index of first checks takes it (``first_check``), else a later one. The
#: totals are the code's roll-up (CheckRollup), if it has one, and the checks since
#: (``recent``), whose first checks are new clients: no part reads all of a code's checks.
#: ``recent`` and ``oldest_recent`` tell when to roll up again (:func:`roll_up_checks`).
#: The merchant's credit version (credit_version) tells whether its kept credit still
#: holds. ``set_config(…, true)`` is ``SET LOCAL``: this statement's commit does not wait
#: for its WAL flush (see :func:`app.consumer.checks.record_check`).
_SCAN_IN_ONE = """
WITH u AS (
    SELECT c.serial, c.state, c.batch_id, p.merchant_id, b.status, b.recalled_at,
           b.recall_reason, b.expires_on, p.gtin, b.lot
    FROM trace_codes c
    JOIN batches b ON b.id = c.batch_id
    JOIN products p ON p.id = b.product_id
    WHERE c.serial = %(serial)s
), ok AS (
    SELECT u.serial FROM u
    WHERE %(gtin)s::text IS NULL
       OR (u.gtin = %(gtin)s::text AND (%(lot)s::text IS NULL OR u.lot = %(lot)s::text))
), first_check AS (
    INSERT INTO verifications (serial, client_hash, verified_at, new_client)
    SELECT serial, %(client)s, %(now)s, true FROM ok
    ON CONFLICT (serial, client_hash) WHERE new_client DO NOTHING
    RETURNING id
), later_check AS (
    INSERT INTO verifications (serial, client_hash, verified_at, new_client)
    SELECT serial, %(client)s, %(now)s, false FROM ok
    WHERE NOT EXISTS (SELECT FROM first_check)
    RETURNING id
), rolled AS (
    SELECT upto, checks, clients, first_at, districts FROM check_rollups
    WHERE serial = %(serial)s
), recent AS (
    SELECT count(*) AS checks, count(*) FILTER (WHERE new_client) AS clients,
           min(verified_at) AS oldest,
           array_agg(DISTINCT district_code) FILTER (WHERE district_code IS NOT NULL)
               AS districts
    FROM verifications
    WHERE serial = %(serial)s
      AND verified_at >= coalesce((SELECT upto FROM rolled), '-infinity')
)
SELECT u.serial, u.state, u.batch_id, u.merchant_id, u.status, u.recalled_at,
       u.recall_reason, u.expires_on, u.gtin, u.lot,
       (SELECT count(*) FROM first_check) + (SELECT count(*) FROM later_check) AS recorded,
       coalesce(r.checks, 0) + t.checks + 1 AS checks,
       coalesce(r.clients, 0) + t.clients + (SELECT count(*) FROM first_check) AS clients,
       CASE WHEN r.districts IS NULL THEN coalesce(cardinality(t.districts), 0)
            ELSE (SELECT count(*) FROM (SELECT jsonb_array_elements_text(r.districts)
                                        UNION SELECT unnest(t.districts)) d)
       END AS districts,
       coalesce(r.first_at, least(t.oldest, %(now)s)) AS first_at,
       (SELECT json_agg(json_build_array(a.type, a.evidence, a.status))
        FROM anomalies a
        WHERE a.subject_type = 'code' AND a.subject = u.serial
       ) AS anomalies,
       (SELECT json_agg(json_build_array(
                   e.id, e.type, e.occurred_at, e.lat, e.lon,
                   CASE e.party_type WHEN 'merchant' THEN m.name
                                     WHEN 'courier' THEN lc.name END,
                   e.violation)
               ORDER BY e.occurred_at, e.id)
        FROM (
            SELECT id, type, occurred_at, ST_Y(location) AS lat, ST_X(location) AS lon,
                   party_type, party_id, violation
            FROM events WHERE serial = u.serial
            UNION
            SELECT id, type, occurred_at, ST_Y(location), ST_X(location),
                   party_type, party_id, violation
            FROM events
            WHERE waybill IN (SELECT waybill FROM parcel_items WHERE serial = u.serial)
        ) e
        LEFT JOIN merchants m ON e.party_type = 'merchant' AND m.id = e.party_id
        LEFT JOIN couriers co ON e.party_type = 'courier' AND co.id = e.party_id
        LEFT JOIN logistics_companies lc ON lc.id = co.company_id
       ) AS events,
       (SELECT max(r.id) FROM credit_records r
        WHERE r.party_type = 'merchant' AND r.party_id = u.merchant_id) AS last_record,
       (SELECT max(a.decided_at) FROM anomalies a
        WHERE a.party_type = 'merchant' AND a.party_id = u.merchant_id) AS last_decision,
       set_config('synchronous_commit', 'off', true) AS synchronous_commit,
       t.checks AS recent, t.oldest AS oldest_recent
FROM u CROSS JOIN recent t LEFT JOIN rolled r ON true
"""


#: The scan's connections: one per thread, in autocommit, apart from the pool and from the
#: request's session by design (see this module's docstring and StatementConnections).
_CONNECTIONS = StatementConnections()


def _run_in_one(engine: sa.Engine, params: dict):
    """The row of :data:`_SCAN_IN_ONE`, on this thread's autocommit connection (the
    statement is its own transaction: no BEGIN, no COMMIT). Nothing pings the connection
    first: when the server has dropped it (a restart), it is closed, the pool's connections
    are renewed, and the statement goes once more on a fresh connection (a dropped
    connection ran nothing; the check is recorded once)."""
    for attempt in (1, 2):
        cur = _CONNECTIONS.cursor(engine)
        try:
            return cur.execute(_SCAN_IN_ONE, params, prepare=True).fetchone()
        except psycopg.OperationalError as exc:
            if not engine.dialect.is_disconnect(exc, cur.connection, None):
                raise
            _CONNECTIONS.discard()
            # The pool's connections are as old: SQLAlchemy's own disconnect handling,
            # which renews every connection made before now at its next checkout.
            engine.pool._invalidate(cur.connection, exc)
            if attempt == 2:
                raise sa.exc.OperationalError(
                    "scan", None, exc, connection_invalidated=True
                ) from exc
    raise AssertionError("unreachable")


def scan_in_one(
    engine: sa.Engine,
    session: Callable[[], Session],
    serial: str,
    client_hash: str,
    config: Config,
    *,
    gtin14: str | None = None,
    lot: str | None = None,
    now: datetime | None = None,
) -> ScanFacts:
    """:func:`app.consumer.scan.scan` on PostgreSQL in one statement: the facts of the
    check (NotFound when the unit was never issued, or not for the GTIN and lot of the
    link), the check committed by the statement itself. ``session`` opens the request's
    session, only needed for what is not kept, or when the copied-code rule may fire (its
    finding is flushed, as the other rules' are, and committed by the request)."""
    now = now or datetime.now(UTC)
    row = _run_in_one(
        engine,
        {
            "serial": validate_serial(serial),
            "client": client_hash,
            "now": now,
            "gtin": gtin14,
            "lot": lot,
        },
    )
    if row is None:
        raise NotFound("no trace code with this serial; it was never issued", field="serial")
    (
        serial,
        state,
        batch_id,
        merchant_id,
        status,
        recalled_at,
        recall_reason,
        expires_on,
        _gtin,
        _lot,
        recorded,
        checks,
        clients,
        district_count,
        first_at,
        anomalies,
        events,
        last_record,
        last_decision,
        _,
        recent,
        oldest_recent,
    ) = row
    if not recorded:
        raise NotFound("this serial was not issued for the product and lot in the link")
    unit = Unit(
        serial, state, batch_id, merchant_id, status, recalled_at, recall_reason, expires_on
    )
    summary = CheckSummary(checks, clients, district_count, first_at)
    anomalies = anomalies or ()
    found = tuple((t, e) for t, e, status in anomalies if status not in ("dismissed", "withdrawn"))
    on_file = next((e for t, e, _ in anomalies if t == "copied_code"), None)
    if on_file is not None:
        # The copied code is on file, dismissed or not: the rule would write nothing, and the
        # first check with a place is in its evidence. Its scans cost a genuine code's.
        summary = replace(summary, first_district=on_file.get("first_check_district"))
    elif summary.could_be_copied(config.thresholds):
        # Rare: the rule reads the districts and may write a finding, as share_place does.
        s = session()
        summary = copied_code_rule(s, unit, config, now)
        found = tuple(open_anomalies(s, serial))
    if recent > ROLL_UP_AFTER and now - oldest_recent > 2 * ROLL_UP_MARGIN:
        roll_up_checks(engine, serial)
    steps = tuple(
        Step(i, t, datetime.fromisoformat(at), lat, lon, by, violation)
        for i, t, at, lat, lon, by, violation in events or ()
    )
    version = (last_record, last_decision)
    return scan_facts(session, unit, summary, found, steps, version, config, now)


#: A scan that counts more checks than this since its code's roll-up brings the roll-up
#: forward, when enough of them are older than :data:`ROLL_UP_MARGIN`.
ROLL_UP_AFTER = 200
#: Checks younger than this (by the database's clock) are never rolled up: a check is
#: committed within its request, and the app's clock is the database's within this.
ROLL_UP_MARGIN = timedelta(minutes=1)

#: The code's roll-up brought forward to a minute ago: the old row (locked, so that two
#: roll-ups of one code take turns) plus the checks since it, each client's first check of
#: the code adding a client. Only a later ``upto`` replaces a row; two first roll-ups of a
#: code each count from the start.
_ROLL_UP = """
WITH old AS (
    SELECT upto, checks, clients, first_at, districts FROM check_rollups
    WHERE serial = %(serial)s
    FOR UPDATE
), span AS (
    SELECT district_code, verified_at, new_client FROM verifications
    WHERE serial = %(serial)s
      AND verified_at >= coalesce((SELECT upto FROM old), '-infinity')
      AND verified_at < now() - %(margin)s::interval
)
INSERT INTO check_rollups AS r (serial, upto, checks, clients, first_at, districts)
SELECT %(serial)s, now() - %(margin)s::interval,
       coalesce((SELECT checks FROM old), 0) + (SELECT count(*) FROM span),
       coalesce((SELECT clients FROM old), 0) + (SELECT count(*) FROM span WHERE new_client),
       coalesce((SELECT first_at FROM old), (SELECT min(verified_at) FROM span)),
       coalesce((SELECT jsonb_agg(d ORDER BY d) FROM (
           SELECT jsonb_array_elements_text((SELECT districts FROM old)) AS d
           UNION
           SELECT district_code FROM span WHERE district_code IS NOT NULL) ds), '[]')
WHERE EXISTS (SELECT FROM span)
ON CONFLICT (serial) DO UPDATE
SET upto = excluded.upto, checks = excluded.checks, clients = excluded.clients,
    first_at = excluded.first_at, districts = excluded.districts
WHERE r.upto < excluded.upto
"""


def roll_up_checks(engine: sa.Engine, serial: str) -> None:
    """Bring ``serial``'s roll-up forward (PostgreSQL), on this thread's scan connection. It
    only saves later scans work: when it fails, the scan that called it is answered all the
    same, and a later scan tries again."""
    cur = _CONNECTIONS.cursor(engine)
    try:
        cur.execute(_ROLL_UP, {"serial": serial, "margin": ROLL_UP_MARGIN}, prepare=True)
    except psycopg.Error:
        log.warning("rolling up the checks of %s failed", serial, exc_info=True)
        _CONNECTIONS.discard()
