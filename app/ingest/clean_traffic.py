"""Clean traffic of the scenario suite that must raise nothing: the honest cases an
over-eager rule would accuse (issue 14). Each case is a complete, lawful story, sent as real
devices send it (a handheld offline delivers its buffer late, as one burst).

- a handheld offline across a sweep: a parcel signed in time, the signature delivered after
  the promise passed; and a parcel that sat at a station for 30 h, its transit scans
  delivered after it had been idle for 48 h as far as the service knew;
- parcels signed at a parcel locker near their consignees (six of one merchant in a day);
- a long-haul parcel handed from a courier in Changzhou to one in Zhaoqing;
- a return: delivered, returned, re-shelved and sold again in a new parcel;
- a handheld that writes its times in UTC, and one in UTC−05:00;
- poor GPS fixes with honest accuracy: a cell fix 2.6 km off the consignee point with a
  900 m radius, and two fixes 3 km apart in ten seconds with 1.5 km radii;
- a household receiving several orders a day, from two merchants.

:class:`CleanCases` builds them on the scenario's shop and scenario couriers of their own;
``sent`` is (send time, device id, event) for each event, in no order.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

from app.events.models import DeviceKind

NEW_YORK = timezone(timedelta(hours=-5))
#: Zhaoqing, Duanzhou: where the long-haul parcel goes.
ZHAOQING = (23.0512, 112.4720)


class CleanCases:
    """The clean cases, on an :class:`app.ingest.scenarios.Injector`'s shop and units."""

    def __init__(self, injector, start: datetime) -> None:
        self.inj, self.start = injector, start
        self.sent: list[tuple[datetime, str, dict]] = []
        self.waybills = (f"ZC{n:010d}" for n in itertools.count(1))
        self.parties: set[tuple[str, int]] = set()

    def setup(self, session, key: str, new_courier, new_device) -> None:
        """Couriers and handhelds of the cases (no service area: they roam, honestly)."""
        company = self.inj.company_id
        self.handhelds = {}
        for name in (
            "offline",
            "station",
            "locker",
            "far",
            "zhaoqing",
            "returns",
            "utc",
            "newyork",
            "poor",
            "home",
        ):
            courier = new_courier(session, key, company, service_area=False)
            self.parties.add(("courier", courier.id))
            self.handhelds[name] = new_device(
                session, key, DeviceKind.COURIER_HANDHELD, "courier", courier.id
            )
        self.parties |= {("merchant", self.inj.shop.merchant_id), ("logistics_company", company)}

    def build(self) -> None:
        day = self.start + timedelta(days=1, hours=8)
        self.offline_across_a_sweep(day)
        self.idle_at_a_station_then_synced(day + timedelta(hours=1))
        self.locker(day + timedelta(hours=2))
        self.long_haul(day + timedelta(hours=3))
        self.returned_and_resold(day + timedelta(hours=4))
        self.foreign_clocks(day + timedelta(hours=5))
        self.poor_fixes(day + timedelta(hours=6))
        self.household(day + timedelta(hours=7))

    # -- helpers ------------------------------------------------------------------------------

    def _send(self, device, body: dict, at: datetime | None = None) -> None:
        self.sent.append((at or datetime.fromisoformat(body["time"]), device.id, body))

    def _pack(self, t, units, consignee, promised=None) -> str:
        waybill = next(self.waybills)
        inj = self.inj
        data = {
            "consignee": {"lat": round(consignee[0], 6), "lon": round(consignee[1], 6)},
            "consignee_region_code": "320411",
            "logistics_company_id": inj.company_id,
        }
        if promised is not None:
            data["promised_by"] = promised.isoformat()
        shop = inj.shop
        self._send(
            inj.shelf,
            inj.shelf.event(
                "packed", t, shop.lat, shop.lon, waybill=waybill, codes=units, data=data
            ),
        )
        return waybill

    def _sold(self, t, unit) -> None:
        inj, shop = self.inj, self.inj.shop
        body = inj.pos.event("sold", t, shop.lat, shop.lon, code=unit, data={"order_id": unit})
        self._send(inj.pos, body)

    def _doorstep(self, n: int) -> tuple[float, float]:
        shop = self.inj.shop
        return (shop.lat + (2.2 + 0.2 * (n % 5)) / 111.2, shop.lon + 0.01 * (n % 3 - 1))

    def _deliver(self, hh, t, waybill, consignee, *, sent_at=None, signer="self", **fix):
        """Pickup at the shop, a transit scan halfway, out for delivery, signed at the door."""
        shop = self.inj.shop
        mid = ((shop.lat + consignee[0]) / 2, (shop.lon + consignee[1]) / 2)
        steps = [
            ("picked_up", 10, (shop.lat, shop.lon), {}),
            ("in_transit", 40, mid, {}),
            ("out_for_delivery", 70, mid, {}),
            ("signed", 100, (consignee[0] + 0.0002, consignee[1]), {"data": {"signer": signer}}),
        ]
        for type_, minutes, place, extra in steps:
            at = t + timedelta(minutes=minutes)
            body = hh.event(type_, at, *place, waybill=waybill, **(extra | fix))
            self._send(hh, body, sent_at if sent_at and type_ != "picked_up" else None)

    # -- the cases ----------------------------------------------------------------------------

    def offline_across_a_sweep(self, t: datetime) -> None:
        """Promised within 3 h, signed in 100 min; the handheld goes offline after the pickup
        and delivers the rest 8 h later, after sweeps that saw the promise pass."""
        unit, place = self.inj.units.pop(), self._doorstep(1)
        waybill = self._pack(t, [unit], place, promised=t + timedelta(hours=3))
        self._deliver(self.handhelds["offline"], t, waybill, place, sent_at=t + timedelta(hours=8))

    def idle_at_a_station_then_synced(self, t: datetime) -> None:
        """Picked up, then 30 h at the station (lawful); the handheld works on (other
        parcels until 30 h), goes offline at 30 h, scans the parcel on at 40–46 h, and delivers
        those scans at 52 h: for 4 h the service saw it idle over 48 h, awaiting sync."""
        hh, shop = self.handhelds["station"], self.inj.shop
        unit, place = self.inj.units.pop(), self._doorstep(2)
        waybill = self._pack(t, [unit], place)
        h = lambda hours: t + timedelta(hours=hours)  # noqa: E731
        self._send(hh, hh.event("picked_up", h(0.2), shop.lat, shop.lon, waybill=waybill))
        for hours in (12, 23, 28.5):  # other parcels: the handheld is heard from
            other = self._pack(h(hours), [self.inj.units.pop()], self._doorstep(3))
            self._deliver(hh, h(hours + 0.1), other, self._doorstep(3))
        burst = h(52)
        for type_, hours in (("in_transit", 40), ("out_for_delivery", 45)):
            self._send(hh, hh.event(type_, h(hours), *place, waybill=waybill), burst)
        signed = hh.event(
            "signed", h(46), place[0] + 0.0002, place[1], waybill=waybill, data={"signer": "self"}
        )
        self._send(hh, signed, burst)

    def locker(self, t: datetime) -> None:
        """Six of the shop's parcels to six homes of a block, all left at its parcel locker
        (150 m from the block's centre) on one day."""
        hh = self.handhelds["locker"]
        block = self._doorstep(4)
        locker = (block[0] + 0.0013, block[1])
        for i in range(6):
            home = (block[0] + 0.001 * (i % 3 - 1), block[1] + 0.0012 * (i // 3))
            waybill = self._pack(t + timedelta(minutes=15 * i), [self.inj.units.pop()], home)
            shop = self.inj.shop
            at = t + timedelta(minutes=15 * i + 20)
            self._send(hh, hh.event("picked_up", at, shop.lat, shop.lon, waybill=waybill))
            mid = ((shop.lat + locker[0]) / 2, (shop.lon + locker[1]) / 2)
            self._send(
                hh, hh.event("in_transit", at + timedelta(minutes=20), *mid, waybill=waybill)
            )
            self._send(
                hh,
                hh.event(
                    "signed",
                    t + timedelta(hours=3, minutes=i),
                    *locker,
                    waybill=waybill,
                    data={"signer": "locker"},
                ),
            )

    def long_haul(self, t: datetime) -> None:
        """From the Changzhou shop to Zhaoqing (1,100 km): picked up and scanned at the hub by
        a Changzhou courier, then in transit, out for delivery and signed by a Zhaoqing one
        a day later."""
        a, b, shop = self.handhelds["far"], self.handhelds["zhaoqing"], self.inj.shop
        consignee = (ZHAOQING[0] + 0.01, ZHAOQING[1])
        waybill = self._pack(t, [self.inj.units.pop()], consignee, promised=t + timedelta(days=3))
        h = lambda hours: t + timedelta(hours=hours)  # noqa: E731
        self._send(a, a.event("picked_up", h(0.3), shop.lat, shop.lon, waybill=waybill))
        self._send(a, a.event("in_transit", h(2), shop.lat + 0.02, shop.lon, waybill=waybill))
        self._send(b, b.event("in_transit", h(26), *ZHAOQING, waybill=waybill))
        self._send(b, b.event("out_for_delivery", h(27), *ZHAOQING, waybill=waybill))
        signed = b.event(
            "signed",
            h(28),
            consignee[0],
            consignee[1] + 0.0003,
            waybill=waybill,
            data={"signer": "proxy"},
        )
        self._send(b, signed)

    def returned_and_resold(self, t: datetime) -> None:
        """Sold online, delivered, returned by the consignee through the courier, shelved
        again by the shop and sold to someone else in a new parcel."""
        hh, inj, shop = self.handhelds["returns"], self.inj, self.inj.shop
        unit = inj.units.pop()
        self._sold(t, unit)
        first = self._pack(t + timedelta(minutes=5), [unit], self._doorstep(5))
        self._deliver(hh, t + timedelta(minutes=5), first, self._doorstep(5))
        back = t + timedelta(hours=5)
        self._send(hh, hh.event("returned", back, shop.lat, shop.lon, waybill=first))
        self._send(
            inj.shelf,
            inj.shelf.event("shelved", back + timedelta(hours=1), shop.lat, shop.lon, code=unit),
        )
        resold = back + timedelta(hours=2)
        self._sold(resold, unit)
        second = self._pack(resold + timedelta(minutes=5), [unit], self._doorstep(6))
        self._deliver(hh, resold + timedelta(minutes=5), second, self._doorstep(6))

    def foreign_clocks(self, t: datetime) -> None:
        """Two handhelds whose clocks write UTC and UTC−05:00: the same instants, other offsets."""
        for name, zone in (("utc", UTC), ("newyork", NEW_YORK)):
            hh = self.handhelds[name]
            place = self._doorstep(7)
            waybill = self._pack(t, [self.inj.units.pop()], place, promised=t + timedelta(hours=4))
            before = len(self.sent)
            self._deliver(hh, t, waybill, place)
            for i in range(before, len(self.sent)):
                sent_at, device, body = self.sent[i]
                moment = datetime.fromisoformat(body["time"]).astimezone(zone)
                self.sent[i] = (sent_at, device, hh.resign(body, time=moment.isoformat()))

    def poor_fixes(self, t: datetime) -> None:
        """A cell fix 2.6 km from the consignee point with an honest 900 m radius at the
        signature; two transit fixes 3 km apart in ten seconds, each with 1.5 km."""
        hh, shop = self.handhelds["poor"], self.inj.shop
        place = self._doorstep(8)
        waybill = self._pack(t, [self.inj.units.pop()], place)
        self._send(
            hh,
            hh.event("picked_up", t + timedelta(minutes=10), shop.lat, shop.lon, waybill=waybill),
        )
        mid = ((shop.lat + place[0]) / 2, (shop.lon + place[1]) / 2)
        at = t + timedelta(minutes=40)
        self._send(hh, hh.event("in_transit", at, *mid, waybill=waybill, accuracy_m=1500))
        self._send(
            hh,
            hh.event(
                "in_transit",
                at + timedelta(seconds=10),
                mid[0] + 2.99 / 111.2,
                mid[1],
                waybill=waybill,
                accuracy_m=1500,
            ),
        )
        self._send(
            hh,
            hh.event(
                "signed",
                t + timedelta(minutes=90),
                place[0] + 2.6 / 111.2,
                place[1],
                waybill=waybill,
                accuracy_m=900,
                data={"signer": "self"},
            ),
        )

    def household(self, t: datetime) -> None:
        """One home receives four of the shop's parcels in a day, ordered hours apart."""
        hh, home = self.handhelds["home"], self._doorstep(9)
        for i in range(4):
            at = t + timedelta(hours=2.5 * i)
            waybill = self._pack(at, [self.inj.units.pop()], home)
            self._deliver(hh, at, waybill, home)
