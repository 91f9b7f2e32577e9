"""The fleet the simulator drives: shops (a shelf and a POS scanner each, and the trace codes
they may sell) and couriers (a handheld each), as plain values. Where they come from is the
caller's business: a test builds them by hand, the app loads them from its database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from devices.simulator.geography import District, nearest_district


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
    out (the app's ``CodeSupply``) in a long run."""

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
