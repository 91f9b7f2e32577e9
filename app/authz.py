"""Who may act on what: one rule for every resource, checked by every route of the API, every
page of the workspace and every use case the command line runs.

**The rule.** Every resource belongs to a party (its *owner*): a merchant, a logistics
company or a courier, each with a GB/T 2260 ``region_code``.

- An authority (admin, regulator) acts on it only when the owner's region is inside its
  jurisdiction (:meth:`Principal.require_region`; admins and national regulators have none,
  so they act everywhere);
- a merchant or a logistics company acts on it only when it speaks for the owner
  (:func:`acts_for`: itself; a company also for its couriers);
- nobody else.

What is reached through a party inherits the party: a product, a batch and a trace code are
their merchant's; a device is its owner's (a merchant for scanners, a courier for handhelds),
so its secret is issued only to that owner or an authority over it; an anomaly and its
appeals are the party's they name (at the region recorded on the anomaly); a parcel is its
shipper's and its carrier's, and an authority of the shipper's or the consignee's region
may read it. A new party may be registered only by an authority whose jurisdiction covers
its region. A rejected event is its device's owner's; one from a device nobody registered
is read only by those without a jurisdiction (admins, national regulators).

This module reads the areas' models and nothing else of theirs, so every area's use cases
can call it; the command line runs as :data:`tracecore.access.OPERATOR` (an admin).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.catalog.models import Batch, Product
from app.codes.models import TraceCode
from app.credit.models import Anomaly, Appeal
from app.events.models import Device, Parcel, RejectedEvent
from app.hooks.models import WebhookSubscription
from app.parties.models import PARTY_MODELS, Courier, LogisticsCompany, Merchant
from tracecore.access import Principal, Role
from tracecore.errors import Forbidden


@dataclass(frozen=True)
class Owner:
    """The party a resource belongs to, and the region that decides who governs it."""

    party_type: str  #: merchant | logistics_company | courier
    party_id: int
    region_code: str


def owner(session: Session, resource) -> Owner:
    """The party ``resource`` belongs to (a party is its own owner)."""
    match resource:
        case Owner():
            return resource
        case Merchant():
            return Owner("merchant", resource.id, resource.region_code)
        case LogisticsCompany():
            return Owner("logistics_company", resource.id, resource.region_code)
        case Courier():
            return Owner("courier", resource.id, resource.region_code)
        case Product():
            return owner(session, resource.merchant)
        case Batch():
            return owner(session, resource.product)
        case TraceCode():
            return owner(session, resource.batch)
        case Device():
            return owner(session, session.get(PARTY_MODELS[resource.owner_type], resource.owner_id))
        case Anomaly():
            return Owner(resource.party_type, resource.party_id, resource.region_code)
        case Appeal():
            return owner(session, session.get(Anomaly, resource.anomaly_id))
    raise TypeError(f"no owner rule for {type(resource).__name__}")


def acts_for(session: Session, actor: Principal, party_type: str, party_id: int) -> bool:
    """Whether the caller speaks for the party (a company speaks for its couriers)."""
    if actor.role is Role.MERCHANT:
        return party_type == "merchant" and actor.party_id == party_id
    if actor.role is Role.LOGISTICS:
        if party_type == "logistics_company":
            return actor.party_id == party_id
        if party_type == "courier":
            courier = session.get(Courier, party_id)
            return courier is not None and courier.company_id == actor.party_id
    return False


def allowed(session: Session, actor: Principal, resource, *, parties: bool = True) -> bool:
    """Whether ``actor`` may act on ``resource``: an authority inside its jurisdiction, or
    (unless ``parties`` is False: authorities' actions) the party it belongs to."""
    found = owner(session, resource)
    if actor.is_authority:
        return actor.covers(found.region_code)
    return parties and acts_for(session, actor, found.party_type, found.party_id)


def require(
    session: Session, actor: Principal, resource, what: str = "this", *, parties: bool = True
) -> None:
    """:func:`allowed`, or Forbidden saying why."""
    if allowed(session, actor, resource, parties=parties):
        return
    if actor.is_authority:
        raise Forbidden(f"{what} is outside your jurisdiction")
    if not parties:
        raise Forbidden("this action needs one of the roles: admin, regulator")
    raise Forbidden(f"you may act only on your own parties' things, and {what} is not yours")


def require_new_party(actor: Principal, region_code: str, what: str = "the new party") -> None:
    """Authorities register parties, each only inside its jurisdiction."""
    actor.require(Role.ADMIN, Role.REGULATOR)
    actor.require_region(region_code, f"{what} (region {region_code[:6]})")


def require_parcel(session: Session, actor: Principal, parcel: Parcel) -> None:
    """A parcel: its shipper, its carrier, and authorities of the shipper's region or of
    the consignee's."""
    if actor.is_authority:
        regions = (session.get(Merchant, parcel.merchant_id).region_code,)
        if not any(actor.covers(r) for r in (*regions, parcel.consignee_region_code)):
            raise Forbidden("this parcel is outside your jurisdiction")
        return
    if (actor.role is Role.MERCHANT and actor.party_id == parcel.merchant_id) or (
        actor.role is Role.LOGISTICS and actor.party_id == parcel.logistics_company_id
    ):
        return
    raise Forbidden("only authorities, the shipper and the carrier may read this parcel")


def subscriptions_visible(actor: Principal) -> sa.ColumnElement[bool]:
    """The webhook subscriptions ``actor`` may read and manage, as a WHERE term: a party's
    belong to the party (any of its tokens); a regulator's to the regulators of the same
    jurisdiction (its office); admins manage every one."""
    sub = WebhookSubscription
    if actor.role is Role.ADMIN:
        return sa.true()
    if actor.is_authority:
        return sa.and_(
            sub.role == actor.role.value, sub.jurisdiction == ",".join(actor.jurisdiction)
        )
    return sa.and_(sub.role == actor.role.value, sub.party_id == actor.party_id)


def require_subscription(actor: Principal, subscription: WebhookSubscription) -> None:
    """:func:`subscriptions_visible` for one subscription, or Forbidden."""
    if actor.role is Role.ADMIN:
        return
    mine = subscription.role == actor.role.value and (
        subscription.jurisdiction == ",".join(actor.jurisdiction)
        if actor.is_authority
        else subscription.party_id == actor.party_id
    )
    if not mine:
        raise Forbidden("this subscription is not yours")


def _in_jurisdiction(column, actor: Principal):
    return sa.or_(*(column.startswith(prefix) for prefix in actor.jurisdiction))


def parties_in_jurisdiction(
    actor: Principal, party_type: sa.ColumnElement, party_id: sa.ColumnElement
) -> sa.ColumnElement[bool]:
    """Rows owned by a merchant or a logistics company (``party_type``, ``party_id``) that an
    authority may read, as a WHERE term: those of parties in its jurisdiction (every one
    without a jurisdiction); parties none (they read their own by their own condition)."""
    if not actor.is_authority:
        return sa.false()
    if not actor.jurisdiction:
        return sa.true()
    merchants = sa.select(Merchant.id).where(_in_jurisdiction(Merchant.region_code, actor))
    companies = sa.select(LogisticsCompany.id).where(
        _in_jurisdiction(LogisticsCompany.region_code, actor)
    )
    return sa.or_(
        sa.and_(party_type == "merchant", party_id.in_(merchants)),
        sa.and_(party_type == "logistics_company", party_id.in_(companies)),
    )


def rejected_events_visible(
    actor: Principal, device_id: sa.ColumnElement | None = None
) -> sa.ColumnElement[bool]:
    """The rejected events (or, with ``device_id`` their tallies' column, the tallies)
    ``actor`` may read, as a WHERE term: authorities without a jurisdiction every one; a
    regulator those whose device belongs to a party of its jurisdiction (a device nobody
    registered belongs to no one's). Parties none."""
    if not actor.is_authority:
        return sa.false()
    if not actor.jurisdiction:
        return sa.true()
    merchants = (
        sa.select(Device.id)
        .join(Merchant, Merchant.id == Device.owner_id)
        .where(Device.owner_type == "merchant", _in_jurisdiction(Merchant.region_code, actor))
    )
    couriers = (
        sa.select(Device.id)
        .join(Courier, Courier.id == Device.owner_id)
        .where(Device.owner_type == "courier", _in_jurisdiction(Courier.region_code, actor))
    )
    column = RejectedEvent.device_id if device_id is None else device_id
    return column.in_(sa.union_all(merchants, couriers))
