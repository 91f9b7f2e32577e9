"""The consumer's scan: record the check, run the copied-code rule, and answer what the public
may know about the unit, with the verdict first and the journey at district level.

One use case, :func:`scan`, serves the HTML page and its JSON form alike.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from app import serialize
from app.anomalies.findings import record_findings
from app.anomalies.models import Anomaly
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.consumer import texts
from app.consumer.models import CheckRollup, Verification
from app.credit.operations import (
    credit_version,
    forget_public_accounts,
    kept_public_account,
    public_account,
)
from app.db import StatementConnections, point
from app.events import history
from config import Config
from tracecore import districts, verdict
from tracecore.anomalies import CheckSummary, copied_code
from tracecore.errors import NotFound, ValidationError
from tracecore.gs1 import digital_link_uri, parse_digital_link, validate_serial
from tracecore.regions import PROVINCES
from tracecore.vocabulary import EventType

log = logging.getLogger(__name__)

#: Times on the page are China Standard Time, as the consumer's clock shows them.
CST = timezone(timedelta(hours=8), "CST")
#: Consumers see cities for these steps, districts for the others.
CITY_ONLY = frozenset({EventType.IN_TRANSIT})


# -- places, never finer than a district ----------------------------------------------------


# Places come from the bundled boundaries, which do not change while the process runs: the
# lookups are kept (the answers are shared: do not modify them). They were about a twentieth
# of a scan's CPU.


@functools.lru_cache(maxsize=16_384)
def place_of_region(region_code: str | None, *, city_only: bool = False) -> dict | None:
    """The public name of a GB/T 2260 region: district (or city) when bundled, else province."""
    if not region_code:
        return None
    found = districts.district(region_code)
    if found is not None:
        if city_only:
            return {"region_code": found.city_code, "zh": found.city, "en": found.city_en}
        return {
            "region_code": found.code,
            "zh": found.city + found.name,
            "en": f"{found.name_en}, {found.city_en}",
        }
    province = PROVINCES.get(region_code[:2])
    if province is None:
        return None
    return {"region_code": region_code[:2] + "0000", "zh": province[0], "en": province[1]}


@functools.lru_cache(maxsize=65_536)
def place_of_point(lat: float | None, lon: float | None, *, city_only: bool = False):
    """The district (or city) a point lies in, or None outside the bundled boundaries."""
    if lat is None or lon is None:
        return None
    found = districts.locate(lat, lon)
    return None if found is None else place_of_region(found.code, city_only=city_only)


def _local(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat(timespec="minutes")


# -- the unit --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """What changes about a unit from one scan to the next (its batch's details are kept)."""

    serial: str
    state: str
    batch_id: int
    merchant_id: int
    batch_status: str
    recalled_at: datetime | None
    recall_reason: str | None
    expires_on: date


# Statements built once: building and keying them again on every scan cost more than running.
_UNIT = (
    sa.select(
        TraceCode.serial,
        TraceCode.state,
        TraceCode.batch_id,
        Product.merchant_id,
        Batch.status,
        Batch.recalled_at,
        Batch.recall_reason,
        Batch.expires_on,
    )
    .join(Batch, TraceCode.batch_id == Batch.id)
    .join(Product, Batch.product_id == Product.id)
    .where(TraceCode.serial == sa.bindparam("serial"))
)


def find_unit(session: Session, serial: str) -> Unit:
    """The unit behind a serial; NotFound (a likely counterfeit) when it was never issued."""
    row = session.execute(_UNIT, {"serial": validate_serial(serial)}).one_or_none()
    if row is None:
        raise NotFound("no trace code with this serial; it was never issued", field="serial")
    return Unit(
        row.serial,
        row.state.value,
        row.batch_id,
        row.merchant_id,
        row.status.value,
        row.recalled_at,
        row.recall_reason,
        row.expires_on,
    )


def link_parts(uri: str) -> tuple[str, str, str | None]:
    """Serial, GTIN-14 and lot (None when the link has none) of a unit's Digital Link."""
    link = parse_digital_link(uri)
    if link.serial is None:
        raise ValidationError("the link has no serial (AI 21)", field="uri")
    return link.serial, link.gtin14, link.lot


def find_unit_by_link(session: Session, uri: str, config: Config) -> Unit:
    """The unit behind a Digital Link: the GTIN and lot in it must be the unit's own (a real
    serial under another product's GTIN is a forged link)."""
    serial, gtin14, lot = link_parts(uri)
    unit = find_unit(session, serial)
    part = batch_part(session, unit.batch_id, config)
    if part["product"]["gtin"] != gtin14 or (lot is not None and part["batch"]["lot"] != lot):
        raise NotFound("this serial was not issued for the product and lot in the link")
    return unit


#: batch id -> (valid until, monotonic clock; the batch's public details).
_BATCH_PARTS: dict[int, tuple[float, dict]] = {}


def kept_batch_part(batch_id: int) -> dict | None:
    """The batch's public details when this process still keeps them, else None."""
    cached = _BATCH_PARTS.get(batch_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


def batch_part(session: Session, batch_id: int, config: Config) -> dict:
    """What the public may know of a unit's batch, product and merchant, kept per process for
    ``PUBLIC_CREDIT_MAX_AGE_S`` (status and recall are read fresh with the unit)."""
    kept = kept_batch_part(batch_id)
    if kept is not None:
        return kept
    now = time.monotonic()
    batch = (
        session.scalars(
            sa.select(Batch)
            .where(Batch.id == batch_id)
            .options(
                joinedload(Batch.product).joinedload(Product.merchant),
                joinedload(Batch.certificates),
            )
        )
        .unique()
        .one()
    )
    part = {
        "product": serialize.product(batch.product),
        "batch": serialize.batch(batch),
        "merchant": serialize.merchant(batch.product.merchant),
        "uri_prefix": digital_link_uri(
            config.RESOLVER_HOST, batch.product.gtin, batch.lot, None, scheme=config.RESOLVER_SCHEME
        )
        + "/21/",
    }
    if len(_BATCH_PARTS) > 10_000:
        _BATCH_PARTS.clear()
    _BATCH_PARTS[batch_id] = (now + config.PUBLIC_CREDIT_MAX_AGE_S, part)
    return part


def forget_public_parts() -> None:
    """Drop what this process keeps for public answers (tests; after a bulk correction)."""
    _BATCH_PARTS.clear()
    forget_public_accounts()


# -- the check itself -------------------------------------------------------------------------

_INSERT_CHECK = sa.insert(Verification)
_FIRST_CHECK = sa.select(Verification.id).where(
    Verification.serial == sa.bindparam("serial"),
    Verification.client_hash == sa.bindparam("client_hash"),
    Verification.new_client,
)
_CHECK_TOTALS = sa.select(
    sa.func.count(),
    sa.func.count(sa.distinct(Verification.client_hash)),
    sa.func.count(sa.distinct(Verification.district_code)),
    sa.func.min(Verification.verified_at),
).where(Verification.serial == sa.bindparam("serial"))
_CHECK_PLACES = (
    sa.select(Verification.district_code, sa.func.min(Verification.verified_at))
    .where(Verification.serial == sa.bindparam("serial"), Verification.district_code.is_not(None))
    .group_by(Verification.district_code)
)


def record_check(session: Session, serial: str, client_hash: str, now: datetime) -> None:
    """A consumer's check of a code (a ``verified`` scan); its place may follow.

    On PostgreSQL the transaction does not wait for its WAL flush: a check lost in a crash
    costs nothing, and the wait would be most of the page's time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    params = {"serial": serial, "client_hash": client_hash}
    new_client = session.execute(_FIRST_CHECK, params).first() is None
    session.execute(_INSERT_CHECK, {**params, "verified_at": now, "new_client": new_client})


def share_place(
    session: Session, serial: str, client_hash: str, lat: float, lon: float, config: Config
) -> dict | None:
    """The consumer agreed to share where they are: the client's latest check of this code
    gets a coarse place (about a kilometre), and the copied-code rule runs again unless the
    code is on file as copied. A district new to a check already rolled up joins its roll-up's
    districts (a place replaced by another stays there: the code was seen in both)."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationError("lat and lon are WGS 84 degrees", field="lat")
    check = session.scalar(  # newest first: the client has just checked it
        sa.select(Verification)
        .where(Verification.serial == serial, Verification.client_hash == client_hash)
        .order_by(Verification.verified_at.desc(), Verification.id.desc())
        .limit(1)
    )
    if check is None:
        raise NotFound("check the code on its page before sharing a place")
    lat, lon = round(lat, 2), round(lon, 2)
    found = districts.locate(lat, lon)
    check.location = point(lat, lon)
    check.district_code = found.code if found else None
    rollup = session.get(CheckRollup, serial, with_for_update=True)
    if found and rollup and check.verified_at < rollup.upto and found.code not in rollup.districts:
        rollup.districts = sorted([*rollup.districts, found.code])
    session.flush()
    if session.scalar(_COPIED_ON_FILE, {"serial": serial}) is None:
        _copied_code_rule(session, find_unit(session, serial), config, datetime.now(UTC))
    return place_of_region(check.district_code)


_COPIED_ON_FILE = (
    sa.select(Anomaly.id)
    .where(
        Anomaly.type == "copied_code",
        Anomaly.subject_type == "code",
        Anomaly.subject == sa.bindparam("serial"),
    )
    .limit(1)
)


def check_summary(session: Session, serial: str, config: Config) -> CheckSummary:
    """How often, by how many clients and in how many districts a code has been checked:
    one aggregate query however many checks there are, and a second for the districts
    themselves only when the copied-code rule could fire."""
    checks, clients, district_count, first_at = session.execute(
        _CHECK_TOTALS, {"serial": serial}
    ).one()
    summary = CheckSummary(checks, clients, district_count, first_at)
    if not summary.could_be_copied(config.thresholds):
        return summary
    places = sorted(session.execute(_CHECK_PLACES, {"serial": serial}).all(), key=lambda r: r[1])
    return replace(
        summary,
        districts=tuple(code for code, _ in places),
        first_district=places[0][0] if places else None,
    )


def _copied_code_rule(session: Session, unit: Unit, config: Config, now: datetime):
    summary = check_summary(session, unit.serial, config)
    finding = copied_code(unit.serial, unit.merchant_id, summary, config.thresholds)
    if finding is not None:
        record_findings(session, [finding], config.policy, now)
    return summary


# -- the answer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One of a unit's events as the journey needs it (who: a company or merchant name)."""

    id: int
    type: str
    occurred_at: datetime
    lat: float | None
    lon: float | None
    by: str | None
    violation: str | None


def _steps(session: Session, serial: str, merchant_id: int) -> list[Step]:
    """The unit's events (its own and its parcels'), in time order, with company names."""
    timeline, parties = history.unit_timeline(session, serial, merchant_id)
    steps = []
    for row in timeline.events:
        party = parties.of((row.party_type, row.party_id)) or {}
        if party.get("type") == "courier":
            by = party["company"]["name"]  # the company, never the courier's name
        elif party.get("type") == "merchant":
            by = party["name"]
        else:
            by = None
        lat, lon = history.point_of(row.location) or (None, None)
        steps.append(Step(row.id, row.type, row.occurred_at, lat, lon, by, row.violation))
    return steps


def _journey(steps: list[Step]) -> list[dict]:
    """The unit's lawful steps, with company names and district-level places only."""
    return [
        {
            "type": step.type,
            "label": texts.label(texts.EVENTS.get(step.type, (step.type, step.type))),
            "time": _local(step.occurred_at),
            "place": place_of_point(step.lat, step.lon, city_only=step.type in CITY_ONLY),
            "by": step.by,
        }
        for step in steps
        if step.violation is None
    ]


_OPEN_ANOMALIES = sa.select(Anomaly.type, Anomaly.evidence).where(
    Anomaly.subject_type == "code",
    Anomaly.subject == sa.bindparam("serial"),
    Anomaly.status != "dismissed",
)


def _open_anomalies(session: Session, serial: str) -> list[tuple[str, dict]]:
    return [(t, e) for t, e in session.execute(_OPEN_ANOMALIES, {"serial": serial})]


def _warning_json(w: verdict.Warning, checks: CheckSummary | None) -> dict:
    details = {k: v for k, v in w.details.items() if v is not None}
    values: dict = {}
    if w.kind == "recalled":
        values = {
            "recalled_at": _local(details["recalled_at"]) if "recalled_at" in details else "",
            "reason": details.get("reason", ""),
        }
    elif w.kind == "copied_code":
        place = place_of_region(checks.first_district) or {"zh": "未知", "en": "?"}
        values = {
            "checks": checks.checks,
            "clients": checks.clients,
            "district_count": checks.district_count,
            "first_check_at": _local(checks.first_at),
            "first_check_place": place["zh"],
        }
        message = texts.both(texts.WARNINGS["copied_code"], **values)
        message["en"] = texts.WARNINGS["copied_code"][1].format(
            **{**values, "first_check_place": place["en"]}
        )
        return {"kind": w.kind, "message": message, "details": values}
    elif w.kind == "expired":
        values = {"expires_on": details["expires_on"].isoformat()}
    return {
        "kind": w.kind,
        "message": texts.both(texts.WARNINGS[w.kind], **values),
        "details": values,
    }


def unknown_answer(code_text: str) -> dict:
    """What a consumer is told about a code that was never issued."""
    judged = verdict.assess(verdict.Facts(issued=False, today=date.today()))
    return {
        "code": {"text": code_text[:200]},
        "verdict": {
            "level": judged.level,
            "title": texts.label(texts.VERDICT_TITLES[judged.level]),
            "warnings": [_warning_json(w, None) for w in judged.warnings],
        },
    }


def scan(
    session: Session,
    unit: Unit,
    client_hash: str,
    config: Config,
    now: datetime | None = None,
) -> dict:
    """Record the consumer's check and answer: verdict, product, batch, merchant and its
    credit, the journey, and how often and where the code has been checked.

    Any database; one statement at a time. :func:`scan_in_one` is the same on PostgreSQL in
    one statement."""
    now = now or datetime.now(UTC)
    record_check(session, unit.serial, client_hash, now)
    checks = _copied_code_rule(session, unit, config, now)
    anomalies = tuple(_open_anomalies(session, unit.serial))
    steps = _steps(session, unit.serial, unit.merchant_id)
    version = credit_version(session, ("merchant", unit.merchant_id))
    return _answer(lambda: session, unit, checks, anomalies, steps, version, config, now)


def _answer(
    session: Callable[[], Session],
    unit: Unit,
    checks: CheckSummary,
    anomalies: tuple[tuple[str, dict], ...],
    steps: list[Step],
    credit_version: tuple,
    config: Config,
    now: datetime,
) -> dict:
    """The answer from what was read at the request (the unit, its checks with this one,
    its open anomalies and events) and what is kept per process (the batch's details and
    the merchant's credit, at most ``PUBLIC_CREDIT_MAX_AGE_S`` old). ``session`` opens the
    session, only called when something kept has to be read again. The kept
    credit is only used while the merchant's ``credit_version`` (read at the request) is
    the one it was scored at: a new record or decision shows at once."""
    part = kept_batch_part(unit.batch_id)
    party = ("merchant", unit.merchant_id)
    account = kept_public_account(party, config.policy, credit_version)
    if part is None or account is None:
        s = session()
        part = part or batch_part(s, unit.batch_id, config)
        account = account or public_account(
            s, party, config.policy, config.PUBLIC_CREDIT_MAX_AGE_S, credit_version
        )
    standing = account.standing
    judged = verdict.assess(
        verdict.Facts(
            issued=True,
            today=now.astimezone(CST).date(),
            expires_on=unit.expires_on,
            batch_recalled=unit.batch_status == "recalled",
            recalled_at=unit.recalled_at,
            recall_reason=unit.recall_reason,
            merchant_list=standing.list,
            anomalies=anomalies,
        )
    )
    merchant = {k: v for k, v in part["merchant"].items() if k != "location"}
    merchant["credit"] = serialize.public_credit(account)
    merchant["list_label"] = texts.label(texts.LISTS[standing.list])
    merchant["place"] = place_of_region(merchant["region_code"])
    return {
        "verdict": {
            "level": judged.level,
            "title": texts.label(texts.VERDICT_TITLES[judged.level]),
            "warnings": [_warning_json(w, checks) for w in judged.warnings],
        },
        "code": {
            "serial": unit.serial,
            "uri": part["uri_prefix"] + unit.serial,
            "state": unit.state,
        },
        "product": part["product"],
        "batch": {
            **part["batch"],
            "status": unit.batch_status,
            "recalled_at": _local(unit.recalled_at) if unit.recalled_at else None,
            "recall_reason": unit.recall_reason,
        },
        "merchant": merchant,
        "journey": _journey(steps),
        "checks": {
            "count": checks.checks,
            "clients": checks.clients,
            "districts": checks.district_count,
            "first_at": _local(checks.first_at),
            "first_place": place_of_region(checks.first_district),
        },
    }


def check(
    engine: sa.Engine,
    session: Callable[[], Session],
    client_hash: str,
    config: Config,
    *,
    serial: str | None = None,
    link: str | None = None,
) -> tuple[Unit, dict]:
    """A consumer's check of a code, by its serial or its Digital Link: the unit (NotFound
    when it was never issued, or not for the link's GTIN and lot), the check recorded and
    committed, and the answer. On PostgreSQL in one statement (:func:`scan_in_one`); on other
    databases statement by statement (:func:`scan`), with the same answer."""
    if engine.dialect.name == "postgresql":
        gtin14 = lot = None
        if link is not None:
            serial, gtin14, lot = link_parts(link)
        return scan_in_one(engine, session, serial, client_hash, config, gtin14=gtin14, lot=lot)
    s = session()
    unit = find_unit_by_link(s, link, config) if link is not None else find_unit(s, serial)
    answer = scan(s, unit, client_hash, config)
    s.commit()
    return unit, answer


# -- the scan in one statement (PostgreSQL) --------------------------------------------------

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
#: for its WAL flush (see :func:`record_check`).
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


#: The scan's connections: one per thread, in autocommit (see StatementConnections).
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
) -> tuple[Unit, dict]:
    """:func:`scan` on PostgreSQL in one statement: the unit (NotFound when it was never
    issued, or not for the GTIN and lot of the link) and the answer. ``session`` opens the
    request's session, only needed for what is not kept, or when the copied-code rule may
    fire (its finding is written as the other rules' are)."""
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
    found = tuple((t, e) for t, e, status in anomalies if status != "dismissed")
    on_file = next((e for t, e, _ in anomalies if t == "copied_code"), None)
    if on_file is not None:
        # The copied code is on file, dismissed or not: the rule would write nothing, and the
        # first check with a place is in its evidence. Its scans cost a genuine code's.
        summary = replace(summary, first_district=on_file.get("first_check_district"))
    elif summary.could_be_copied(config.thresholds):
        # Rare: the rule reads the districts and may write a finding, as share_place does.
        s = session()
        summary = _copied_code_rule(s, unit, config, now)
        found = tuple(_open_anomalies(s, serial))
        s.commit()
    if recent > ROLL_UP_AFTER and now - oldest_recent > 2 * ROLL_UP_MARGIN:
        roll_up_checks(engine, serial)
    steps = [
        Step(i, t, datetime.fromisoformat(at), lat, lon, by, violation)
        for i, t, at, lat, lon, by, violation in events or ()
    ]
    version = (last_record, last_decision)
    return unit, _answer(session, unit, summary, found, steps, version, config, now)


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
