"""Fleets in the database, for the device simulator: register shops (merchants with a shelf
and a POS scanner, a product, a batch and trace codes) and couriers (with a handheld) through
the use cases, and load them back as the simulator's values (:class:`devices.simulator.Fleet`,
secrets derived from SECRET_KEY).

* :func:`setup_fleet`: new parties, for tests, benchmarks and the scenario suite.
* :func:`prepare_fleet` and :func:`load_fleet`: the devices already in the database (e.g. the
  demo's, see :mod:`app.demo`), registering what is missing; :class:`CodeSupply` issues codes
  as a long run sells them.

The ``flask devices simulate`` command (:mod:`app.simulate`) drives them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.catalog import operations as catalog
from app.catalog.models import Batch, BatchStatus, Product, ProductCategory
from app.codes.models import CodeState, TraceCode
from app.codes.operations import issue_codes
from app.db import lat_lon
from app.events.models import Device, DeviceKind, Event, ParcelItem
from app.events.registry import register_device
from app.parties import operations as parties
from app.parties.models import Courier, LogisticsCompany, Merchant, MerchantKind
from devices import protocol
from devices.simulator import (
    CST,
    DISTRICT_BY_CODE,
    DISTRICTS,
    District,
    Fleet,
    Shop,
    SimCourier,
    SimDevice,
    Stock,
    nearest_district,
    nearest_district_by_name,
    offset,
)
from tracecore.access import OPERATOR
from tracecore.gs1 import gtin_check_digit
from tracecore.identity import resident_id_check_char
from tracecore.uscc import uscc_check_char
from tracecore.vocabulary import OWNER_OF_KIND

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN_NAMES = ("伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明")
#: (name, category value, price) of the products of simulated shops, by city.
PRODUCTS_BY_CITY = {
    "常州市": (
        ("溧阳白茶 100g", "edible_agricultural", 128.0),
        ("金坛封缸酒 500ml", "food", 58.0),
        ("常州萝卜干 400g", "food", 19.9),
        ("天目湖砂锅鱼头礼盒", "food", 168.0),
    ),
    "肇庆市": (
        ("肇庆裹蒸粽 2只装", "food", 39.9),
        ("四会沙糖桔 5斤", "edible_agricultural", 35.8),
        ("高要肉桂 250g", "edible_agricultural", 42.0),
        ("鼎湖上素罐头 3罐", "food", 29.9),
    ),
}
PRICE_POINTS = (9.9, 19.9, 29.9, 39.9, 58.0, 88.0, 128.0, 168.0, 268.0)


def price_of(gtin: str) -> float:
    """A stable made-up price for a product the simulator did not create."""
    return PRICE_POINTS[int(hashlib.sha256(gtin.encode()).hexdigest(), 16) % len(PRICE_POINTS)]


def _register_devices(session, master_key: str, kind: str, owner_id: int) -> None:
    device_kind = DeviceKind(kind)
    register_device(
        session,
        OPERATOR,
        master_key,
        kind=device_kind,
        owner_type=OWNER_OF_KIND[device_kind],
        owner_id=owner_id,
    )


def _new_product(session, rng: random.Random, merchant_id: int, city: str, lot_place: str):
    """A product of the merchant, one batch of it; returns the batch."""
    name, category, _ = rng.choice(PRODUCTS_BY_CITY.get(city, PRODUCTS_BY_CITY["常州市"]))
    while True:
        body = f"69{rng.randrange(10**10):010d}"
        gtin = body + str(gtin_check_digit(body))
        if session.scalar(sa.select(Product.id).where(Product.gtin == "0" + gtin)) is None:
            break
    product = catalog.register_product(
        session,
        OPERATOR,
        gtin=gtin,
        name=name,
        category=ProductCategory(category),
        merchant_id=merchant_id,
    )
    today = datetime.now(CST).date()
    return catalog.register_batch(
        session,
        OPERATOR,
        product_id=product.id,
        lot=f"SIM{today:%y%m%d}{rng.randrange(1000):03d}",
        produced_on=today - timedelta(days=20),
        expires_on=today + timedelta(days=345),
        origin_name=lot_place,
        origin_lat=(nearest_district_by_name(lot_place) or DISTRICTS[0]).lat,
        origin_lon=(nearest_district_by_name(lot_place) or DISTRICTS[0]).lon,
        quantity=100_000,
    )


def _new_shop(session, master_key: str, rng: random.Random, district: District, n: int):
    while True:
        org = f"MA{rng.randrange(10**7):07d}"
        body = f"92{district.code}{org}"
        uscc = body + uscc_check_char(body)
        if session.scalar(sa.select(Merchant.id).where(Merchant.uscc == uscc)) is None:
            break
    lat, lon = offset(
        district.lat, district.lon, rng.uniform(-1500, 1500), rng.uniform(-1500, 1500)
    )
    merchant = parties.register_merchant(
        session,
        OPERATOR,
        name=f"{district.city}{district.name}模拟网店{n}号",
        uscc=uscc,
        kind=MerchantKind.SHOP,
        region_code=district.code,
        lat=round(lat, 6),
        lon=round(lon, 6),
    )
    return merchant


def _new_courier(session, master_key: str, rng: random.Random, district: District, company_id):
    born = date(1980, 1, 1) + timedelta(days=rng.randrange(20 * 365))
    body = f"{district.code}{born:%Y%m%d}{rng.randrange(1000):03d}"
    id_number = body + resident_id_check_char(body)
    lat, lon = offset(district.lat, district.lon, rng.uniform(-800, 800), rng.uniform(-800, 800))
    return parties.register_courier(
        session,
        OPERATOR,
        master_key,
        name=rng.choice(SURNAMES) + "".join(rng.choices(GIVEN_NAMES, k=rng.choice((1, 2)))),
        id_number=id_number,
        phone=f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
        company_id=company_id,
        region_code=district.code,
        lat=round(lat, 6),
        lon=round(lon, 6),
    )


def _company(session, rng: random.Random) -> int:
    found = session.scalar(sa.select(LogisticsCompany.id).order_by(LogisticsCompany.id).limit(1))
    if found is not None:
        return found
    body = f"91320400MA{rng.randrange(10**7):07d}"
    company_uscc = body + uscc_check_char(body)
    return parties.register_logistics_company(
        session,
        OPERATOR,
        name="模拟速运有限公司",
        uscc=company_uscc,
        region_code="320400",
        lat=31.8107,
        lon=119.9741,
    ).id


def _shop_districts(n: int) -> list[District]:
    """Where new shops go: both cities in turn, through their districts."""
    cities = [[d for d in DISTRICTS if d.city == c] for c in ("常州市", "肇庆市")]
    return [cities[i % 2][(i // 2) % len(cities[i % 2])] for i in range(n)]


def _courier_districts(n: int, shop_cities: list[str]) -> list[District]:
    """Where new couriers live: in the shops' cities in turn, through their districts."""
    cities = list(dict.fromkeys(shop_cities)) or ["常州市"]
    by_city = {c: [d for d in DISTRICTS if d.city == c] or [DISTRICTS[0]] for c in cities}
    return [
        by_city[cities[i % len(cities)]][(i // len(cities)) % len(by_city[cities[i % len(cities)]])]
        for i in range(n)
    ]


def setup_fleet(
    app, *, shops: int = 3, couriers: int = 3, codes_per_shop: int = 100, seed: int | None = None
) -> Fleet:
    """Register ``shops`` new shops (merchants, in Changzhou and Zhaoqing, each with a shelf
    and a POS scanner, a product, a batch and ``codes_per_shop`` trace codes) and ``couriers``
    new couriers (of the first logistics company, registered when there is none) with a
    handheld each, through the use cases; returns the fleet (tests, benchmarks)."""
    ext = app.extensions["trace"]
    rng = random.Random(seed)
    with ext.sessionmaker() as session:
        merchant_ids, courier_ids = _create(session, ext.config, rng, shops, couriers)
        for merchant_id in merchant_ids:
            _issue_for(session, ext.config, merchant_id, codes_per_shop)
        session.commit()
        return load_fleet(
            session, ext.config.SECRET_KEY, merchant_ids=merchant_ids, courier_ids=courier_ids
        )


def _create(session, config, rng, shops: int, couriers: int) -> tuple[list[int], list[int]]:
    merchant_ids = []
    districts = _shop_districts(shops)
    for n, district in enumerate(districts, 1):
        merchant = _new_shop(session, config.SECRET_KEY, rng, district, n)
        _register_devices(session, config.SECRET_KEY, "shelf_scanner", merchant.id)
        _register_devices(session, config.SECRET_KEY, "pos_scanner", merchant.id)
        _new_product(session, rng, merchant.id, district.city, f"{district.city}{district.name}")
        merchant_ids.append(merchant.id)
    company_id = _company(session, rng) if couriers else None
    courier_ids = []
    for district in _courier_districts(couriers, [d.city for d in districts]):
        courier = _new_courier(session, config.SECRET_KEY, rng, district, company_id)
        _register_devices(session, config.SECRET_KEY, "courier_handheld", courier.id)
        courier_ids.append(courier.id)
    return merchant_ids, courier_ids


def _issue_for(session, config, merchant_id: int, count: int) -> None:
    batch_id = session.scalar(
        sa.select(Batch.id)
        .join(Product, Batch.product_id == Product.id)
        .where(Product.merchant_id == merchant_id)
        .order_by(Batch.id.desc())
        .limit(1)
    )
    if count > 0:
        issue_codes(session, OPERATOR, batch_id, count, max_count=config.MAX_CODES_PER_REQUEST)


def prepare_fleet(
    session, config, *, shops: int | None = None, couriers: int | None = None, seed=None
) -> tuple[list[int], list[int]]:
    """Make the database hold a fleet to simulate; returns (merchant ids, courier ids).

    Existing merchants and couriers are used first, in id order (the demo's): a merchant
    without scanners gets a shelf and a POS scanner, one without products a product and a
    batch, a courier without a handheld a handheld. Then new ones are registered until
    there are ``shops`` and ``couriers`` (default: all existing ones, at least 3 and 3)."""

    rng = random.Random(seed)
    key = config.SECRET_KEY
    merchants = list(session.scalars(sa.select(Merchant).order_by(Merchant.id)))
    wanted_shops = shops if shops is not None else max(3, len(merchants))
    kinds = {
        (d.owner_type, d.owner_id, d.kind.value)
        for d in session.scalars(sa.select(Device).where(Device.disabled_at.is_(None)))
    }
    merchant_ids = []
    for merchant in merchants[:wanted_shops]:
        for kind in ("shelf_scanner", "pos_scanner"):
            if ("merchant", merchant.id, kind) not in kinds:
                _register_devices(session, key, kind, merchant.id)
        if session.scalar(sa.select(Product.id).where(Product.merchant_id == merchant.id)) is None:
            place = nearest_district(*(lat_lon(merchant.location) or (0.0, 0.0)))
            district = place or DISTRICT_BY_CODE.get(merchant.region_code) or DISTRICTS[0]
            _new_product(session, rng, merchant.id, district.city, district.city + district.name)
        merchant_ids.append(merchant.id)
    courier_rows = list(session.scalars(sa.select(Courier).order_by(Courier.id)))
    wanted_couriers = couriers if couriers is not None else max(3, len(courier_rows))
    courier_ids = []
    for courier in courier_rows[:wanted_couriers]:
        if ("courier", courier.id, "courier_handheld") not in kinds:
            _register_devices(session, key, "courier_handheld", courier.id)
        courier_ids.append(courier.id)
    missing_shops = max(0, wanted_shops - len(merchant_ids))
    missing_couriers = max(0, wanted_couriers - len(courier_ids))
    if missing_shops or missing_couriers:
        new_m, new_c = _create(session, config, rng, missing_shops, missing_couriers)
        merchant_ids += new_m
        courier_ids += new_c
    session.flush()
    return merchant_ids, courier_ids


def unused_codes(session, product_id: int, limit: int | None = None) -> list[str]:
    """Serials of a product that no event has named yet, oldest batch first."""
    query = (
        sa.select(TraceCode.serial)
        .join(Batch, TraceCode.batch_id == Batch.id)
        .where(
            Batch.product_id == product_id,
            Batch.status != BatchStatus.RECALLED,
            TraceCode.state == CodeState.ISSUED,
            ~sa.exists().where(Event.serial == TraceCode.serial),
            ~sa.exists().where(ParcelItem.serial == TraceCode.serial),
        )
        .order_by(Batch.id, TraceCode.serial)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


class CodeSupply:
    """An endless stock of a product for a long run: its unused codes, then new codes issued
    a chunk at a time (within the batch's quantity; a new lot when the batch is full)."""

    def __init__(self, sessionmaker, config, product_id: int, *, chunk: int = 200) -> None:
        self.sessionmaker, self.config = sessionmaker, config
        self.product_id, self.chunk = product_id, chunk

    def __iter__(self) -> Iterator[str]:
        with self.sessionmaker() as session:
            existing = unused_codes(session, self.product_id)
        yield from existing
        while True:
            with self.sessionmaker() as session:
                serials = self._issue(session)
                session.commit()
            yield from serials

    def _issue(self, session) -> list[str]:
        batch = session.scalar(
            sa.select(Batch)
            .where(Batch.product_id == self.product_id, Batch.status != BatchStatus.RECALLED)
            .order_by(Batch.id.desc())
            .limit(1)
        )
        if batch is None or batch.issued_count >= batch.quantity:
            today = datetime.now(CST).date()
            lat, lon = (lat_lon(batch.origin) if batch is not None else None) or (
                DISTRICTS[0].lat,
                DISTRICTS[0].lon,
            )
            shelf_life = (batch.expires_on - batch.produced_on) if batch else timedelta(days=365)
            batch = catalog.register_batch(
                session,
                OPERATOR,
                product_id=self.product_id,
                lot=f"SIM{datetime.now(CST):%y%m%d%H%M%S}",
                produced_on=today,
                expires_on=today + shelf_life,
                origin_name=batch.origin_name if batch else "江苏省常州市",
                origin_lat=lat,
                origin_lon=lon,
                quantity=batch.quantity if batch else 1000,
            )
        count = min(self.chunk, batch.quantity - batch.issued_count)
        return issue_codes(
            session, OPERATOR, batch.id, count, max_count=self.config.MAX_CODES_PER_REQUEST
        ).serials


def load_fleet(
    session,
    master_key: str,
    *,
    merchant_ids: Iterable[int] | None = None,
    courier_ids: Iterable[int] | None = None,
    supply: Callable[[int], Iterable[str]] | None = None,
) -> Fleet:
    """The fleet registered in the database: merchants with an enabled shelf and POS scanner
    and a product, couriers with an enabled handheld (all, or those named). Secrets are
    derived from ``master_key`` (SECRET_KEY); sequence numbers go on from each device's
    ``max_seq``. Stock: each product's unused codes, or ``supply(product_id)``."""

    devices: dict[tuple[str, int, str], Device] = {}
    for device in session.scalars(
        sa.select(Device).where(Device.disabled_at.is_(None)).order_by(Device.created_at, Device.id)
    ):
        devices.setdefault((device.owner_type, device.owner_id, device.kind.value), device)

    def sim(device: Device) -> SimDevice:
        secret = protocol.derive_secret(master_key, device.id, device.secret_version)
        return SimDevice(device.id, secret, device.max_seq + 1)

    merchants = sa.select(Merchant).order_by(Merchant.id)
    if merchant_ids is not None:
        merchants = merchants.where(Merchant.id.in_(list(merchant_ids)))
    shops = []
    for merchant in session.scalars(merchants):
        shelf = devices.get(("merchant", merchant.id, "shelf_scanner"))
        pos = devices.get(("merchant", merchant.id, "pos_scanner"))
        place = lat_lon(merchant.location)
        if place is None and merchant.region_code in DISTRICT_BY_CODE:
            district = DISTRICT_BY_CODE[merchant.region_code]
            place = (district.lat, district.lon)
        if shelf is None or pos is None or place is None:
            continue
        products = session.scalars(
            sa.select(Product).where(Product.merchant_id == merchant.id).order_by(Product.id)
        )
        stock = tuple(
            Stock(
                p.name,
                price_of(p.gtin),
                supply(p.id) if supply else tuple(unused_codes(session, p.id)),
            )
            for p in products
        )
        if stock:
            shops.append(
                Shop(
                    merchant.id,
                    merchant.name,
                    place[0],
                    place[1],
                    merchant.region_code,
                    sim(shelf),
                    sim(pos),
                    stock,
                )
            )
    couriers_query = sa.select(Courier).order_by(Courier.id)
    if courier_ids is not None:
        couriers_query = couriers_query.where(Courier.id.in_(list(courier_ids)))
    couriers = []
    for courier in session.scalars(couriers_query):
        handheld = devices.get(("courier", courier.id, "courier_handheld"))
        place = lat_lon(courier.location)
        if place is None and courier.region_code in DISTRICT_BY_CODE:
            district = DISTRICT_BY_CODE[courier.region_code]
            place = (district.lat, district.lon)
        if place is None:
            place = lat_lon(session.get(LogisticsCompany, courier.company_id).location)
        if handheld is None or place is None:
            continue
        couriers.append(
            SimCourier(
                courier.id,
                courier.company_id,
                courier.name,
                place[0],
                place[1],
                courier.region_code,
                sim(handheld),
            )
        )
    return Fleet(tuple(shops), tuple(couriers))


def last_event_time(session, fleet: Fleet) -> datetime | None:
    """When the fleet's devices last reported something (a new run starts after it, so a
    courier's track never doubles back in time)."""

    ids = list(fleet.devices())
    if not ids:
        return None
    return session.scalar(sa.select(sa.func.max(Event.occurred_at)).where(Event.device_id.in_(ids)))
