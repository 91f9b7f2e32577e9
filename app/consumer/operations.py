"""The consumer's scan: record the check, run the copied-code rule, and answer what the public
may know about the unit, with the verdict first and the journey at district level.

One use case, :func:`scan`, serves the HTML page and its JSON form alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.codes.models import TraceCode
from app.consumer import texts
from app.consumer.models import Verification
from app.credit.models import Anomaly
from app.credit.operations import record_findings
from app.db import point
from app.events import history
from config import Config
from trace import districts, verdict
from trace.anomalies import Check, copied_code
from trace.errors import NotFound, ValidationError
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


# -- the check itself -------------------------------------------------------------------------


def record_check(session: Session, serial: str, client_hash: str, now: datetime) -> Verification:
    """A consumer's check of a code (a ``verified`` scan); its place may follow.

    On PostgreSQL the transaction does not wait for its WAL flush: a check lost in a crash
    costs nothing, and the wait would be most of the page's time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
    check = Verification(serial=serial, client_hash=client_hash, verified_at=now)
    session.add(check)
    session.flush()
    return check


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
    code = session.get(TraceCode, serial)
    _copied_code_rule(session, code, config, datetime.now(UTC))
    return place_of_region(check.district_code)


def _checks(session: Session, serial: str) -> list[Check]:
    return [
        Check(client, at, district)
        for client, at, district in session.execute(
            sa.select(
                Verification.client_hash, Verification.verified_at, Verification.district_code
            ).where(Verification.serial == serial)
        )
    ]


def _copied_code_rule(session: Session, code: TraceCode, config: Config, now: datetime):
    checks = _checks(session, code.serial)
    finding = copied_code(code.serial, code.batch.product.merchant_id, checks, config.thresholds)
    if finding is not None:
        record_findings(session, [finding], config.policy, now)
    return checks


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
        lat_lon = history._point(row.location)
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


def _open_anomalies(session: Session, serial: str) -> list[tuple[str, dict]]:
    return [
        (t, e)
        for t, e in session.execute(
            sa.select(Anomaly.type, Anomaly.evidence).where(
                Anomaly.subject_type == "code",
                Anomaly.subject == serial,
                Anomaly.status != "dismissed",
            )
        )
    ]


def _warning_json(w: verdict.Warning, checks: list[Check]) -> dict:
    details = {k: v for k, v in w.details.items() if v is not None}
    values: dict = {}
    if w.kind == "recalled":
        values = {
            "recalled_at": _local(details["recalled_at"]) if "recalled_at" in details else "",
            "reason": details.get("reason", ""),
        }
    elif w.kind == "copied_code":
        first = min(checks, key=lambda c: c.time) if checks else None
        place = place_of_region(first.district if first else None) or {"zh": "未知", "en": "?"}
        clients = {c.client for c in checks}
        places = {c.district for c in checks if c.district}
        values = {
            "checks": len(checks),
            "clients": len(clients),
            "district_count": len(places),
            "first_check_at": _local(first.time) if first else "",
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
            "warnings": [_warning_json(w, []) for w in judged.warnings],
        },
    }


def scan(
    session: Session,
    code: TraceCode,
    public_answer: dict,
    client_hash: str,
    config: Config,
    now: datetime | None = None,
) -> dict:
    """Record the consumer's check and answer: verdict, product, batch, merchant and its
    credit, the journey, and how often and where the code has been checked."""
    now = now or datetime.now(UTC)
    record_check(session, code.serial, client_hash, now)
    checks = _copied_code_rule(session, code, config, now)
    batch = code.batch
    judged = verdict.assess(
        verdict.Facts(
            issued=True,
            today=now.astimezone(CST).date(),
            expires_on=batch.expires_on,
            batch_recalled=batch.status.value == "recalled",
            recalled_at=batch.recalled_at,
            recall_reason=batch.recall_reason,
            merchant_list=public_answer["merchant"]["credit"]["list"],
            anomalies=tuple(_open_anomalies(session, code.serial)),
        )
    )
    first = min(checks, key=lambda c: c.time)
    merchant = dict(public_answer["merchant"])
    merchant.pop("location", None)
    merchant["list_label"] = texts.both(texts.LISTS[merchant["credit"]["list"]])
    merchant["place"] = place_of_region(merchant["region_code"])
    return {
        "verdict": {
            "level": judged.level,
            "title": texts.both(texts.VERDICT_TITLES[judged.level]),
            "warnings": [_warning_json(w, checks) for w in judged.warnings],
        },
        "code": {"serial": code.serial, "uri": public_answer["uri"], "state": code.state.value},
        "product": public_answer["product"],
        "batch": {
            **public_answer["batch"],
            "recalled_at": _local(batch.recalled_at) if batch.recalled_at else None,
            "recall_reason": batch.recall_reason,
        },
        "merchant": merchant,
        "journey": _journey(session, code.serial, batch.product.merchant_id),
        "checks": {
            "count": len(checks),
            "clients": len({c.client for c in checks}),
            "first_at": _local(first.time),
            "first_place": place_of_region(first.district),
        },
    }
