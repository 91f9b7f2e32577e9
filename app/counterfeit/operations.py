"""Counterfeits as consumers meet them: the checks of fake codes recorded, consumers' reports
of fakes, the counterfeit_cluster finding, and the counterfeit map regulators read.

A fake code has no row of its own (a check of an issued code is a ``Verification``, tied to
the code), so its checks are kept in :class:`CounterfeitCheck`, bounded against floods: one
row per code, network and day, and at most ``COUNTERFEIT_CHECKS_PER_DAY`` codes a day per
network. Everything here comes from untrusted clients and is counted by source (keyed hashes
of the address and network, :func:`app.web.client_source`), never by cookie. The product's
merchant is the *victim* of a counterfeit: the finding names it so that it is told, and
carries no credit record (``tracecore.anomalies.VICTIM_TYPES``; docs/anomalies-and-credit.md).
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.anomalies.findings import record_findings
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.counterfeit.models import CounterfeitCheck, CounterfeitReport
from app.credit.models import Anomaly
from app.feedback.operations import Source, check_rate
from app.parties.models import Merchant
from config import Config
from tracecore import districts
from tracecore.access import Principal, Role
from tracecore.anomalies import FakeSightings, counterfeit_cluster
from tracecore.errors import Conflict, ValidationError
from tracecore.gs1 import parse_digital_link
from tracecore.serials import normalize_serial

#: A network records checks of at most this many fake codes a day (later ones are answered,
#: not recorded): one desk typing made-up codes costs at most this many rows a day.
COUNTERFEIT_CHECKS_PER_DAY = 30
#: The cluster rule and the map read at most this many rows (the newest).
MAX_ROWS = 5000
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")

_DIGITS = re.compile(r"[0-9]{1,14}")


def typed_code(text: str) -> str:
    """The code as the consumer typed or scanned it, kept as evidence: invisible and control
    characters removed, runs of spaces made one, at most 64 characters."""
    spaced = " ".join(text.split())  # line breaks and tabs are spaces first
    return " ".join(_UNPRINTABLE.sub("", spaced).split())[:64]


@dataclass(frozen=True)
class Sighting:
    """What a consumer met: a code that is not what it claims, and the GTIN and lot of its
    Digital Link when it came by one."""

    code: str
    #: never_issued | forged_link
    kind: str
    gtin: str | None = None
    lot: str | None = None


def sighting_of(session: Session, text: str) -> Sighting | None:
    """What the code or Digital Link (URI or path) a consumer checked is: a fake
    (``never_issued``, or ``forged_link`` for a genuine serial under another product's GTIN
    or lot), or None when it is a genuine unit's own code."""
    serial, gtin, lot = text, None, None
    if "/01/" in text:  # a link we cannot read is kept as typed: a never-issued code
        with contextlib.suppress(ValidationError):
            link = parse_digital_link(text)
            serial, gtin, lot = link.serial or text, link.gtin14, link.lot
    code = typed_code(serial)
    found = session.execute(
        sa.select(Product.gtin, Batch.lot)
        .join(Batch, Batch.product_id == Product.id)
        .join(TraceCode, TraceCode.batch_id == Batch.id)
        .where(TraceCode.serial == normalize_serial(code)[:16])
    ).first()
    if found is None:
        return Sighting(code, "never_issued", gtin, lot)
    if gtin is not None and (found.gtin != gtin or (lot is not None and found.lot != lot)):
        return Sighting(code, "forged_link", gtin, lot)
    return None


# -- what consumers send ------------------------------------------------------------------------


def shared_place(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    """The place a consumer chose to share, when both halves of it were sent."""
    if (lat is None) != (lon is None):
        raise ValidationError("send lat and lon together, or neither", field="lat")
    return None if lat is None else (lat, lon)


def record_check(
    session: Session, seen: Sighting, source: Source, now: datetime, config: Config
) -> CounterfeitCheck | None:
    """A consumer's check of a fake: added to its network's row for the code and day, or a
    new row unless the network has recorded ``COUNTERFEIT_CHECKS_PER_DAY`` codes today
    (None then: answered, not recorded). The cluster rule runs on the product's sightings."""
    day = now.date()
    key = (
        CounterfeitCheck.code == seen.code,
        CounterfeitCheck.network == source.network,
        CounterfeitCheck.day == day,
    )
    row = session.scalar(sa.select(CounterfeitCheck).where(*key))
    if row is None:
        codes_today = session.scalar(
            sa.select(sa.func.count()).where(
                CounterfeitCheck.network == source.network, CounterfeitCheck.day == day
            )
        )
        if codes_today >= COUNTERFEIT_CHECKS_PER_DAY:
            return None
        row = CounterfeitCheck(
            code=seen.code,
            kind=seen.kind,
            gtin=seen.gtin,
            lot=seen.lot,
            client_hash=source.address,
            network=source.network,
            day=day,
            checks=1,
            first_at=now,
            last_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # the same network's check of the same code, just committed
            row = session.scalar(sa.select(CounterfeitCheck).where(*key))
            _count_again(row, seen, now)
    else:
        _count_again(row, seen, now)
    session.flush()
    cluster_rule(session, seen.gtin, config, now)
    return row


def _count_again(row: CounterfeitCheck, seen: Sighting, now: datetime) -> None:
    """One more check of a code its network already checked today. A code first typed
    (no link, so no GTIN) and then scanned from its label's link learns its product here,
    so that the check counts on that product's map and for its regulators."""
    row.checks += 1
    row.last_at = now
    if row.gtin is None and seen.gtin is not None:
        row.gtin, row.lot = seen.gtin, seen.lot


def file_report(
    session: Session,
    seen: Sighting,
    what: str,
    where_bought: str,
    description: str,
    contact: str | None,
    place: tuple[float, float] | None,
    source: Source,
    config: Config,
    now: datetime,
) -> CounterfeitReport:
    """A consumer's report of a fake, rate-limited per address and network like complaints.
    ``place`` (only when the consumer chose to share it) is kept as its county-level district
    alone, which also places the network's check of the code today. The cluster rule runs."""
    check_rate(session, CounterfeitReport, source, config.COUNTERFEIT_REPORTS_PER_HOUR)
    district = None
    if place is not None:
        found = districts.locate(round(place[0], 2), round(place[1], 2))
        district = found.code if found else None
    report = CounterfeitReport(
        code=seen.code,
        kind=seen.kind,
        gtin=seen.gtin,
        lot=seen.lot,
        what=what,
        where_bought=where_bought,
        description=description,
        contact=contact or None,
        district_code=district,
        client_hash=source.address,
        network=source.network,
        created_at=now,
    )
    session.add(report)
    if district is not None:
        session.execute(
            sa.update(CounterfeitCheck)
            .where(
                CounterfeitCheck.code == seen.code,
                CounterfeitCheck.network == source.network,
                CounterfeitCheck.day == now.date(),
                CounterfeitCheck.district_code.is_(None),
            )
            .values(district_code=district)
        )
    session.flush()
    cluster_rule(session, seen.gtin, config, now)
    return report


# -- the finding -------------------------------------------------------------------------------


def sightings(session: Session, gtin: str, since: datetime) -> FakeSightings:
    """The checks and reports of fakes under ``gtin`` since a moment, by network."""
    checks = session.execute(
        sa.select(
            CounterfeitCheck.network,
            CounterfeitCheck.code,
            CounterfeitCheck.district_code,
            CounterfeitCheck.checks,
        )
        .where(CounterfeitCheck.gtin == gtin, CounterfeitCheck.last_at >= since)
        .order_by(CounterfeitCheck.last_at.desc())
        .limit(MAX_ROWS)
    ).all()
    reports = session.execute(
        sa.select(
            CounterfeitReport.network, CounterfeitReport.code, CounterfeitReport.district_code
        )
        .where(CounterfeitReport.gtin == gtin, CounterfeitReport.created_at >= since)
        .order_by(CounterfeitReport.created_at.desc())
        .limit(MAX_ROWS)
    ).all()
    rows = [*checks, *reports]
    return FakeSightings(
        gtin,
        networks=len({r.network for r in rows}),
        checks=sum(r.checks for r in checks),
        reports=len(reports),
        districts=tuple(sorted({r.district_code for r in rows if r.district_code})),
        codes=tuple(sorted({r.code for r in rows})),
    )


def cluster_rule(session: Session, gtin: str | None, config: Config, now: datetime) -> None:
    """The counterfeit_cluster rule on the sightings of fakes under ``gtin`` within its
    window: its finding recorded against the product's merchant as victim (no credit record),
    or, when it is on file and open, its evidence brought up to date. A GTIN that is no
    product of ours names no merchant: the map shows its sightings, no finding is raised."""
    if gtin is None:
        return
    merchant_id = session.scalar(sa.select(Product.merchant_id).where(Product.gtin == gtin))
    if merchant_id is None:
        return
    t = config.thresholds
    seen = sightings(session, gtin, now - timedelta(hours=t.counterfeit_cluster_hours))
    finding = counterfeit_cluster(merchant_id, seen, t)
    if finding is None:
        return
    if not record_findings(session, [finding], config.policy, now):
        on_file = session.scalar(
            sa.select(Anomaly).where(
                Anomaly.type == "counterfeit_cluster",
                Anomaly.subject_type == "product",
                Anomaly.subject == gtin,
                Anomaly.status == "open",
            )
        )
        if on_file is not None:
            on_file.evidence = finding.evidence
            session.flush()


# -- the map -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapFilter:
    """What the counterfeit map is narrowed to; every field is optional."""

    gtin: str = ""
    merchant_id: int | None = None
    days: int = 30

    @classmethod
    def from_args(cls, args) -> MapFilter:
        gtin = args.get("gtin", "").strip()
        # ASCII digits only: str.isdigit() takes "²", which int() then refuses (a 500)
        if gtin and not (_DIGITS.fullmatch(gtin) and len(gtin) in (8, 12, 13, 14)):
            raise ValidationError("gtin: 8, 12, 13 or 14 digits", field="gtin")
        merchant = args.get("merchant_id", "").strip()
        if merchant and not (_DIGITS.fullmatch(merchant) and 0 < int(merchant) < 2**31):
            raise ValidationError("merchant_id: a merchant's id", field="merchant_id")
        days = args.get("days", "") or "30"
        if not (_DIGITS.fullmatch(days) and 0 < int(days) <= 365):
            raise ValidationError("days: 1 to 365", field="days")
        return cls(
            gtin=gtin.zfill(14) if gtin else "",
            merchant_id=int(merchant) if merchant else None,
            days=int(days),
        )


def _visible(model, viewer: Principal, f: MapFilter, since: datetime, at) -> sa.Select:
    """Rows of ``model`` (checks or reports) ``viewer`` may see that ``f`` selects: a
    regulator those whose product's merchant, or whose own district, is in its
    jurisdiction."""
    viewer.require(Role.ADMIN, Role.REGULATOR)
    query = (
        sa.select(model, Product.name, Product.merchant_id, Merchant.name)
        .outerjoin(Product, Product.gtin == model.gtin)
        .outerjoin(Merchant, Merchant.id == Product.merchant_id)
        .where(at >= since)
    )
    if viewer.jurisdiction:
        query = query.where(
            sa.or_(
                *(Merchant.region_code.startswith(p) for p in viewer.jurisdiction),
                *(model.district_code.startswith(p) for p in viewer.jurisdiction),
            )
        )
    if f.gtin:
        query = query.where(model.gtin == f.gtin)
    if f.merchant_id is not None:
        query = query.where(Product.merchant_id == f.merchant_id)
    return query.order_by(at.desc()).limit(MAX_ROWS)


@dataclass
class CounterfeitMap:
    """Where fakes are being checked and reported: per district and per product."""

    #: district code -> {"checks", "networks", "reports"}
    by_district: dict[str, dict]
    #: one dict per GTIN: gtin, product, merchant, checks, networks, reports, districts
    products: list[dict]
    #: the newest reports (contacts included: the caller logs the read as personal data)
    reports: list[CounterfeitReport]
    #: checks and reports with no district shared
    unplaced: dict[str, int]


def counterfeit_map(session: Session, viewer: Principal, f: MapFilter, now: datetime):
    """The counterfeit map for a regulator (or admin): the sightings of the last ``f.days``
    days inside its jurisdiction, by district and by product."""
    since = now - timedelta(days=f.days)
    checks = session.execute(
        _visible(CounterfeitCheck, viewer, f, since, CounterfeitCheck.last_at)
    ).all()
    reports = session.execute(
        _visible(CounterfeitReport, viewer, f, since, CounterfeitReport.created_at)
    ).all()
    by_district: dict[str, dict] = defaultdict(
        lambda: {"checks": 0, "networks": set(), "reports": 0}
    )
    products: dict[str, dict] = {}
    unplaced = {"checks": 0, "reports": 0}

    def product(row, gtin) -> dict:
        key = gtin or ""
        if key not in products:
            products[key] = {
                "gtin": gtin,
                "product": row[1],
                "merchant_id": row[2],
                "merchant": row[3],
                "checks": 0,
                "networks": set(),
                "reports": 0,
                "districts": set(),
            }
        return products[key]

    for row in checks:
        c = row[0]
        p = product(row, c.gtin)
        p["checks"] += c.checks
        p["networks"].add(c.network)
        if c.district_code:
            p["districts"].add(c.district_code)
            d = by_district[c.district_code]
            d["checks"] += c.checks
            d["networks"].add(c.network)
        else:
            unplaced["checks"] += c.checks
    for row in reports:
        r = row[0]
        p = product(row, r.gtin)
        p["reports"] += 1
        p["networks"].add(r.network)
        if r.district_code:
            p["districts"].add(r.district_code)
            d = by_district[r.district_code]
            d["reports"] += 1
            d["networks"].add(r.network)
        else:
            unplaced["reports"] += 1
    for entry in [*by_district.values(), *products.values()]:
        entry["networks"] = len(entry["networks"])
    for p in products.values():
        p["districts"] = sorted(p["districts"])
    ordered = sorted(products.values(), key=lambda p: (-p["networks"], p["gtin"] or ""))
    return CounterfeitMap(dict(by_district), ordered, [row[0] for row in reports[:50]], unplaced)


def mask_contact(contact: str | None) -> str | None:
    """A contact as shown outside the regulators' view: its first and last characters."""
    if not contact:
        return None
    return contact[0] + "***" + contact[-1] if len(contact) > 2 else "***"


def refuse_genuine(seen: Sighting | None) -> Sighting:
    """The sighting of a report; a genuine unit's own code is no counterfeit (Conflict)."""
    if seen is None:
        raise Conflict(
            "this code was issued for this product: it is genuine; a problem with the unit "
            "is a complaint on its page"
        )
    return seen
