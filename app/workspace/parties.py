"""A party's page in the workspace: what a regulator asks about a merchant, a logistics
company or a courier, each reference a link.

* a merchant: its products and their batches, its devices, its findings, its credit history
  (the public score over the last year as a chart), its commitment, the consumers' ratings
  of its units and the complaints against it;
* a logistics company: its couriers with their open and total findings, the ratings and
  complaints of its deliveries;
* a courier: its company, the parcels it scanned lately, its handhelds, its ratings.

Every party's page has its findings, its credit account and its risk indicator. The page
shows a courier's full name: the view is logged as personal data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import render_template
from sqlalchemy.orm import Session

from app.accesslog.operations import log_access
from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.credit import operations as credit_ops
from app.credit.models import Anomaly
from app.events.models import Device, Event
from app.feedback.models import Complaint, DeliveryRating, Review
from app.parties.models import PARTY_MODELS, Courier
from app.web import db, settings, unit_of_work
from app.workspace.charts import Series, line_chart
from app.workspace.session import bp, viewer
from tracecore.credit import Policy
from tracecore.errors import ValidationError
from tracecore.workdays import CST

#: How many rows each list shows (the newest).
ROWS = 50


def credit_chart(session: Session, party: tuple[str, int], policy: Policy, now: datetime):
    """The public score at the end of each of the last 13 months (Beijing time), as a chart."""
    today = now.astimezone(CST).date()
    ends, labels = [], []
    for back in range(12, -1, -1):
        year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
        first = datetime(year, month + 1, 1, tzinfo=CST)
        end = now if back == 0 else (first + timedelta(days=32)).replace(day=1)
        ends.append(min(end, now))
        labels.append(first.strftime("%Y-%m"))
    standings = credit_ops.standings_over_time(session, party, policy, ends)
    chart = line_chart(
        labels,
        [Series("公开信用分 public score", [s.score for s in standings])],
        title="近 12 个月信用分 Public credit score, last 12 months",
        height=200,
        label_every=2,
    )
    return chart, list(zip(labels, standings, strict=True))


def _merchant(session: Session, party_id: int) -> dict:
    products = list(
        session.scalars(
            sa.select(Product).where(Product.merchant_id == party_id).order_by(Product.id)
        )
    )
    batches = list(
        session.scalars(
            sa.select(Batch)
            .where(Batch.product_id.in_([p.id for p in products]))
            .order_by(Batch.id.desc())
            .limit(ROWS)
        )
    )
    reviews = session.execute(
        sa.select(sa.func.count(), sa.func.avg(Review.rating))
        .join(TraceCode, TraceCode.serial == Review.serial)
        .join(Batch, Batch.id == TraceCode.batch_id)
        .join(Product, Product.id == Batch.product_id)
        .where(Product.merchant_id == party_id)
    ).one()
    return {"products": products, "batches": batches, "reviews": reviews}


def _company(session: Session, party_id: int) -> dict:
    couriers = session.execute(
        sa.select(
            Courier,
            sa.func.count(Anomaly.id),
            sa.func.count(Anomaly.id).filter(Anomaly.status == "open"),
        )
        .outerjoin(
            Anomaly, sa.and_(Anomaly.party_type == "courier", Anomaly.party_id == Courier.id)
        )
        .where(Courier.company_id == party_id)
        .group_by(Courier.id)
        .order_by(Courier.id)
    ).all()
    ratings = session.execute(
        sa.select(sa.func.count(), sa.func.avg(DeliveryRating.company_stars)).where(
            DeliveryRating.logistics_company_id == party_id
        )
    ).one()
    return {"couriers": couriers, "ratings": ratings}


def _courier(session: Session, party_id: int) -> dict:
    devices = sa.select(Device.id).where(
        Device.owner_type == "courier", Device.owner_id == party_id
    )
    parcels = session.execute(
        sa.select(Event.waybill, sa.func.max(Event.occurred_at).label("last"))
        .where(Event.device_id.in_(devices), Event.waybill.is_not(None))
        .group_by(Event.waybill)
        .order_by(sa.desc("last"))
        .limit(ROWS)
    ).all()
    ratings = session.execute(
        sa.select(sa.func.count(), sa.func.avg(DeliveryRating.courier_stars)).where(
            DeliveryRating.courier_id == party_id
        )
    ).one()
    return {"parcels": parcels, "ratings": ratings}


@bp.get("/parties/<party_type>/<id:party_id>")
@unit_of_work
def party_page(party_type: str, party_id: int):
    if party_type not in PARTY_MODELS:
        raise ValidationError("party types: merchant, logistics_company, courier")
    session, cfg = db(), settings()
    party = credit_ops.get_party(session, party_type, party_id)
    viewer().require_region(party.region_code, "this party")
    now = datetime.now(UTC)
    account = credit_ops.account(session, party_type, party_id, cfg.policy)
    chart, history = credit_chart(session, (party_type, party_id), cfg.policy, now)
    details = {"merchant": _merchant, "logistics_company": _company, "courier": _courier}
    log_access(
        session,
        viewer(),
        "view",
        party_type,
        party_id,
        personal_data=party_type == "courier",
        detail="credit",
    )
    return render_template(
        "workspace/party.html",
        party=party,
        party_type=party_type,
        account=account,
        credit_chart=chart,
        credit_history=history,
        devices=list(
            session.scalars(
                sa.select(Device)
                .where(Device.owner_type == party_type, Device.owner_id == party_id)
                .order_by(Device.created_at)
            )
        ),
        complaints=list(
            session.scalars(
                sa.select(Complaint)
                .where(Complaint.party_type == party_type, Complaint.party_id == party_id)
                .order_by(Complaint.id.desc())
                .limit(ROWS)
            )
        ),
        anomalies=list(
            session.scalars(
                sa.select(Anomaly)
                .where(Anomaly.party_type == party_type, Anomaly.party_id == party_id)
                .order_by(Anomaly.id.desc())
                .limit(100)
            )
        ),
        **details[party_type](session, party_id),
    )
