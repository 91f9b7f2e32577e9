"""A consumer's check of a code: recording it, the place they may share, and how often and
where the code has been checked, with the copied-code rule that reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import record_findings
from app.consumer.models import CheckRollup, Verification
from app.consumer.places import place_of_region
from app.consumer.units import Unit, find_unit
from app.credit.models import Anomaly
from app.db import point
from config import Config
from tracecore import districts
from tracecore.anomalies import CheckSummary, copied_code
from tracecore.errors import NotFound, ValidationError

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
        copied_code_rule(session, find_unit(session, serial), config, datetime.now(UTC))
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
