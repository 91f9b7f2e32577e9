"""A consumer's check of a code: recording it, the place they may share, and how often and
where the code has been checked, with the copied-code rule that reads it.

Checks and places come from untrusted clients: a check is counted by its source, the
client's network (never its cookie or browser string, which it chooses), and a network's
place counts once per code (see docs/consumer.md, "Untrusted input")."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import record_findings
from app.consumer.models import CheckRollup, Verification
from app.consumer.places import place_of_region
from app.consumer.units import Unit, find_unit
from app.credit.models import Anomaly
from app.db import point
from app.events import writers
from config import Config
from tracecore import districts
from tracecore.anomalies import CheckSummary, Thresholds, copied_code
from tracecore.errors import NotFound, ValidationError

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
    writers.insert_first_or_later(
        session,
        Verification.__table__,
        {"serial": serial, "client_hash": client_hash, "verified_at": now},
        ["serial", "client_hash"],
    )


def share_place(
    session: Session, serial: str, source: str, lat: float, lon: float, config: Config
) -> dict | None:
    """The consumer agreed to share where they are: the source's latest check of this code
    gets a coarse place (about a kilometre), and the copied-code rule runs again unless the
    code is on file as copied. A district new to a check already rolled up joins its roll-up's
    districts.

    ``source`` is the client's network (``app.consumer.pages``), and a network's place counts
    once per code: its first place for a code stands, later ones are answered but not
    recorded (one desk cannot count as three districts), and its places count for at most
    ``copied_code_places_per_day`` codes a day. Shares of one code take turns (a lock), so
    concurrent shares cannot slip past that."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationError("lat and lon are WGS 84 degrees", field="lat")
    writers.lock(session, "trace_codes", [serial])
    check = session.scalar(  # newest first: the client has just checked it
        sa.select(Verification)
        .where(Verification.serial == serial, Verification.client_hash == source)
        .order_by(Verification.verified_at.desc(), Verification.id.desc())
        .limit(1)
    )
    if check is None:
        raise NotFound("check the code on its page before sharing a place")
    lat, lon = round(lat, 2), round(lon, 2)
    found = districts.locate(lat, lon)
    now = datetime.now(UTC)
    if found is None or not _may_place(session, source, serial, now, config.thresholds):
        return place_of_region(found.code if found else None)  # told, not counted
    check.location = point(lat, lon)
    check.district_code = found.code
    rollup = session.get(CheckRollup, serial, with_for_update=True)
    if rollup and check.verified_at < rollup.upto and found.code not in rollup.districts:
        rollup.districts = sorted([*rollup.districts, found.code])
    session.flush()
    if session.scalar(_COPIED_ON_FILE, {"serial": serial}) is None:
        copied_code_rule(session, find_unit(session, serial), config, now)
    return place_of_region(check.district_code)


#: The codes a source has placed a check of since a moment (the partial index of placed
#: checks by source: a handful of rows, however often the code has been checked).
_PLACED_BY_SOURCE = (
    sa.select(Verification.serial)
    .where(
        Verification.client_hash == sa.bindparam("source"),
        Verification.district_code.is_not(None),
        Verification.verified_at >= sa.bindparam("since"),
    )
    .distinct()
)


def _may_place(session: Session, source: str, serial: str, now: datetime, t: Thresholds) -> bool:
    """Whether a place shared now by ``source`` for ``serial`` counts: the source placed no
    check of this code before, and fewer than ``copied_code_places_per_day`` codes today."""
    placed_ever = session.scalar(
        sa.select(Verification.id)
        .where(
            Verification.client_hash == source,
            Verification.district_code.is_not(None),
            Verification.serial == serial,
        )
        .limit(1)
    )
    if placed_ever is not None:
        return False
    today = session.scalars(
        _PLACED_BY_SOURCE.limit(t.copied_code_places_per_day),
        {"source": source, "since": now - timedelta(days=1)},
    ).all()
    return len(today) < t.copied_code_places_per_day


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


def copied_code_rule(session: Session, unit: Unit, config: Config, now: datetime) -> CheckSummary:
    """The code's check summary, and the copied-code rule run on it: its finding, if any,
    is recorded (flushed) as the other rules' are."""
    summary = check_summary(session, unit.serial, config)
    finding = copied_code(unit.serial, unit.merchant_id, summary, config.thresholds)
    if finding is not None:
        record_findings(session, [finding], config.policy, now)
    return summary


_OPEN_ANOMALIES = sa.select(Anomaly.type, Anomaly.evidence).where(
    Anomaly.subject_type == "code",
    Anomaly.subject == sa.bindparam("serial"),
    Anomaly.status.not_in(("dismissed", "withdrawn")),
)


def open_anomalies(session: Session, serial: str) -> list[tuple[str, dict]]:
    """The code's anomalies that were not dismissed: (type, evidence) each."""
    return [(t, e) for t, e in session.execute(_OPEN_ANOMALIES, {"serial": serial})]
