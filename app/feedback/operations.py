"""What consumers and merchants say: delivery ratings, product reviews, complaints.

Public entry points are rate-limited per client by counting the client's recent rows in the
database (so the limit holds across every instance of the service); the client is known only
by a keyed hash of its address. Texts are stored as given and always escaped when shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
from tracecore.vocabulary import EventType, ParcelState

RATING_TAGS = frozenset({"late", "damaged", "rude", "not_to_door", "careful", "on_time"})
COMPLAINT_CATEGORIES = ("counterfeit", "quality", "delivery", "privacy", "other")


class TooMany(Conflict):
    """The client sent too many of these lately (HTTP 429)."""

    code = "rate_limited"
    status = 429


def check_rate(session: Session, model, client_hash: str, per_hour: int) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(model)
        .where(model.client_hash == client_hash, model.created_at >= since)
    )
    if count >= per_hour:
        raise TooMany(f"at most {per_hour} per hour from one client; try again later")


def _code(session: Session, serial: str) -> TraceCode:
    code = session.get(TraceCode, serial)
    if code is None:
        raise NotFound("no trace code with this serial; it was never issued", field="serial")
    return code


def add_review(
    session: Session, serial: str, rating: int, text: str, client_hash: str, per_hour: int
) -> Review:
    _code(session, serial)
    check_rate(session, Review, client_hash, per_hour)
    review = Review(serial=serial, rating=rating, text=text, client_hash=client_hash)
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
) -> DeliveryRating:
    """The consignee rates by the code on the unit received: its signed parcel is rated."""
    _code(session, serial)
    waybill = session.scalar(
        sa.select(ParcelItem.waybill)
        .join(Parcel, Parcel.waybill == ParcelItem.waybill)
        .where(ParcelItem.serial == serial, Parcel.state == ParcelState.SIGNED)
        .order_by(Parcel.packed_at.desc())
        .limit(1)
    )
    if waybill is None:
        raise Conflict("this unit has no signed parcel to rate")
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
    client_hash: str,
    per_hour: int,
    policy: credit.Policy,
) -> Complaint:
    """A consumer's complaint: kept (its contact shown to regulators only) and raised as a
    consumer_complaint anomaly against the responsible party, pending a regulator's review."""
    _code(session, serial)
    check_rate(session, Complaint, client_hash, per_hour)
    party = responsible_party(session, serial, category)
    complaint = Complaint(
        serial=serial,
        category=category,
        text=text,
        contact=contact,
        party_type=party[0],
        party_id=party[1],
        client_hash=client_hash,
    )
    session.add(complaint)
    session.flush()
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
