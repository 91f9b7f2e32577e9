"""The consumer's scan: record the check, run the copied-code rule, and answer what the public
may know about the unit, with the verdict first and the journey at district level.

One use case, :func:`check`, serves the HTML page and its JSON form alike, and reads top to
bottom: the scan's facts (:class:`~app.consumer.facts.ScanFacts`), read statement by
statement on any database (:func:`scan`) or in one statement on PostgreSQL
(:func:`app.consumer.scan_pg.scan_in_one`); then the answer, from the facts alone
(:func:`answer`). Nothing here commits: the request owns its unit of work
(``app.consumer.pages``). On PostgreSQL the check itself is committed by its own statement,
on a connection of its own (see :mod:`app.consumer.scan_pg`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.consumer import texts
from app.consumer.checks import copied_code_rule, open_anomalies, record_check
from app.consumer.facts import ScanFacts, Step, scan_facts
from app.consumer.places import (
    CITY_ONLY,
    CST,
    local_time,
    place_of_point,
    place_of_region,
    spoken_day,
    spoken_time,
)
from app.consumer.scan_pg import scan_in_one
from app.consumer.units import Unit, find_unit, find_unit_by_link, link_parts
from app.credit.operations import credit_version
from app.events import history
from config import Config
from tracecore import verdict
from tracecore.anomalies import CheckSummary
from tracecore.serials import normalize_serial


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
    when it was never issued, or not for the link's GTIN and lot), the check recorded, and
    the answer. On PostgreSQL in one statement (:func:`scan_in_one`, which commits the check
    on its own connection); on other databases statement by statement (:func:`scan`, in
    the request's session, which the request commits), with the same facts and answer.
    ``session`` opens the request's session."""
    if engine.dialect.name == "postgresql":
        gtin14 = lot = None
        if link is not None:
            serial, gtin14, lot = link_parts(link)
        else:
            serial = normalize_serial(serial)
        facts = scan_in_one(engine, session, serial, client_hash, config, gtin14=gtin14, lot=lot)
    else:
        s = session()
        unit = find_unit_by_link(s, link, config) if link is not None else find_unit(s, serial)
        facts = scan(s, unit, client_hash, config)
    return facts.unit, answer(facts)


def scan(
    session: Session,
    unit: Unit,
    client_hash: str,
    config: Config,
    now: datetime | None = None,
) -> ScanFacts:
    """Record the consumer's check (flushed, not committed) and read what the answer needs:
    the checks with this one (the copied-code rule runs on them), the open anomalies, the
    journey and the merchant's credit.

    Any database; one statement at a time. :func:`scan_in_one` is the same on PostgreSQL in
    one statement."""
    now = now or datetime.now(UTC)
    record_check(session, unit.serial, client_hash, now)
    checks = copied_code_rule(session, unit, config, now)
    findings = tuple(open_anomalies(session, unit.serial))
    steps = _steps(session, unit.serial, unit.merchant_id)
    version = credit_version(session, ("merchant", unit.merchant_id))
    return scan_facts(lambda: session, unit, checks, findings, steps, version, config, now)


def _steps(session: Session, serial: str, merchant_id: int) -> tuple[Step, ...]:
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
        steps.append(Step(row.id, row.type, row.occurred_at, row.lat, row.lon, by, row.violation))
    return tuple(steps)


def answer(facts: ScanFacts) -> dict:
    """The answer to a check, from its facts alone: the verdict first, then the code, the
    product, the batch, the merchant and its credit, the journey at district level, and how
    often and where the code has been checked."""
    unit, checks, credit = facts.unit, facts.checks, facts.credit
    judged = verdict.assess(
        verdict.Facts(
            issued=True,
            today=facts.scanned_at.astimezone(CST).date(),
            expires_on=unit.expires_on,
            batch_recalled=unit.batch_status == "recalled",
            recalled_at=unit.recalled_at,
            recall_reason=unit.recall_reason,
            merchant_list=credit["list"],
            anomalies=facts.findings,
        )
    )
    merchant = {k: v for k, v in facts.merchant.items() if k != "location"}
    merchant["credit"] = credit
    merchant["list_label"] = texts.label(texts.LISTS[credit["list"]])
    merchant["place"] = place_of_region(merchant["region_code"])
    return {
        "verdict": _verdict_json(judged, checks),
        "code": {
            "serial": unit.serial,
            "uri": facts.uri,
            "state": unit.state,
        },
        "product": facts.product,
        "batch": {
            **facts.batch,
            "status": unit.batch_status,
            "recalled_at": local_time(unit.recalled_at) if unit.recalled_at else None,
            "recall_reason": unit.recall_reason,
        },
        "merchant": merchant,
        "journey": _journey(facts.steps),
        "checks": {
            "count": checks.checks,
            "clients": checks.clients,
            "districts": checks.district_count,
            "first_at": local_time(checks.first_at),
            "first_place": place_of_region(checks.first_district),
        },
    }


def _journey(steps: tuple[Step, ...]) -> list[dict]:
    """The unit's lawful steps, with company names and district-level places only."""
    return [
        {
            "type": step.type,
            "label": texts.label(texts.EVENTS.get(step.type, (step.type, step.type))),
            "time": local_time(step.occurred_at),
            "place": place_of_point(step.lat, step.lon, city_only=step.type in CITY_ONLY),
            "by": step.by,
        }
        for step in steps
        if step.violation is None
    ]


def _verdict_json(judged: verdict.Verdict, checks: CheckSummary | None) -> dict:
    """The verdict: its level, its look (``genuine`` or the most serious warning's kind,
    which sets the page's headline, icon and advice), its headline and its warnings."""
    return {
        "level": judged.level,
        "look": judged.look,
        "title": texts.label(texts.HEADLINES[judged.look]),
        "warnings": [_warning_json(w, checks) for w in judged.warnings],
    }


def _warning_json(w: verdict.Warning, checks: CheckSummary | None) -> dict:
    details = {k: v for k, v in w.details.items() if v is not None}
    values: dict = {}
    if w.kind in ("recalled", "expired"):
        # Dates in the message as people say them; in the details as RFC 3339 / ISO 8601.
        if w.kind == "recalled":
            at = details.get("recalled_at")
            values = {
                "recalled_at": local_time(at) if at else "",
                "reason": details.get("reason", ""),
            }
            spoken = {
                lang: {**values, "recalled_at": spoken_time(at, lang) if at else ""}
                for lang in texts.LANGS
            }
        else:
            values = {"expires_on": details["expires_on"].isoformat()}
            spoken = {
                lang: {"expires_on": spoken_day(details["expires_on"], lang)}
                for lang in texts.LANGS
            }
        pair = texts.WARNINGS[w.kind]
        message = {lang: pair[i].format(**spoken[lang]) for i, lang in enumerate(texts.LANGS)}
        return {"kind": w.kind, "message": message, "details": values}
    if w.kind == "copied_code":
        place = place_of_region(checks.first_district) or {"zh": "未知", "en": "?"}
        values = {
            "checks": checks.checks,
            "clients": checks.clients,
            "district_count": checks.district_count,
            "first_check_at": local_time(checks.first_at),
            "first_check_place": place["zh"],
        }
        message = texts.both(
            texts.WARNINGS["copied_code"],
            **{**values, "first_check_at": spoken_time(checks.first_at, "zh")},
        )
        message["en"] = texts.WARNINGS["copied_code"][1].format(
            **{
                **values,
                "first_check_at": spoken_time(checks.first_at, "en"),
                "first_check_place": place["en"],
            }
        )
        return {"kind": w.kind, "message": message, "details": values}
    return {
        "kind": w.kind,
        "message": texts.both(texts.WARNINGS[w.kind], **values),
        "details": values,
    }


def unknown_answer(code_text: str, *, forged_link: bool = False) -> dict:
    """What a consumer is told about a code that was never issued, or (``forged_link``) a
    serial that was, but not for the product and lot of the link it came in."""
    facts = verdict.Facts(issued=False, today=date.today(), forged_link=forged_link)
    return {
        "code": {"text": code_text[:200]},
        "verdict": _verdict_json(verdict.assess(facts), None),
    }
