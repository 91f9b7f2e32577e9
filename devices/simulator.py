"""A device simulator: shop scanners and couriers' handhelds sending realistic traffic through
the real protocol (devices/PROTOCOL.md), over MQTT or HTTP.

Three parts, each usable alone (tests and benchmarks use them directly):

* :func:`generate`, pure (no I/O, no clock): for a :class:`Fleet` of shops (a shelf and a POS
  scanner each, and the trace codes they may sell) and couriers (a handheld each), a stream of
  signed events in the order devices send them. Units are shelved and sold; online orders are
  packed into parcels (``SF`` + 10 digits) for a consignee near a real residential district;
  couriers drive rounds (pick up at the shops, transit scans along the road, the delivery
  station of each district, out for delivery, signature within 100 m of the consignee) at road
  speeds, one physically possible track per courier. Each device numbers its events 1, 2, 3...
  and signs them. Some handhelds lose their network for a while, buffer, and send a burst:
  late, and out of order with the rest of the traffic. Same fleet, start and seed: same stream.
* :class:`MqttPublisher` and :class:`HttpPublisher`: send the stream at a given rate, one MQTT
  connection per device (its id and secret as credentials, QoS 1), read the acks, keep an
  outbox of unacked events per device, resend what the service asks for (``resend``
  commands) and what stays unacked too long, and count accepted / duplicate / rejected.
* :func:`setup_fleet` (new parties, for tests and benchmarks), :func:`prepare_fleet` and
  :func:`load_fleet` (the devices already in the database, e.g. the demo's; secrets derived
  from SECRET_KEY), and the ``simulate`` CLI command, :data:`simulate_command`.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import queue
import random
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from devices import protocol

#: China Standard Time: what the devices' clocks show.
CST = timezone(timedelta(hours=8), "CST")

# -- geography -----------------------------------------------------------------------------


@dataclass(frozen=True)
class District:
    """A county-level district (GB/T 2260 code) and the point of its centre."""

    code: str
    name: str
    city: str
    lat: float
    lon: float


DISTRICTS = (
    District("320402", "天宁区", "常州市", 31.78, 119.98),
    District("320404", "钟楼区", "常州市", 31.80, 119.93),
    District("320411", "新北区", "常州市", 31.83, 119.97),
    District("320412", "武进区", "常州市", 31.70, 119.94),
    District("320413", "金坛区", "常州市", 31.72, 119.57),
    District("320481", "溧阳市", "常州市", 31.42, 119.48),
    District("441202", "端州区", "肇庆市", 23.05, 112.47),
    District("441203", "鼎湖区", "肇庆市", 23.16, 112.56),
    District("441204", "高要区", "肇庆市", 23.03, 112.46),
    District("441284", "四会市", "肇庆市", 23.33, 112.73),
)
DISTRICT_BY_CODE = {d.code: d for d in DISTRICTS}
EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m`` north and ``east_m`` east of (lat, lon)."""
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def nearest_district(lat: float, lon: float, within_km: float = 80.0) -> District | None:
    best = min(DISTRICTS, key=lambda d: distance_km(lat, lon, d.lat, d.lon))
    return best if distance_km(lat, lon, best.lat, best.lon) <= within_km else None


# -- the fleet -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimDevice:
    """A registered device as the simulator drives it."""

    id: str
    secret: str
    #: The next sequence number (1 for a new device; max_seq + 1 for one that has sent).
    first_seq: int = 1


@dataclass(frozen=True)
class Stock:
    """A product a shop sells: its units' serials, taken in order as the shop restocks.

    ``serials`` is read lazily: a tuple in tests, an iterable that issues codes as they run
    out (:class:`CodeSupply`) in a long run."""

    name: str
    price: float
    serials: Iterable[str]


@dataclass(frozen=True)
class Shop:
    merchant_id: int
    name: str
    lat: float
    lon: float
    region_code: str
    shelf: SimDevice
    pos: SimDevice
    stock: tuple[Stock, ...]


@dataclass(frozen=True)
class SimCourier:
    courier_id: int
    company_id: int
    name: str
    #: Where the courier starts the first round.
    lat: float
    lon: float
    region_code: str
    handheld: SimDevice


@dataclass(frozen=True)
class Fleet:
    shops: tuple[Shop, ...]
    couriers: tuple[SimCourier, ...]

    def devices(self) -> dict[str, SimDevice]:
        out = {}
        for shop in self.shops:
            out[shop.shelf.id] = shop.shelf
            out[shop.pos.id] = shop.pos
        for courier in self.couriers:
            out[courier.handheld.id] = courier.handheld
        return out

    def describe(self) -> str:
        cities = Counter(
            (nearest_district(s.lat, s.lon) or District("", "", "?", 0, 0)).city for s in self.shops
        )
        where = ", ".join(f"{n} in {city}" for city, n in sorted(cities.items()))
        return (
            f"{len(self.shops)} shops ({where}; {2 * len(self.shops)} scanners), "
            f"{len(self.couriers)} couriers with handhelds"
        )


# -- the pure traffic generator ------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """How busy the simulated world is. Times are simulated, not wall-clock."""

    #: Orders per shop and hour at the busiest hours (fewer at night, see HOURLY_ORDERS).
    orders_per_hour: float = 4.0
    #: Share of orders placed online (packed and delivered); the rest are sold in the shop.
    online_share: float = 0.8
    #: Units per order, drawn uniformly from this tuple.
    units_per_order: tuple[int, ...] = (1, 1, 1, 1, 2, 2, 3)
    #: Units shelved per restock (min, max).
    restock: tuple[int, int] = (6, 18)
    #: Share of handhelds that lose their network now and then (0: none; > 0: at least one).
    offline_share: float = 0.0
    #: Mean minutes online between two losses of network, for those handhelds.
    online_minutes: float = 90.0
    #: Minutes offline (min, max): events are buffered, then sent in one burst.
    offline_minutes: tuple[float, float] = (15.0, 60.0)
    #: Share of deliveries where nobody answers: delivery_failed, then a parcel locker.
    failed_delivery_share: float = 0.04
    #: Most parcels a courier takes on one round.
    round_capacity: int = 30

    def events_per_hour(self, shops: int) -> float:
        """Rough number of events per simulated hour, averaged over a day."""
        per_order = 1.6 * 1.5 + self.online_share * 5.5  # shelved + sold, parcel events
        return shops * self.orders_per_hour * (sum(HOURLY_ORDERS) / 24) * per_order


#: Relative order intensity by local hour.
HOURLY_ORDERS = (
    *([0.05] * 7),
    0.3,
    0.6,
    0.9,
    *([1.0] * 11),
    0.8,
    0.5,
    0.2,
)
ONLINE_CHANNELS = (
    ("tmall", "TM"),
    ("jd", "JD"),
    ("douyin", "DY"),
    ("pinduoduo", "PDD"),
    ("wechat", "WX"),
)
WORK_HOURS = (8, 19)  #: couriers start rounds from 08:00 to 19:00 local time


@dataclass(frozen=True)
class Outgoing:
    """One signed event and when its device sends it (later than ``time`` when offline)."""

    publish_at: datetime
    device_id: str
    event: dict
    #: The offline period it was buffered in, if any (its events go out as one burst).
    burst: int | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.event["time"])


@dataclass
class _Parcel:
    waybill: str
    shop: int
    codes: list[str]
    lat: float
    lon: float
    district: District
    ready_at: datetime


@dataclass
class _DeviceState:
    device: SimDevice
    seq: int
    last_time: datetime | None = None
    last_publish: datetime | None = None
    #: Offline handhelds: the current or next offline period [start, end) and its burst id.
    window: tuple[datetime, datetime, int] | None = None


def generate(
    fleet: Fleet, *, start: datetime, seed: int = 0, traffic: Traffic | None = None
) -> Iterator[Outgoing]:
    """The traffic of ``fleet`` from ``start`` (simulated time), in the order it is sent.

    Ends when every shop has sold all its stock and every parcel is delivered (never, when a
    stock is endless). Deterministic: the same fleet, start and seed give the same stream.
    """
    return _World(fleet, start, seed, traffic or Traffic()).stream()


class _World:
    """A discrete-event simulation: shops and couriers act in time order; their events are
    numbered per device in time order, then sent in publish order."""

    def __init__(self, fleet: Fleet, start: datetime, seed: int, traffic: Traffic) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.fleet, self.traffic = fleet, traffic
        self.start = start.astimezone(UTC).replace(microsecond=0)
        # The start is part of the seed: two runs from different times never share event
        # ids or waybills, one run is reproducible.
        self.rng = random.Random(f"{seed}:{self.start.isoformat()}")
        self.counter = itertools.count()
        self.actions: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.raw: list[tuple[datetime, int, str, dict]] = []
        self.out: list[tuple[datetime, int, Outgoing]] = []
        self.devices = {d.id: _DeviceState(d, d.first_seq) for d in fleet.devices().values()}
        self.waybills: set[str] = set()
        self.bursts = itertools.count(1)

        self.shops = [_ShopState(self, i, shop) for i, shop in enumerate(fleet.shops)]
        self.couriers = [_CourierState(self, i, c) for i, c in enumerate(fleet.couriers)]
        handhelds = [c.handheld.id for c in fleet.couriers]
        if traffic.offline_share > 0 and handhelds:
            k = max(1, round(traffic.offline_share * len(handhelds)))
            for device_id in self.rng.sample(handhelds, min(k, len(handhelds))):
                self.devices[device_id].window = self._next_window(self.start)

    # the event loop
    def stream(self) -> Iterator[Outgoing]:
        for shop in self.shops:
            shop.schedule_next(self.start)
        for courier in self.couriers:
            self.at(self.start + self.seconds(0, 1200), courier.round)
        while self.actions:
            moment, _, act = heapq.heappop(self.actions)
            act(moment)
            yield from self._release(self.actions[0][0] if self.actions else None)
        yield from self._release(None)

    def at(self, moment: datetime, act: Callable[[datetime], None]) -> None:
        heapq.heappush(self.actions, (moment, next(self.counter), act))

    def seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=round(self.rng.uniform(low, high)))

    def emit(self, device: SimDevice, moment: datetime, body: dict) -> None:
        heapq.heappush(self.raw, (moment, next(self.counter), device.id, body))

    def shops_active(self) -> bool:
        return any(shop.active() for shop in self.shops)

    # numbering, signing, buffering
    def _release(self, frontier: datetime | None) -> Iterator[Outgoing]:
        """Every action still to come happens at or after ``frontier``, and so do the events
        it makes: what is before it can be numbered, and sent."""
        while self.raw and (frontier is None or self.raw[0][0] < frontier):
            moment, _, device_id, body = heapq.heappop(self.raw)
            state = self.devices[device_id]
            if state.last_time is not None and moment <= state.last_time:
                moment = state.last_time + timedelta(seconds=1)
            state.last_time = moment
            event = {
                "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "seq": state.seq,
                "type": body.pop("type"),
                **{k: body.pop(k) for k in ("code", "codes", "waybill") if k in body},
                "time": moment.astimezone(CST).isoformat(),
                **body,
            }
            state.seq += 1
            event["sig"] = protocol.sign(event, state.device.secret)
            publish_at, burst = self._publish_time(state, moment)
            heapq.heappush(
                self.out,
                (publish_at, next(self.counter), Outgoing(publish_at, device_id, event, burst)),
            )
        while self.out and (frontier is None or self.out[0][0] < frontier):
            yield heapq.heappop(self.out)[2]

    def _next_window(self, after: datetime) -> tuple[datetime, datetime, int]:
        online = self.rng.expovariate(1 / (self.traffic.online_minutes * 60))
        begin = after + timedelta(seconds=round(online))
        low, high = self.traffic.offline_minutes
        return begin, begin + self.seconds(low * 60, high * 60), next(self.bursts)

    def _publish_time(self, state: _DeviceState, moment: datetime) -> tuple[datetime, int | None]:
        publish_at, burst = moment, None
        if state.window is not None:
            while moment >= state.window[1]:
                state.window = self._next_window(state.window[1])
            begin, end, number = state.window
            if moment >= begin:
                publish_at, burst = end, number
        if state.last_publish is not None and publish_at < state.last_publish:
            publish_at = state.last_publish
        state.last_publish = publish_at
        return publish_at, burst

    def new_waybill(self) -> str:
        while True:
            waybill = f"SF{self.rng.randrange(10**10):010d}"
            if waybill not in self.waybills:
                self.waybills.add(waybill)
                return waybill

    def jitter(self, lat: float, lon: float, low_m: float, high_m: float) -> tuple[float, float]:
        """A point between ``low_m`` and ``high_m`` metres from (lat, lon), any direction."""
        distance = self.rng.uniform(low_m, high_m)
        bearing = self.rng.uniform(0, 2 * math.pi)
        return offset(lat, lon, distance * math.cos(bearing), distance * math.sin(bearing))

    def geo(self, lat: float, lon: float) -> dict:
        return {
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "accuracy_m": self.rng.choice((5, 8, 10, 12, 15, 20)),
        }


class _ShopState:
    def __init__(self, world: _World, index: int, shop: Shop) -> None:
        self.world, self.index, self.shop = world, index, shop
        self.supplies: list[Iterator[str] | None] = [iter(s.serials) for s in shop.stock]
        #: Per product: (serial, when its shelving scan happens), in shelving order.
        self.shelves: list[deque[tuple[str, datetime]]] = [deque() for _ in shop.stock]
        home = nearest_district(shop.lat, shop.lon)
        if home is None:
            here = District(shop.region_code, "", f"@{shop.lat:.1f},{shop.lon:.1f}", 0, 0)
            self.city = here.city
            self.districts = [
                District(shop.region_code, "", here.city, *offset(shop.lat, shop.lon, n, e))
                for n, e in ((0, 0), (3000, 2000), (-2500, 1500), (1000, -3000))
            ]
            self.weights = [1.0] * len(self.districts)
        else:
            self.city = home.city
            self.districts = [d for d in DISTRICTS if d.city == home.city]
            self.weights = [3.0 if d is home else 1.0 for d in self.districts]

    def active(self) -> bool:
        return any(self.shelves) or any(s is not None for s in self.supplies)

    def schedule_next(self, now: datetime) -> None:
        if not self.active():
            return
        rate = self.world.traffic.orders_per_hour / 3600
        if rate <= 0:
            return
        gap = max(1, round(self.world.rng.expovariate(rate)))
        self.world.at(now + timedelta(seconds=gap), self.order)

    def order(self, now: datetime) -> None:
        if self.world.rng.random() < HOURLY_ORDERS[now.astimezone(CST).hour]:
            self.sell(now)
        self.schedule_next(now)

    def _restock(self, i: int, wanted: int, now: datetime) -> datetime:
        """Shelve a delivery of units when the shelf runs short; returns when it is done."""
        world, shelf = self.world, self.shelves[i]
        supply = self.supplies[i]
        if len(shelf) >= wanted or supply is None:
            return now
        count = max(wanted, world.rng.randint(*world.traffic.restock))
        moment = now
        for _ in range(count):
            serial = next(supply, None)
            if serial is None:
                self.supplies[i] = None
                break
            shelf.append((serial, moment))
            world.emit(
                self.shop.shelf,
                moment,
                {"type": "shelved", "code": serial, **world.geo(*self._spot())},
            )
            moment += world.seconds(5, 20)
        return moment + world.seconds(60, 600)

    def _spot(self) -> tuple[float, float]:
        return self.world.jitter(self.shop.lat, self.shop.lon, 0, 8)

    def sell(self, now: datetime) -> None:
        world, rng, traffic = self.world, self.world.rng, self.world.traffic
        choices = [i for i in range(len(self.shelves)) if self.shelves[i] or self.supplies[i]]
        if not choices:
            return
        i = rng.choice(choices)
        wanted = rng.choice(traffic.units_per_order)
        moment = self._restock(i, wanted, now)
        taken = [self.shelves[i].popleft() for _ in range(min(wanted, len(self.shelves[i])))]
        if not taken:
            return
        units = [serial for serial, _ in taken]
        # A unit of a restock still under way is sold only once it is on the shelf.
        shelved_last = max(at for _, at in taken)
        if shelved_last >= moment:
            moment = shelved_last + world.seconds(60, 600)
        # Online orders are delivered by a courier: without couriers, every sale is in-store.
        online = bool(world.couriers) and rng.random() < traffic.online_share
        channel, prefix = rng.choice(ONLINE_CHANNELS) if online else ("store", "MD")
        local = moment.astimezone(CST)
        order_id = f"{prefix}{local:%Y%m%d}{rng.randrange(10**10):010d}"
        price = self.shop.stock[i].price
        for serial in units:
            paid = round(price * rng.choice((1.0, 1.0, 1.0, 0.95, 0.9, 0.85)), 2)
            world.emit(
                self.shop.pos,
                moment,
                {
                    "type": "sold",
                    "code": serial,
                    **world.geo(*self._spot()),
                    "data": {"order_id": order_id, "price": paid, "channel": channel},
                },
            )
            moment += world.seconds(3, 10)
        if online:
            self.pack(units, moment + world.seconds(600, 5400))

    def pack(self, units: list[str], moment: datetime) -> None:
        world, rng = self.world, self.world.rng
        # Parcels go to a courier of the shop's city; a shop in a city with no courier is
        # served from the nearest city that has one.
        district = rng.choices(self.districts, self.weights)[0]
        lat, lon = world.jitter(district.lat, district.lon, 300, 2500)
        courier = world_courier_for(world, self)
        parcel = _Parcel(world.new_waybill(), self.index, units, lat, lon, district, moment)
        world.emit(
            self.shop.shelf,
            moment,
            {
                "type": "packed",
                "codes": list(units),
                "waybill": parcel.waybill,
                **world.geo(*self._spot()),
                "data": {
                    "consignee": {"lat": round(lat, 6), "lon": round(lon, 6)},
                    "consignee_region_code": district.code,
                    "logistics_company_id": courier.courier.company_id,
                    "promised_by": (moment + timedelta(hours=48)).astimezone(CST).isoformat(),
                },
            },
        )
        courier.pending.append(parcel)


def world_courier_for(world: _World, shop: _ShopState) -> _CourierState:
    """The courier who will carry a shop's parcel: one of its city, the nearest unless
    much busier than the others."""
    local = [c for c in world.couriers if c.city == shop.city]
    if not local:
        nearest = min(
            world.couriers,
            key=lambda c: distance_km(c.lat, c.lon, shop.shop.lat, shop.shop.lon),
        )
        local = [c for c in world.couriers if c.city == nearest.city]
    return min(
        local,
        key=lambda c: (
            len(c.pending) // 10,
            distance_km(c.lat, c.lon, shop.shop.lat, shop.shop.lon),
            c.index,
        ),
    )


class _CourierState:
    """A courier's rounds: one track in space and time, scanned by one handheld."""

    def __init__(self, world: _World, index: int, courier: SimCourier) -> None:
        self.world, self.index, self.courier = world, index, courier
        self.lat, self.lon = courier.lat, courier.lon
        home = nearest_district(courier.lat, courier.lon)
        self.city = home.city if home else f"@{courier.lat:.1f},{courier.lon:.1f}"
        self.pending: list[_Parcel] = []

    def scan(self, moment: datetime, type_: str, parcel: _Parcel, spot, data=None) -> None:
        body = {"type": type_, "waybill": parcel.waybill, **self.world.geo(*spot)}
        if data:
            body["data"] = data
        self.world.emit(self.courier.handheld, moment, body)

    def round(self, now: datetime) -> None:
        world, traffic = self.world, self.world.traffic
        local = now.astimezone(CST)
        if not WORK_HOURS[0] <= local.hour < WORK_HOURS[1]:
            if self.pending or world.shops_active():
                morning = local.replace(hour=WORK_HOURS[0], minute=0, second=0)
                if local.hour >= WORK_HOURS[0]:
                    morning += timedelta(days=1)
                world.at(morning.astimezone(UTC) + world.seconds(0, 1800), self.round)
            return
        ready = [p for p in self.pending if p.ready_at <= now][: traffic.round_capacity]
        if not ready:
            if self.pending or world.shops_active():
                world.at(now + world.seconds(600, 1800), self.round)
            return
        taken = {p.waybill for p in ready}
        self.pending = [p for p in self.pending if p.waybill not in taken]
        clock = self.pickups(now, ready)
        clock = self.deliveries(clock, ready)
        if self.pending or world.shops_active():
            world.at(clock + world.seconds(300, 1200), self.round)

    def drive(self, clock: datetime, lat: float, lon: float, aboard: list[_Parcel]) -> datetime:
        """Drive to (lat, lon) at a road speed; on long legs, transit scans of the parcels
        aboard at points along the way. Returns the arrival time."""
        world, rng = self.world, self.world.rng
        straight = distance_km(self.lat, self.lon, lat, lon)
        road = straight * 1.3
        speed = (
            rng.uniform(18, 30)
            if road < 3
            else rng.uniform(30, 50)
            if road < 15
            else (rng.uniform(50, 80))
        )
        seconds = max(60, round(road / speed * 3600))
        stops = int(seconds // 1500) if aboard else 0
        for k in range(1, stops + 1):
            share = k / (stops + 1)
            wlat, wlon = self.lat + (lat - self.lat) * share, self.lon + (lon - self.lon) * share
            wlat, wlon = world.jitter(wlat, wlon, 0, 250)
            moment = clock + timedelta(seconds=round(seconds * share))
            for parcel in aboard:
                self.scan(moment, "in_transit", parcel, (wlat, wlon))
                moment += world.seconds(5, 12)
        self.lat, self.lon = lat, lon
        return clock + timedelta(seconds=seconds)

    def here(self, radius_m: float = 10) -> tuple[float, float]:
        return self.world.jitter(self.lat, self.lon, 0, radius_m)

    def pickups(self, clock: datetime, parcels: list[_Parcel]) -> datetime:
        world = self.world
        by_shop: dict[int, list[_Parcel]] = {}
        for parcel in parcels:
            by_shop.setdefault(parcel.shop, []).append(parcel)
        aboard: list[_Parcel] = []
        while by_shop:
            index = min(
                by_shop,
                key=lambda s: distance_km(
                    self.lat, self.lon, world.fleet.shops[s].lat, world.fleet.shops[s].lon
                ),
            )
            shop = world.fleet.shops[index]
            clock = self.drive(clock, shop.lat, shop.lon, aboard)
            clock += world.seconds(60, 240)
            for parcel in by_shop.pop(index):
                self.scan(clock, "picked_up", parcel, self.here())
                aboard.append(parcel)
                clock += world.seconds(8, 25)
        return clock

    def deliveries(self, clock: datetime, parcels: list[_Parcel]) -> datetime:
        """District by district: to the district's delivery station (transit scan, then out
        for delivery), then door to door, nearest first."""
        world, rng = self.world, self.world.rng
        by_district: dict[str, list[_Parcel]] = {}
        for parcel in parcels:
            by_district.setdefault(parcel.district.code, []).append(parcel)
        aboard = list(parcels)
        while by_district:
            code = min(
                by_district,
                key=lambda c: distance_km(
                    self.lat, self.lon, *_station(by_district[c][0].district)
                ),
            )
            group = by_district.pop(code)
            clock = self.drive(clock, *_station(group[0].district), aboard)
            clock += world.seconds(120, 300)
            for parcel in group:
                self.scan(clock, "in_transit", parcel, self.here())
                clock += world.seconds(5, 12)
            clock += world.seconds(60, 240)
            for parcel in group:
                self.scan(clock, "out_for_delivery", parcel, self.here())
                clock += world.seconds(5, 12)
            while group:
                parcel = min(group, key=lambda p: distance_km(self.lat, self.lon, p.lat, p.lon))
                group.remove(parcel)
                aboard.remove(parcel)
                clock = self.drive(clock, parcel.lat, parcel.lon, [])
                clock += world.seconds(60, 300)  # park, walk up, wait at the door
                door = world.jitter(parcel.lat, parcel.lon, 3, 60)
                if rng.random() < world.traffic.failed_delivery_share:
                    self.scan(clock, "delivery_failed", parcel, door)
                    clock += world.seconds(180, 480)
                    locker = world.jitter(parcel.lat, parcel.lon, 20, 80)
                    self.scan(clock, "signed", parcel, locker, {"signer": "locker"})
                    self.lat, self.lon = locker
                else:
                    signer = rng.choices(("self", "proxy", "locker"), (0.7, 0.2, 0.1))[0]
                    self.scan(clock, "signed", parcel, door, {"signer": signer})
                    self.lat, self.lon = door
                clock += world.seconds(30, 120)
        return clock


def _station(district: District) -> tuple[float, float]:
    """The delivery station (网点) of a district: a fixed point near its centre."""
    return offset(district.lat, district.lon, 700, 500)


# -- publishing ----------------------------------------------------------------------------


@dataclass
class Stats:
    """What the service answered. Each ack counts once (a resent event that was accepted
    before is answered ``duplicate``)."""

    events: int = 0  #: events taken from the stream and sent
    messages: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    resent: int = 0  #: events sent again (asked for, or unacked too long)
    resend_commands: int = 0
    lost: int = 0  #: messages dropped on purpose (``loss``), as a radio drops them
    errors: int = 0  #: sends that failed (HTTP errors, no connection)
    #: Events the service failed on (rejected, internal_error): kept and resent later.
    internal_errors: int = 0
    #: MQTT messages the broker dropped for want of a listening worker (PUBACK reason 16).
    unheard: int = 0
    unacked: int = 0  #: still without an ack at the end
    reasons: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = (
            f"{self.events} events in {self.messages} messages: {self.accepted} accepted, "
            f"{self.duplicate} duplicate, {self.rejected} rejected, {self.resent} resent "
            f"({self.resend_commands} resend commands), {self.unacked} unacked"
        )
        if self.lost:
            text += f", {self.lost} messages lost on purpose"
        if self.errors:
            text += f", {self.errors} send errors"
        if self.internal_errors:
            text += f", {self.internal_errors} internal errors (resent)"
        if self.unheard:
            text += f", {self.unheard} messages no worker heard (resent)"
        if self.reasons:
            text += " — rejected: " + ", ".join(f"{r} {n}" for r, n in self.reasons.most_common())
        return text


@dataclass
class _Pending:
    event: dict
    sent_at: float
    attempts: int = 1


class Publisher:
    """Sends a stream of :class:`Outgoing` for a fleet, paced, with the device side of the
    protocol: an outbox of unacked events per device, resends on command and on timeout."""

    #: Most events in one message (the protocol allows 500).
    max_batch = 100

    def __init__(
        self,
        fleet: Fleet,
        *,
        ack_timeout: float = 15.0,
        loss: float = 0.0,
        lossy: Iterable[str] | None = None,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.fleet = fleet
        self.devices = fleet.devices()
        self.ack_timeout, self.loss = ack_timeout, loss
        #: The devices whose messages ``loss`` may drop (None: all). A lost packing scan
        #: makes the courier's scans of that parcel rejected (unknown_waybill) until it is
        #: resent, and a rejected event is never sent again: see PROTOCOL.md.
        self.lossy = None if lossy is None else frozenset(lossy)
        self.rng = random.Random(seed)
        self.log = log or (lambda _: None)
        self.clock, self.now, self.sleep = clock, now, sleep
        self.stats = Stats()
        self.lock = threading.Lock()
        #: device id -> event id -> pending event; device id -> seq -> event id
        self.outbox: dict[str, dict[str, _Pending]] = {d: {} for d in self.devices}
        self.by_seq: dict[str, dict[int, str]] = {d: {} for d in self.devices}
        self.commands: queue.SimpleQueue[tuple[str, dict]] = queue.SimpleQueue()
        self._last_sweep = 0.0

    # to be provided by a transport
    def open(self) -> None:
        """Connect (MQTT) before the first send."""

    def close(self) -> None:
        """Disconnect after the last ack."""

    def transmit(self, device_id: str, payload: bytes) -> None:
        raise NotImplementedError

    # the device side of the protocol
    def run(
        self,
        stream: Iterable[Outgoing],
        *,
        rate: float | None = None,
        duration: float | None = None,
        max_events: int | None = None,
        drain_timeout: float = 30.0,
        progress: Callable[[Stats], None] | None = None,
        progress_every: float = 10.0,
    ) -> Stats:
        """Send ``stream`` at ``rate`` events/s (None: as fast as possible), never before an
        event's ``publish_at`` by the wall clock; stop after ``duration`` seconds or
        ``max_events`` events or the end of the stream; then wait up to ``drain_timeout``
        seconds for the last acks, resending as needed."""
        self.open()
        try:
            t0 = self.clock()
            deadline = None if duration is None else t0 + duration
            next_report = t0 + progress_every
            items = _Peekable(iter(stream))
            while max_events is None or self.stats.events < max_events:
                room = self.max_batch
                if max_events is not None:
                    room = min(room, max_events - self.stats.events)
                message = self._next_message(items, room)
                if not message:
                    break
                due = None if not rate else t0 + self.stats.events / rate
                if not self._wait(due, max(o.publish_at for o in message), deadline):
                    break
                self.send(message[0].device_id, [o.event for o in message])
                self.stats.events += len(message)
                self.maintain()
                if progress and self.clock() >= next_report:
                    progress(self.stats)
                    next_report = self.clock() + progress_every
            self.drain(drain_timeout)
        finally:
            self.close()
        with self.lock:
            self.stats.unacked = sum(len(box) for box in self.outbox.values())
        return self.stats

    def _next_message(self, items: _Peekable, room: int) -> list[Outgoing]:
        """One device's next events: an offline burst whole, else events due together."""
        first = items.next()
        if first is None:
            return []
        message = [first]
        while len(message) < room:
            following = items.peek()
            if following is None or following.device_id != first.device_id:
                break
            together = (
                following.burst == first.burst
                if first.burst is not None
                else following.burst is None
                and (following.publish_at - first.publish_at).total_seconds() <= 1
            )
            if not together:
                break
            message.append(items.next())
        return message

    def _wait(self, due: float | None, publish_at: datetime, deadline: float | None) -> bool:
        """Wait until the rate allows the next message and the wall clock has reached its
        publish time, doing the protocol's chores meanwhile; False when time is up."""
        while True:
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            waits = []
            if due is not None and now < due:
                waits.append(due - now)
            ahead = (publish_at - self.now()).total_seconds()
            if ahead > 0:
                waits.append(ahead)
            if not waits:
                return True
            self.maintain()
            self.sleep(min(0.2, *waits))

    def send(self, device_id: str, events: list[dict], *, resend: bool = False) -> None:
        """Put ``events`` in the outbox and send them as one message."""
        now = self.clock()
        with self.lock:
            box, seqs = self.outbox[device_id], self.by_seq[device_id]
            for event in events:
                pending = box.get(event["event_id"])
                if pending is None:
                    box[event["event_id"]] = _Pending(event, now)
                    seqs[event["seq"]] = event["event_id"]
                else:
                    pending.sent_at = now
                    pending.attempts += 1
            self.stats.messages += 1
            if resend:
                self.stats.resent += len(events)
        if (
            self.loss
            and not resend
            and (self.lossy is None or device_id in self.lossy)
            and self.rng.random() < self.loss
        ):
            with self.lock:
                self.stats.lost += 1
            return
        payload = events[0] if len(events) == 1 else {"events": events}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            self.transmit(device_id, body)
        except Exception as exc:  # the outbox resends it
            with self.lock:
                self.stats.errors += 1
            if self.stats.errors <= 5:
                self.log(f"send failed for device {device_id}: {exc}")

    def on_acks(self, device_id: str, acks: Iterable[dict]) -> None:
        """Acks from the service (any thread)."""
        with self.lock:
            box, seqs = self.outbox.get(device_id, {}), self.by_seq.get(device_id, {})
            for ack in acks:
                status = ack.get("status")
                if status in ("accepted", "duplicate"):
                    setattr(self.stats, status, getattr(self.stats, status) + 1)
                elif status == "rejected" and ack.get("reason") == "internal_error":
                    self.stats.internal_errors += 1  # a fault of the service: resend later
                    continue
                elif status == "rejected":
                    self.stats.rejected += 1
                    self.stats.reasons[ack.get("reason") or "?"] += 1
                    if self.stats.rejected <= 5:
                        self.log(f"rejected ({device_id}): {ack}")
                    if ack.get("event_id") is None:
                        continue  # the whole message: its events stay in the outbox
                else:
                    continue
                pending = box.pop(str(ack.get("event_id")), None)
                if pending is not None:
                    seqs.pop(pending.event["seq"], None)

    def on_command(self, device_id: str, command: dict) -> None:
        """A command from the service (any thread); carried out by :meth:`maintain`."""
        self.commands.put((device_id, command))

    def maintain(self) -> None:
        """Carry out resend commands; resend events unacked for too long (backing off)."""
        while True:
            try:
                device_id, command = self.commands.get_nowait()
            except queue.Empty:
                break
            if command.get("command") != "resend" or device_id not in self.outbox:
                continue
            low, high = int(command.get("from_seq", 0)), int(command.get("to_seq", 0))
            with self.lock:
                self.stats.resend_commands += 1
                seqs, box = self.by_seq[device_id], self.outbox[device_id]
                wanted = [
                    box[seqs[s]].event
                    for s in range(low, min(high, low + 10_000) + 1)
                    if s in seqs and seqs[s] in box
                ]
            for chunk in _chunks(wanted, self.max_batch):
                self.send(device_id, chunk, resend=True)
        now = self.clock()
        if now - self._last_sweep < 1.0:
            return
        self._last_sweep = now
        overdue: dict[str, list[dict]] = {}
        with self.lock:
            budget = 500
            for device_id, box in self.outbox.items():
                for pending in box.values():
                    wait = self.ack_timeout * 2 ** min(pending.attempts - 1, 5)
                    if now - pending.sent_at >= wait and budget > 0:
                        overdue.setdefault(device_id, []).append(pending.event)
                        budget -= 1
        for device_id, events in overdue.items():
            events.sort(key=lambda e: e["seq"])
            for chunk in _chunks(events, self.max_batch):
                self.send(device_id, chunk, resend=True)

    def due_soon(self, device_id: str, event_ids: Iterable[str], within: float = 2.0) -> None:
        """Resend these events at the next sweep after ``within`` seconds, not after the
        ack timeout (the broker said nobody heard them)."""
        now = self.clock()
        with self.lock:
            box = self.outbox.get(device_id, {})
            for event_id in event_ids:
                pending = box.get(event_id)
                if pending is not None:
                    wait = self.ack_timeout * 2 ** min(pending.attempts - 1, 5)
                    pending.sent_at = min(pending.sent_at, now - wait + within)

    def unacked(self) -> int:
        with self.lock:
            return sum(len(box) for box in self.outbox.values())

    def drain(self, timeout: float) -> None:
        end = self.clock() + timeout
        while self.unacked() and self.clock() < end:
            self.maintain()
            self.sleep(0.05)


class _Peekable:
    def __init__(self, items: Iterator[Outgoing]) -> None:
        self.items, self.head = items, None

    def peek(self) -> Outgoing | None:
        if self.head is None:
            self.head = next(self.items, None)
        return self.head

    def next(self) -> Outgoing | None:
        item = self.peek()
        self.head = None
        return item


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


#: Sends one message for a device and returns the service's answer {"acks", "commands"}.
Poster = Callable[[str, bytes], dict]


class HttpPublisher(Publisher):
    """``POST /api/v1/events`` with ``X-Device-Id``; the answer carries the acks and
    commands MQTT would have published. ``poster`` does the request: :func:`http_poster` for
    a real server, :func:`flask_client_poster` for a Flask test client."""

    def __init__(self, fleet: Fleet, poster: Poster, **kw) -> None:
        kw.setdefault("ack_timeout", 5.0)
        super().__init__(fleet, **kw)
        self.poster = poster

    def transmit(self, device_id: str, payload: bytes) -> None:
        answer = self.poster(device_id, payload)
        self.on_acks(device_id, answer.get("acks", []))
        for command in answer.get("commands", []):
            self.on_command(device_id, command)


def http_poster(base_url: str, timeout: float = 30.0) -> Poster:
    """A poster for the service at ``base_url`` (e.g. http://127.0.0.1:5000)."""
    url = base_url.rstrip("/") + "/api/v1/events"

    def post(device_id: str, payload: bytes) -> dict:
        request = urllib.request.Request(
            url,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json", "X-Device-Id": device_id},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    return post


def flask_client_poster(client) -> Poster:
    """A poster for a Flask test client (``app.test_client()``)."""

    def post(device_id: str, payload: bytes) -> dict:
        response = client.post(
            "/api/v1/events",
            data=payload,
            content_type="application/json",
            headers={"X-Device-Id": device_id},
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.get_data(as_text=True)}")
        return response.get_json()

    return post


class MqttPublisher(Publisher):
    """One MQTT 5 connection per device (client id and user name: the device id; password:
    its secret), events published with QoS 1 on the device's events topic, acks and commands
    read from its own topics."""

    def __init__(self, fleet: Fleet, url: str, *, connect_timeout: float = 15.0, **kw) -> None:
        super().__init__(fleet, **kw)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT_URL must be mqtt://host:port or mqtts://..., got {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.tls = parsed.scheme in ("mqtts", "ssl")
        self.port = parsed.port or (8883 if self.tls else 1883)
        self.connect_timeout = connect_timeout
        self.clients: dict = {}
        self.ready: set[str] = set()
        self.refused: dict[str, str] = {}
        #: (device id, mid) -> event ids of a message awaiting its PUBACK; PUBACK reason
        #: codes that came before publish() returned (the network thread is quick).
        self.in_flight: dict[tuple[str, int], list[str]] = {}
        self.early: dict[tuple[str, int], int] = {}

    def open(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        for device in self.devices.values():
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=device.id,
                protocol=mqtt.MQTTv5,
                userdata=device.id,
            )
            client.username_pw_set(device.id, device.secret)
            if self.tls:
                client.tls_set()
            client.on_connect = self._on_connect
            client.on_subscribe = self._on_subscribe
            client.on_message = self._on_message
            client.on_publish = self._on_publish
            client.connect_async(self.host, self.port, keepalive=60)
            client.loop_start()
            self.clients[device.id] = client
        end = self.clock() + self.connect_timeout
        while len(self.ready) < len(self.clients) and self.clock() < end:
            if self.refused:
                break
            self.sleep(0.05)
        if len(self.ready) < len(self.clients):
            self.close()
            why = "; ".join(f"{d}: {r}" for d, r in list(self.refused.items())[:3])
            raise ConnectionError(
                f"could not connect all {len(self.clients)} devices to the MQTT broker at "
                f"{self.host}:{self.port} ({len(self.ready)} ready)" + (f": {why}" if why else "")
            )

    def _on_connect(self, client, device_id, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused[device_id] = str(reason_code)
            return
        client.subscribe(
            [(protocol.topic_acks(device_id), 1), (protocol.topic_commands(device_id), 1)]
        )

    def _on_subscribe(self, client, device_id, mid, reason_codes, properties) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            self.refused[device_id] = "subscription refused: " + ", ".join(failed)
        else:
            self.ready.add(device_id)

    def _on_message(self, client, device_id, message) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if message.topic == protocol.topic_commands(device_id):
            for command in body if isinstance(body, list) else [body]:
                if isinstance(command, dict):
                    self.on_command(device_id, command)
            return
        if isinstance(body, dict) and isinstance(body.get("acks"), list):
            body = body["acks"]
        acks = body if isinstance(body, list) else [body]
        self.on_acks(device_id, [a for a in acks if isinstance(a, dict)])

    def transmit(self, device_id: str, payload: bytes) -> None:
        body = json.loads(payload)
        event_ids = [e["event_id"] for e in body.get("events", [body])]
        info = self.clients[device_id].publish(protocol.topic_events(device_id), payload, qos=1)
        if info.rc != 0:
            raise ConnectionError(f"publish refused (rc {info.rc})")
        # Never hold self.lock while calling paho: its network thread calls on_publish
        # holding paho's own lock, and on_publish takes self.lock.
        with self.lock:
            reason = self.early.pop((device_id, info.mid), None)
            if reason is None:
                self.in_flight[(device_id, info.mid)] = event_ids
        if reason is not None:
            self._puback(device_id, event_ids, reason)

    def _on_publish(self, client, device_id, mid, reason_code, properties) -> None:
        value = getattr(reason_code, "value", 0)
        with self.lock:
            event_ids = self.in_flight.pop((device_id, mid), None)
            if event_ids is None:
                self.early[(device_id, mid)] = value
                return
        self._puback(device_id, event_ids, value)

    def _puback(self, device_id: str, event_ids: list[str], reason: int) -> None:
        if reason == 16:  # No matching subscribers: no ingest worker heard it
            with self.lock:
                self.stats.unheard += 1
            self.due_soon(device_id, event_ids)

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        self.clients = {}


# -- fleets in the database ----------------------------------------------------------------

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


def _uscc(body17: str) -> str:
    from tracecore.uscc import uscc_check_char

    return body17 + uscc_check_char(body17)


def _resident_id(body17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return body17 + "10X98765432"[total % 11]


def _gtin13(body12: str) -> str:
    from tracecore.gs1 import gtin_check_digit

    return body12 + str(gtin_check_digit(body12))


def _register_devices(session, master_key: str, kind: str, owner_id: int) -> None:
    from app.auth.principal import OPERATOR
    from app.events.models import DeviceKind
    from app.events.registry import OWNER_OF_KIND, register_device

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
    from app.auth.principal import OPERATOR
    from app.catalog import operations as catalog
    from app.catalog.models import Product, ProductCategory

    name, category, _ = rng.choice(PRODUCTS_BY_CITY.get(city, PRODUCTS_BY_CITY["常州市"]))
    while True:
        gtin = _gtin13(f"69{rng.randrange(10**10):010d}")
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


def nearest_district_by_name(place: str) -> District | None:
    for district in DISTRICTS:
        if district.name in place:
            return district
    return None


def _new_shop(session, master_key: str, rng: random.Random, district: District, n: int):
    from app.auth.principal import OPERATOR
    from app.parties import operations as parties
    from app.parties.models import Merchant, MerchantKind

    while True:
        org = f"MA{rng.randrange(10**7):07d}"
        uscc = _uscc(f"92{district.code}{org}")
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
    from app.auth.principal import OPERATOR
    from app.parties import operations as parties

    born = date(1980, 1, 1) + timedelta(days=rng.randrange(20 * 365))
    id_number = _resident_id(f"{district.code}{born:%Y%m%d}{rng.randrange(1000):03d}")
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
    from app.auth.principal import OPERATOR
    from app.parties import operations as parties
    from app.parties.models import LogisticsCompany

    found = session.scalar(sa.select(LogisticsCompany.id).order_by(LogisticsCompany.id).limit(1))
    if found is not None:
        return found
    return parties.register_logistics_company(
        session,
        OPERATOR,
        name="模拟速运有限公司",
        uscc=_uscc(f"91320400MA{rng.randrange(10**7):07d}"),
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
    from app.auth.principal import OPERATOR
    from app.catalog.models import Batch, Product
    from app.codes.operations import issue_codes

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
    from app.catalog.models import Product
    from app.events.models import Device
    from app.parties.models import Courier, Merchant

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
            from app.db import lat_lon

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
    from app.catalog.models import Batch, BatchStatus
    from app.codes.models import CodeState, TraceCode
    from app.events.models import Event, ParcelItem

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
        from app.auth.principal import OPERATOR
        from app.catalog import operations as catalog
        from app.catalog.models import Batch, BatchStatus
        from app.codes.operations import issue_codes
        from app.db import lat_lon

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
    from app.catalog.models import Product
    from app.db import lat_lon
    from app.events.models import Device
    from app.parties.models import Courier, LogisticsCompany, Merchant

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
    from app.events.models import Event

    ids = list(fleet.devices())
    if not ids:
        return None
    return session.scalar(sa.select(sa.func.max(Event.occurred_at)).where(Event.device_id.in_(ids)))


# -- the CLI -------------------------------------------------------------------------------


@click.command("simulate")
@click.option("--shops", type=click.IntRange(min=1), help="Shops to simulate (default: all).")
@click.option("--couriers", type=click.IntRange(min=1), help="Couriers (default: all).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Events per second at most (0: as fast as the service answers).",
)
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--events", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option(
    "--http",
    "http_url",
    metavar="URL",
    help="POST to URL/api/v1/events instead of publishing to MQTT_URL.",
)
@click.option("--seed", type=int, help="Random seed (default: a new one, printed).")
@click.option(
    "--lookback",
    type=click.FloatRange(min=0.1, max=24 * 29),
    help="Start the simulated clock this many hours ago (default: from the rate "
    "and the number of events, 72 h for an open-ended run).",
)
@click.option(
    "--orders-per-hour",
    type=click.FloatRange(min=0.1),
    default=4.0,
    show_default=True,
    help="Orders per shop and hour at the busiest hours.",
)
@click.option(
    "--offline-share",
    type=click.FloatRange(0, 1),
    default=0.25,
    show_default=True,
    help="Share of handhelds that go offline now and then, then send a burst.",
)
@click.option(
    "--loss",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of messages dropped before sending (the service asks for them).",
)
@click.option(
    "--setup-only",
    is_flag=True,
    help="Register the fleet (devices, parties, codes) and stop, sending nothing.",
)
@with_appcontext
def simulate_command(
    shops,
    couriers,
    rate,
    duration,
    events,
    http_url,
    seed,
    lookback,
    orders_per_hour,
    offline_share,
    loss,
    setup_only,
) -> None:
    """Simulate shop scanners and couriers' handhelds sending events (demo, load tests).

    Uses the devices registered in the database (the demo's), registering scanners,
    handhelds, parties and trace codes as needed. Events go to the broker at MQTT_URL, or
    over HTTP with --http. Their times start in the past and catch up with the clock; an
    event is never sent before its time."""
    ext = current_app.extensions["trace"]
    config = ext.config
    if config.TRACE_ENV == "production":
        raise click.ClickException("the simulator makes up parties and events: not in production")
    if duration is not None and events is not None:
        raise click.UsageError("give --duration or --events, not both")
    if not http_url and not config.MQTT_URL and not setup_only:
        raise click.UsageError("set MQTT_URL (the broker) or give --http URL")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    with ext.sessionmaker() as session:
        merchant_ids, courier_ids = prepare_fleet(
            session, config, shops=shops, couriers=couriers, seed=seed
        )
        session.commit()
        fleet = load_fleet(
            session,
            config.SECRET_KEY,
            merchant_ids=merchant_ids,
            courier_ids=courier_ids,
            supply=lambda pid: CodeSupply(ext.sessionmaker, config, pid),
        )
        last = last_event_time(session, fleet)
    if setup_only:
        click.echo(f"simulate: ready: {fleet.describe()}", err=True)
        return
    traffic = Traffic(orders_per_hour=orders_per_hour, offline_share=offline_share)
    now = datetime.now(UTC).replace(microsecond=0)
    total = events if events is not None else (rate * duration if duration and rate else None)
    if lookback is None:
        if total is None:
            lookback = 72.0
        else:
            hours = 1.2 * total / max(1.0, traffic.events_per_hour(len(fleet.shops)))
            lookback = min(24 * 29, max(2.0, hours))
    start = now - timedelta(hours=lookback)
    if last is not None and last + timedelta(minutes=1) > start:
        start = min(now, last + timedelta(minutes=1))
    stream = generate(fleet, start=start, seed=seed, traffic=traffic)

    def say(text: str) -> None:
        click.echo(f"simulate: {text}", err=True)

    common = {"loss": loss, "seed": seed, "log": say}
    if http_url:
        publisher: Publisher = HttpPublisher(fleet, http_poster(http_url), **common)
        where = f"{http_url.rstrip('/')}/api/v1/events"
    else:
        publisher = MqttPublisher(fleet, config.MQTT_URL, **common)
        where = config.MQTT_URL.split("@")[-1]
    say(f"{fleet.describe()} -> {where}")
    say(
        f"seed {seed}; simulated clock from {start.astimezone(CST):%Y-%m-%d %H:%M} (CST); "
        f"at most {rate:g} events/s"
        if rate
        else f"seed {seed}; as fast as possible"
    )
    try:
        stats = publisher.run(
            stream,
            rate=rate or None,
            duration=duration,
            max_events=events,
            progress=lambda s: say(s.summary()),
        )
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        stats = publisher.stats
    click.echo(stats.summary())
