"""The consumer's scan: record the check, run the copied-code rule, and answer what the public
may know about the unit, with the verdict first and the journey at district level.

One use case, :func:`scan`, serves the HTML page and its JSON form alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from app import serialize
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.consumer import texts
from app.consumer.models import Verification
from app.credit.models import Anomaly
from app.credit.operations import forget_public_accounts, public_account, record_findings
from app.db import point
from app.events import history
from config import Config
from trace import districts, verdict
from trace.anomalies import CheckSummary, copied_code
from trace.errors import NotFound, ValidationError
from trace.gs1 import digital_link_uri, parse_digital_link, validate_serial
from trace.regions import PROVINCES

#: Times on the page are China Standard Time, as the consumer's clock shows them.
CST = timezone(timedelta(hours=8), "CST")
#: Consumers see cities for these steps, districts for the others.
CITY_ONLY = frozenset({"in_transit"})


# -- places, never finer than a district ----------------------------------------------------


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


def find_unit_by_link(session: Session, uri: str, config: Config) -> Unit:
    """The unit behind a Digital Link: the GTIN and lot in it must be the unit's own (a real
    serial under another product's GTIN is a forged link)."""
    link = parse_digital_link(uri)
    if link.serial is None:
        raise ValidationError("the link has no serial (AI 21)", field="uri")
    unit = find_unit(session, link.serial)
    part = batch_part(session, unit.batch_id, config)
    if part["product"]["gtin"] != link.gtin14 or (
        link.lot is not None and part["batch"]["lot"] != link.lot
    ):
        raise NotFound("this serial was not issued for the product and lot in the link")
    return unit


#: batch id -> (valid until, monotonic clock; the batch's public details).
_BATCH_PARTS: dict[int, tuple[float, dict]] = {}


def batch_part(session: Session, batch_id: int, config: Config) -> dict:
    """What the public may know of a unit's batch, product and merchant, kept per process for
    ``PUBLIC_CREDIT_MAX_AGE_S`` (status and recall are read fresh with the unit)."""
    now = time.monotonic()
    cached = _BATCH_PARTS.get(batch_id)
    if cached is not None and cached[0] > now:
        return cached[1]
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
    session.execute(
        _INSERT_CHECK, {"serial": serial, "client_hash": client_hash, "verified_at": now}
    )


def share_place(
    session: Session, serial: str, client_hash: str, lat: float, lon: float, config: Config
) -> dict | None:
    """The consumer agreed to share where they are: the client's latest check of this code
    gets a coarse place (about a kilometre), and the copied-code rule runs again."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationError("lat and lon are WGS 84 degrees", field="lat")
    check = session.scalar(
        sa.select(Verification)
        .where(Verification.serial == serial, Verification.client_hash == client_hash)
        .order_by(Verification.id.desc())
        .limit(1)
    )
    if check is None:
        raise NotFound("check the code on its page before sharing a place")
    lat, lon = round(lat, 2), round(lon, 2)
    found = districts.locate(lat, lon)
    check.location = point(lat, lon)
    check.district_code = found.code if found else None
    session.flush()
    _copied_code_rule(session, find_unit(session, serial), config, datetime.now(UTC))
    return place_of_region(check.district_code)


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


def _journey(session: Session, serial: str, merchant_id: int) -> list[dict]:
    """The unit's lawful steps, with company names and district-level places only."""
    timeline, parties = history.unit_timeline(session, serial, merchant_id)
    steps = []
    for row in timeline.events:
        if row.violation is not None:
            continue
        party = parties.of((row.party_type, row.party_id)) or {}
        if party.get("type") == "courier":
            by = party["company"]["name"]  # the company, never the courier's name
        elif party.get("type") == "merchant":
            by = party["name"]
        else:
            by = None
        lat_lon = history.point_of(row.location)
        city_only = row.type in CITY_ONLY
        place = place_of_point(*(lat_lon or (None, None)), city_only=city_only)
        steps.append(
            {
                "type": row.type,
                "label": texts.both(texts.EVENTS.get(row.type, (row.type, row.type))),
                "time": _local(row.occurred_at),
                "place": place,
                "by": by,
            }
        )
    return steps


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
            "district_count": len(checks.districts),
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
            "title": texts.both(texts.VERDICT_TITLES[judged.level]),
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
    credit, the journey, and how often and where the code has been checked."""
    now = now or datetime.now(UTC)
    record_check(session, unit.serial, client_hash, now)
    checks = _copied_code_rule(session, unit, config, now)
    part = batch_part(session, unit.batch_id, config)
    account = public_account(
        session, ("merchant", unit.merchant_id), config.policy, config.PUBLIC_CREDIT_MAX_AGE_S
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
            anomalies=tuple(_open_anomalies(session, unit.serial)),
        )
    )
    merchant = {k: v for k, v in part["merchant"].items() if k != "location"}
    merchant["credit"] = serialize.public_credit(account)
    merchant["list_label"] = texts.both(texts.LISTS[standing.list])
    merchant["place"] = place_of_region(merchant["region_code"])
    return {
        "verdict": {
            "level": judged.level,
            "title": texts.both(texts.VERDICT_TITLES[judged.level]),
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
        "journey": _journey(session, unit.serial, unit.merchant_id),
        "checks": {
            "count": checks.checks,
            "clients": checks.clients,
            "districts": checks.district_count,
            "first_at": _local(checks.first_at),
            "first_place": place_of_region(checks.first_district),
        },
    }
