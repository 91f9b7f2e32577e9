"""The pure traffic generator: :func:`generate`, for a :class:`~devices.simulator.fleet.Fleet`,
a stream of signed events in the order devices send them. No I/O, no clock.

Units are shelved and sold; online orders are packed into parcels (``SF`` + 10 digits) for a
consignee near a real residential district; couriers drive rounds (pick up at the shops,
transit scans along the road, the delivery station of each district, out for delivery,
signature within 100 m of the consignee) at road speeds, one physically possible track per
courier. Each device numbers its events 1, 2, 3... and signs them. Some handhelds lose their
network for a while, buffer, and send a burst: late, and out of order with the rest of the
traffic. Same fleet, start and seed: same stream.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devices import protocol
from devices.simulator.fleet import Fleet, Shop, SimCourier, SimDevice
from devices.simulator.geography import (
    CST,
    DISTRICTS,
    District,
    distance_km,
    nearest_district,
    offset,
)


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
