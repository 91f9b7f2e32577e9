"""What consumers and merchants say: delivery ratings, product reviews, complaints.

Public entry points are rate-limited per source by counting the source's recent rows in the
database (so the limit holds across every instance of the service). A source is the client's
address and its network (keyed hashes, :func:`app.web.client_source`), never its cookie or
browser string: rotating those does not lift a limit. Texts are stored as given and always
escaped when shown. What consumers send is evidence of its own weight: a flood of complaints
from one network about one party is one finding, with the flood as its evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import record_findings
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.credit.models import Anomaly, CreditRecord
from app.events.models import Event, Parcel, ParcelItem
from app.feedback.models import Complaint, DeliveryRating, Review
from tracecore import credit
from tracecore.access import Principal, Role
from tracecore.anomalies import MINOR, Finding
from tracecore.errors import Conflict, Forbidden, NotFound, ValidationError
from tracecore.vocabulary import EventType, ParcelState, UnitState

RATING_TAGS = frozenset({"late", "damaged", "rude", "not_to_door", "careful", "on_time"})
COMPLAINT_CATEGORIES = ("counterfeit", "quality", "delivery", "privacy", "other")
#: A network may send this many times an address's hourly limit (several households, or a
#: mobile carrier's shared addresses, sit behind one network).
NETWORK_SHARE = 4
#: Complaints from one network about one party within this window are one finding.
COMPLAINT_CLUSTER_WINDOW = timedelta(hours=24)
#: A consignee rates a delivery within this long of its signature.
RATING_DAYS = 30


class Source(NamedTuple):
    """Where a public entry comes from: keyed hashes of the client's address and network."""

    address: str
    network: str


class TooMany(Conflict):
    """The client sent too many of these lately (HTTP 429)."""

    code = "rate_limited"
    status = 429


def check_rate(session: Session, model, source: Source, per_hour: int) -> None:
    """At most ``per_hour`` entries an hour from one address, and ``NETWORK_SHARE`` times as
    many from one network (TooMany otherwise)."""
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = sa.select(sa.func.count()).select_from(model).where(model.created_at >= since)
    if session.scalar(recent.where(model.client_hash == source.address)) >= per_hour:
        raise TooMany(f"at most {per_hour} per hour from one address; try again later")
    network_limit = NETWORK_SHARE * per_hour
    if session.scalar(recent.where(model.network == source.network)) >= network_limit:
        raise TooMany(f"at most {network_limit} per hour from one network; try again later")


def _code(session: Session, serial: str) -> TraceCode:
    code = session.get(TraceCode, serial)
    if code is None:
        raise NotFound("no trace code with this serial; it was never issued", field="serial")
    return code


def add_review(
    session: Session, serial: str, rating: int, text: str, source: Source, per_hour: int
) -> Review:
    """A consumer's review of a unit, rate-limited per address and network."""
    _code(session, serial)
    check_rate(session, Review, source, per_hour)
    review = Review(
        serial=serial,
        rating=rating,
        text=text,
        client_hash=source.address,
        network=source.network,
    )
    session.add(review)
    session.flush()
    return review


def _signed_parcel(session: Session, waybill: str) -> tuple[Parcel, int | None]:
    """The parcel, if signed, and the courier who signed it."""
    parcel = session.get(Parcel, waybill)
    if parcel is None:
        raise NotFound(f"no parcel with waybill {waybill}")
    if parcel.state != ParcelState.SIGNED:
        raise Conflict("a parcel can be rated once it is signed")
    courier = session.scalar(
        sa.select(Event.party_id)
        .where(
            Event.waybill == waybill,
            Event.type == EventType.SIGNED,
            Event.violation.is_(None),
            Event.party_type == "courier",
        )
        .order_by(Event.occurred_at)
        .limit(1)
    )
    return parcel, courier


def rate_delivery(
    session: Session,
    waybill: str,
    rater: str,
    courier_stars: int,
    company_stars: int,
    tags: list[str],
    policy: credit.Policy,
) -> DeliveryRating:
    """One rating per parcel per rater (the consignee, the shipping merchant), written into the
    courier's and the company's credit records, within the policy's cap."""
    unknown = set(tags) - RATING_TAGS
    if unknown:
        raise ValidationError(f"unknown tag {sorted(unknown)[0]}", field="tags")
    parcel, courier_id = _signed_parcel(session, waybill)
    taken = session.scalar(
        sa.select(DeliveryRating.id).where(
            DeliveryRating.waybill == waybill, DeliveryRating.rater == rater
        )
    )
    if taken is not None:
        raise Conflict(f"this parcel was already rated by the {rater}")
    rating = DeliveryRating(
        waybill=waybill,
        rater=rater,
        courier_id=courier_id,
        logistics_company_id=parcel.logistics_company_id,
        courier_stars=courier_stars,
        company_stars=company_stars,
        tags=sorted(set(tags)),
    )
    session.add(rating)
    now = datetime.now(UTC)
    why = f"{rater} rating of {waybill}"
    records = [
        CreditRecord(
            party_type="logistics_company",
            party_id=parcel.logistics_company_id,
            kind="rating",
            points=credit.rating_points(company_stars, policy),
            reason=f"{why}: {company_stars}★",
            effective_at=now,
            created_at=now,
        )
    ]
    if courier_id is not None:
        records.append(
            CreditRecord(
                party_type="courier",
                party_id=courier_id,
                kind="rating",
                points=credit.rating_points(courier_stars, policy),
                reason=f"{why}: {courier_stars}★",
                effective_at=now,
                created_at=now,
            )
        )
    session.add_all(records)
    session.flush()
    return rating


def rate_as_consignee(
    session: Session,
    serial: str,
    courier_stars: int,
    company_stars: int,
    tags: list[str],
    policy: credit.Policy,
    now: datetime | None = None,
) -> DeliveryRating:
    """The consignee rates the delivery of the parcel a unit came in; the unit's code in
    hand is the proof (the protocol offers no other): the unit must be where the signature
    left it (its state ``signed``: not returned, re-shelved or sold on since, when someone
    else may hold it), and the signature at most :data:`RATING_DAYS` old. One rating per
    parcel, whichever of its units names it. Anyone else is refused (Forbidden, 403)."""
    now = now or datetime.now(UTC)
    code = _code(session, serial)
    if code.state != UnitState.SIGNED:
        raise Forbidden(
            "only the consignee rates a delivery, by a unit of the signed parcel still in "
            f"hand; this unit is {code.state}, not signed for"
        )
    waybill = session.scalar(
        sa.select(ParcelItem.waybill)
        .join(Parcel, Parcel.waybill == ParcelItem.waybill)
        .where(ParcelItem.serial == serial, Parcel.state == ParcelState.SIGNED)
        .order_by(Parcel.packed_at.desc())
        .limit(1)
    )
    if waybill is None:
        raise Forbidden("this unit has no signed parcel to rate")
    signed_at = session.scalar(
        sa.select(sa.func.max(Event.occurred_at)).where(
            Event.waybill == waybill, Event.type == EventType.SIGNED, Event.violation.is_(None)
        )
    )
    if signed_at is None or now - signed_at > timedelta(days=RATING_DAYS):
        raise Forbidden(f"a delivery is rated within {RATING_DAYS} days of its signature")
    return rate_delivery(session, waybill, "consignee", courier_stars, company_stars, tags, policy)


def rate_as_merchant(
    session: Session,
    actor: Principal,
    waybill: str,
    courier_stars: int,
    company_stars: int,
    tags: list[str],
    policy: credit.Policy,
) -> DeliveryRating:
    actor.require(Role.MERCHANT)
    parcel = session.get(Parcel, waybill)
    if parcel is None or parcel.merchant_id != actor.party_id:
        raise Forbidden("a merchant rates the delivery of its own parcels")
    return rate_delivery(session, waybill, "merchant", courier_stars, company_stars, tags, policy)


def responsible_party(session: Session, serial: str, category: str) -> tuple[str, int]:
    """Who answers a complaint, through the unit's custody: the courier who delivered it for
    delivery (and, once delivered, privacy) complaints; otherwise the merchant who sold it,
    or the product's merchant when no sale was recorded."""
    if category in ("delivery", "privacy"):
        courier = session.scalar(
            sa.select(Event.party_id)
            .join(ParcelItem, ParcelItem.waybill == Event.waybill)
            .where(
                ParcelItem.serial == serial,
                Event.party_type == "courier",
                Event.violation.is_(None),
            )
            .order_by(Event.occurred_at.desc())
            .limit(1)
        )
        if courier is not None:
            return ("courier", courier)
    seller = session.scalar(
        sa.select(Event.party_id)
        .where(Event.serial == serial, Event.type == EventType.SOLD, Event.party_type == "merchant")
        .order_by(Event.occurred_at.desc())
        .limit(1)
    )
    if seller is not None:
        return ("merchant", seller)
    return (
        "merchant",
        session.scalar(
            sa.select(Product.merchant_id)
            .join(Batch, Batch.product_id == Product.id)
            .join(TraceCode, TraceCode.batch_id == Batch.id)
            .where(TraceCode.serial == serial)
        ),
    )


def file_complaint(
    session: Session,
    serial: str,
    category: str,
    text: str,
    contact: str | None,
    source: Source,
    per_hour: int,
    policy: credit.Policy,
) -> Complaint:
    """A consumer's complaint: kept (its contact shown to regulators only) and raised as a
    consumer_complaint anomaly against the responsible party, pending a regulator's review.

    Rate-limited per address and network. A complaint from a network that has complained
    about the same party within :data:`COMPLAINT_CLUSTER_WINDOW` joins that complaint's
    anomaly instead of raising one more: a flood from one network is one finding, and its
    evidence (``cluster``) shows regulators the flood for what it is."""
    _code(session, serial)
    check_rate(session, Complaint, source, per_hour)
    party = responsible_party(session, serial, category)
    complaint = Complaint(
        serial=serial,
        category=category,
        text=text,
        contact=contact,
        party_type=party[0],
        party_id=party[1],
        client_hash=source.address,
        network=source.network,
    )
    session.add(complaint)
    session.flush()
    cluster = _cluster_of(session, complaint)
    if cluster is not None:
        _join_cluster(session, cluster, complaint)
        return complaint
    finding = Finding(
        "consumer_complaint",
        MINOR,
        ("code", serial),
        (party,),
        {"complaint_id": complaint.id, "category": category},
    )
    record_findings(session, [finding], policy, datetime.now(UTC))
    # One ongoing anomaly per code and party: later complaints join it.
    complaint.anomaly_id = session.scalar(
        sa.select(Anomaly.id).where(
            Anomaly.type == "consumer_complaint",
            Anomaly.subject_type == "code",
            Anomaly.subject == serial,
            Anomaly.party_type == party[0],
            Anomaly.party_id == party[1],
        )
    )
    session.flush()
    return complaint


def _cluster_of(session: Session, complaint: Complaint) -> Anomaly | None:
    """The anomaly of this network's first complaint about the same party within the
    cluster window, if there is one."""
    if complaint.network is None:
        return None
    return session.scalar(
        sa.select(Anomaly)
        .join(Complaint, Complaint.anomaly_id == Anomaly.id)
        .where(
            Complaint.network == complaint.network,
            Complaint.party_type == complaint.party_type,
            Complaint.party_id == complaint.party_id,
            Complaint.created_at >= complaint.created_at - COMPLAINT_CLUSTER_WINDOW,
            Complaint.id != complaint.id,
        )
        .order_by(Complaint.id)
        .limit(1)
    )


def _join_cluster(session: Session, anomaly: Anomaly, complaint: Complaint) -> None:
    """The complaint joins the anomaly of its network's flood; the anomaly's evidence says
    how many complaints, about which codes, came from that one network."""
    complaint.anomaly_id = anomaly.id
    session.flush()
    rows = session.execute(
        sa.select(Complaint.id, Complaint.serial)
        .where(Complaint.anomaly_id == anomaly.id, Complaint.network == complaint.network)
        .order_by(Complaint.id)
    ).all()
    anomaly.evidence = {
        **anomaly.evidence,
        "cluster": {
            "why": "complaints from one network about one party",
            "complaints": len(rows),
            "complaint_ids": [r.id for r in rows][:50],
            "codes": sorted({r.serial for r in rows})[:50],
            "window_hours": COMPLAINT_CLUSTER_WINDOW.total_seconds() / 3600,
        },
    }
    session.flush()
