"""What a scan knows about a unit: :class:`ScanFacts`, the one result of both ways to scan
(statement by statement on any database, :func:`app.consumer.scan.scan`; in one statement
on PostgreSQL, :func:`app.consumer.scan_pg.scan_in_one`). The answer is written from it
alone (:func:`app.consumer.scan.answer`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from app import serialize
from app.consumer.units import Unit, batch_part, kept_batch_part
from app.credit.operations import kept_public_account, public_account
from config import Config
from tracecore.anomalies import CheckSummary


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


@dataclass(frozen=True, slots=True)
class ScanFacts:
    """Everything the answer says about a scanned unit: what was read at the scan (with the
    check it recorded) and what is kept per process (the batch's public details and the
    merchant's credit). Both ways to scan produce it from the same data alike."""

    #: The unit: serial, state, merchant, its batch's status and recall, its expiry date.
    unit: Unit
    #: The product as the public may know it (kept per process).
    product: dict
    #: The batch as the public may know it (kept per process: its status and recall are
    #: the unit's, read at the scan).
    batch: dict
    #: The merchant as the public may know it, its location included (kept per process).
    merchant: dict
    #: The unit's GS1 Digital Link.
    uri: str
    #: The merchant's public credit (score, grade, list, commitment), as
    #: :func:`app.serialize.public_credit` writes it.
    credit: dict
    #: The code's checks, this one counted: how many, by how many clients, in how many
    #: districts, the first, and the district of the first with a place when the
    #: copied-code rule could fire. The districts themselves are the rule's evidence, not
    #: the answer's: left out.
    checks: CheckSummary
    #: The code's anomalies that were not dismissed: (type, evidence) each.
    findings: tuple[tuple[str, dict], ...]
    #: The unit's events, its own and its parcels', in time order; unlawful ones too (the
    #: journey leaves them out).
    steps: tuple[Step, ...]
    #: When the check was made (its day in China Standard Time is the verdict's today).
    scanned_at: datetime


def scan_facts(
    session: Callable[[], Session],
    unit: Unit,
    checks: CheckSummary,
    findings: tuple[tuple[str, dict], ...],
    steps: tuple[Step, ...],
    credit_version: tuple,
    config: Config,
    now: datetime,
) -> ScanFacts:
    """The facts from what was read at the request (the unit, its checks with this one,
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
            s, party, config.policy, config.PUBLIC_CREDIT_MAX_AGE_S, credit_version, now
        )
    if checks.districts:
        checks = replace(checks, districts=())
    return ScanFacts(
        unit,
        part["product"],
        part["batch"],
        part["merchant"],
        part["uri_prefix"] + unit.serial,
        serialize.public_credit(account),
        checks,
        findings,
        steps,
        now,
    )
