"""Dishonest cases for the demo: a regulator who opens the demo finds a queue to work on.

The demo's live simulator sends honest traffic only, so on its own it raises no finding. This
plays the anomaly scenario suite (:mod:`app.ingest.scenarios`) once, five days back, on shops
and couriers of its own: one case of every kind that device events can show, sent by signed
devices through the real ingest and swept, so every finding it leaves has real evidence and
went through the same rules as production traffic. The scenario's test names are then given
the words a regulator would see in a real market.

The live simulator must not drive these shops and couriers afterwards (their stock includes
an expired and a recalled batch): it drives the shops and couriers registered before the
cases (:func:`fleet_before_cases`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.catalog.models import Batch, Product
from app.ingest import scenarios
from app.parties.models import Courier, Merchant

#: The scenario's lots, by prefix, and the product names the demo shows for them.
PRODUCT_NAMES = {
    "ZSOK": "阳澄湖大闸蟹礼盒",
    "ZSEXP": "婴幼儿配方奶粉（900克）",
    "ZSREC": "速冻三鲜水饺",
    "ZSBR": "网红坚果零食大礼包",
}
#: The cases' shops (the fleet names them "…模拟网店N号", a simulated shop), by number.
SHOP_NAMES = ("惠民食品商行", "优品零食专营店", "鲜果生活馆", "四季粮油店")
ORIGIN = "江苏省常州市武进区"
RECALL_REASON = "监督抽检菌落总数超标"
#: Couriers' names, as many as the cases register (surnames times given names).
COURIER_NAMES = tuple(s + g for g in ("磊", "芳", "浩", "敏", "刚") for s in "赵钱孙周吴郑冯褚")
DAYS_BACK = 5


def already_played(session) -> bool:
    """Whether the cases are in the database (they are played once)."""
    return session.scalar(sa.select(Batch.id).where(Batch.lot == "ZSOK").limit(1)) is not None


def fleet_before_cases(session) -> tuple[int, int] | None:
    """How many merchants and couriers were registered before the cases were played (the
    demo's own fleet, which the live simulator drives), or None when they have not been."""
    owners = (
        sa.select(Product.merchant_id)
        .join(Batch, Batch.product_id == Product.id)
        .where(sa.or_(Batch.lot == "ZSOK", Batch.lot.startswith("ZSBR")))
    )
    first = session.scalar(
        sa.select(sa.func.min(Merchant.created_at)).where(Merchant.id.in_(owners))
    )
    if first is None:
        return None
    count = sa.func.count()
    shops = session.scalar(
        sa.select(count).select_from(Merchant).where(Merchant.created_at < first)
    )
    couriers = session.scalar(
        sa.select(count).select_from(Courier).where(Courier.created_at < first)
    )
    return shops, couriers


def play(app, *, now: datetime | None = None) -> scenarios.Report:
    """Play the cases (one of each kind) ``DAYS_BACK`` days before ``now``, then name their
    products, recall and couriers as the demo shows them. Commits (it runs the ingest)."""
    now = now or datetime.now(UTC)
    start = (now - timedelta(days=DAYS_BACK)).astimezone(scenarios.CST)
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    report = scenarios.run(
        app, shops=2, couriers=2, codes_per_shop=40, inject=1, clean=False, start=start
    )
    with app.extensions["trace"].sessionmaker() as session:
        _name(session)
        session.commit()
    return report


def _name(session) -> None:
    for prefix, name in PRODUCT_NAMES.items():
        lots = sa.select(Batch.product_id).where(Batch.lot.startswith(prefix))
        session.execute(sa.update(Product).where(Product.id.in_(lots)).values(name=name))
    session.execute(
        sa.update(Batch).where(Batch.lot == "ZSREC").values(recall_reason=RECALL_REASON)
    )
    session.execute(sa.update(Batch).where(Batch.lot.startswith("ZS")).values(origin_name=ORIGIN))
    for merchant in session.scalars(sa.select(Merchant).where(Merchant.name.contains("模拟网店"))):
        number = int(merchant.name.rsplit("模拟网店", 1)[1].rstrip("号"))
        shop = SHOP_NAMES[(number - 1) % len(SHOP_NAMES)]
        merchant.name = merchant.name.replace(f"模拟网店{number}号", shop)
    unnamed = session.scalars(
        sa.select(Courier).where(Courier.name == "场景快递员").order_by(Courier.id)
    )
    for courier, name in zip(unnamed, COURIER_NAMES, strict=False):  # 40 names; 13 used
        courier.name = name
