"""The anomaly scenario suite: a day of normal traffic from the simulator, with injected cases
of every anomaly type whose ground truth is known, run end to end through the real ingest use
case (signatures, lifecycle, rules) and the sweep, scored by precision and recall per type.

Used by ``tests/devices/test_scenarios.py`` (the goal: precision and recall ≥ 0.99 for every
type, and no anomaly at all on a clean day) and ``bench/bench_scenarios.py`` (the table in the
README). An injected case names every finding it must cause, by (type, subject); a finding of
any other (type, subject) is a false positive.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app import demo_fleet
from app.anomalies import detect
from app.catalog import operations as catalog
from app.catalog.models import Batch, ProductCategory
from app.codes.operations import issue_codes
from app.credit.models import Anomaly
from app.events.models import DeviceKind
from app.events.registry import register_device
from app.feedback import operations as feedback
from app.ingest.clean_traffic import CleanCases
from app.ingest.run import Inbound, Limits, ingest
from app.parties.models import Courier
from devices import protocol, simulator
from tracecore.access import OPERATOR
from tracecore.anomalies import ANOMALY_TYPES, Thresholds
from tracecore.credit import Policy

#: What the scenarios inject: every anomaly type but copied_code and counterfeit_cluster, which
#: come from consumers' checks and reports, not from device events (tests/app/
#: test_consumer_pages.py and tests/app/test_counterfeit.py cover them).
ALL_TYPES = tuple(
    kind for kind in ANOMALY_TYPES if kind not in ("copied_code", "counterfeit_cluster")
)
CST = simulator.CST
NEAR = (0.0003, 0.0003)  # ~40 m: a doorstep signature


@dataclass
class Score:
    expected: set = field(default_factory=set)
    found: set = field(default_factory=set)

    @property
    def precision(self) -> float:
        return len(self.found & self.expected) / len(self.found) if self.found else 1.0

    @property
    def recall(self) -> float:
        return len(self.found & self.expected) / len(self.expected) if self.expected else 1.0


@dataclass
class Report:
    events_sent: int
    accepted: int
    scores: dict[str, Score]
    #: Parties of the clean cases with a finding no injected case explains (goal: 0).
    clean_parties_accused: int = 0
    #: Findings withdrawn by later evidence (counted as found all the same).
    withdrawn: int = 0

    def table(self) -> str:
        lines = [f"{'type':<20} {'expected':>8} {'found':>6} {'precision':>9} {'recall':>7}"]
        for kind in ALL_TYPES:
            s = self.scores[kind]
            lines.append(
                f"{kind:<20} {len(s.expected):>8} {len(s.found):>6} "
                f"{s.precision:>9.3f} {s.recall:>7.3f}"
            )
        return "\n".join(lines)


class _Device:
    """A device of the injector: signs and numbers its own events."""

    def __init__(self, device_id: str, secret: str) -> None:
        self.id, self.secret, self.seq = device_id, secret, 0

    def event(self, type_: str, at: datetime, lat: float, lon: float, **fields) -> dict:
        self.seq += 1
        return self.resign(
            {
                "event_id": str(uuid.uuid4()),
                "seq": self.seq,
                "type": type_,
                "time": at.astimezone(CST).isoformat(),
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                **fields,
            }
        )

    def resign(self, body: dict, **changes) -> dict:
        """``body`` with ``changes``, signed (again)."""
        body = {k: v for k, v in body.items() if k != "sig"} | changes
        body["sig"] = protocol.sign(body, self.secret)
        return body


class Injector:
    """Builds the injected cases on the fleet's own merchants (with devices of their own, so
    the simulator's sequence numbers are untouched) and a courier kept for the scenarios."""

    def __init__(self, app, fleet: simulator.Fleet, start: datetime, per_type: int) -> None:
        self.app, self.fleet, self.start, self.per_type = app, fleet, start, per_type
        self.expected: dict[str, set] = defaultdict(set)
        self.events: list[tuple[str, dict]] = []
        self.complaints: list[str] = []
        self.waybills = (f"ZS{n:010d}" for n in itertools.count(1))
        self.clock = itertools.count()
        self.brushings = itertools.count()

    def _t(self, minutes: float = 0.0) -> datetime:
        """A distinct moment of the scenario day for each case (cases do not overlap)."""
        return self.start + timedelta(hours=9, minutes=20 * next(self.clock) + minutes)

    def setup(self) -> None:
        ext = self.app.extensions["trace"]
        key = ext.config.SECRET_KEY
        shop = self.fleet.shops[0]
        self.shop = shop
        with ext.sessionmaker() as s:
            self.shelf = self._device(
                s, key, DeviceKind.SHELF_SCANNER, "merchant", shop.merchant_id
            )
            self.pos = self._device(s, key, DeviceKind.POS_SCANNER, "merchant", shop.merchant_id)
            company = s.get(Courier, self.fleet.couriers[0].courier_id).company_id
            courier = simulator_courier(s, key, company)
            self.courier_id, self.company_id = courier.id, company
            self.handheld = self._device(s, key, DeviceKind.COURIER_HANDHELD, "courier", courier.id)
            # Brushing shops are in both cities: their parcels go with a courier of no set area.
            roamer = simulator_courier(s, key, company, service_area=False)
            self.roaming_handheld = self._device(
                s, key, DeviceKind.COURIER_HANDHELD, "courier", roamer.id
            )
            # A handheld that picks up a parcel and is never heard from again.
            mute = simulator_courier(s, key, company, service_area=False)
            self.silent_handheld = self._device(
                s, key, DeviceKind.COURIER_HANDHELD, "courier", mute.id
            )
            self.clean = CleanCases(self, self.start)
            self.clean.setup(s, key, simulator_courier, self._device)
            # Brushing at every other shop of the fleet (their orders do not mix with the
            # first shop's cases): one finding per shop, whichever way it brushes.
            self.brushers = [
                (
                    shop,
                    self._device(s, key, DeviceKind.SHELF_SCANNER, "merchant", shop.merchant_id),
                    self._codes(s, shop.merchant_id, f"ZSBR{n}", date(2030, 1, 1), 12 * 8),
                )
                for n, shop in enumerate(self.fleet.shops[1:], 1)
            ]
            self.units = self._codes(s, shop.merchant_id, "ZSOK", date(2030, 1, 1), 12 * 24)
            self.expired = self._codes(s, shop.merchant_id, "ZSEXP", date(2020, 1, 2), 12)
            self.recalled = self._codes(s, shop.merchant_id, "ZSREC", date(2030, 1, 1), 12)
            batch_id = s.scalar(sa.select(Batch.id).where(Batch.lot == "ZSREC"))
            s.execute(
                sa.update(Batch)
                .where(Batch.id == batch_id)
                .values(status="recalled", recalled_at=self.start, recall_reason="scenario")
            )
            s.commit()

    def _device(self, s, key, kind, owner_type, owner_id) -> _Device:
        device, secret = register_device(
            s, OPERATOR, key, kind=kind, owner_type=owner_type, owner_id=owner_id
        )
        return _Device(device.id, secret)

    def _codes(self, s, merchant_id, lot, expires, n) -> list[str]:
        product = catalog.register_product(
            s,
            OPERATOR,
            gtin=_gtin(lot),
            name=f"场景 {lot}",
            category=ProductCategory.FOOD,
            merchant_id=merchant_id,
        )
        batch = catalog.register_batch(
            s,
            OPERATOR,
            product_id=product.id,
            lot=lot,
            produced_on=date(2020, 1, 1),
            expires_on=expires,
            origin_name="scenario",
            origin_lat=31.8,
            origin_lon=119.9,
            quantity=n,
        )
        return list(issue_codes(s, OPERATOR, batch.id, n, max_count=n).serials)

    def send(self, device: _Device, body: dict) -> None:
        self.events.append((device.id, body))

    def expect(self, kind: str, subject) -> None:
        self.expected[kind].add(subject)

    # -- the cases --------------------------------------------------------------------------

    def build(self) -> None:
        for _ in range(self.per_type):
            self.duplicate_sale()
            self.shelved_after_signing()
            self.signed_without_pickup()
            self.teleported_parcel()
            self.signed_far_away()
            self.outside_service_area()
            self.stalled()
            self.late()
            self.counterfeit()
            self.expired_sale()
            self.recalled_sale()
            self.brushing()
            self.complaint()
            self.silent()
        self.clean.build()
        self.events += [(d, body) for _, d, body in self.clean.sent]
        self.sent_late = {body["event_id"]: at for at, _, body in self.clean.sent}

    def expected_pairs(self) -> set[tuple[str, str]]:
        return {(kind, subject) for kind, subjects in self.expected.items() for subject in subjects}

    def keep_alive(self, until: datetime) -> None:
        """The scenario courier works on every 12 h (a clean delivery), so its handheld is
        heard from and synced past the deadlines of the parcels it holds."""
        t = self.start + timedelta(hours=20)
        while t < until:
            self._journey(t, [self._unit()], self._consignee())
            t += timedelta(hours=12)

    def silent(self) -> None:
        unit, t = self._unit(), self._t()
        waybill = self._pack(t, [unit], self._consignee())
        hh = self.silent_handheld
        self.send(
            hh,
            hh.event(
                "picked_up", t + timedelta(minutes=5), self.shop.lat, self.shop.lon, waybill=waybill
            ),
        )
        self.expect("device_silent", hh.id)  # one spell; its parcel is awaiting sync

    def _unit(self) -> str:
        return self.units.pop()

    def _pack(
        self, t: datetime, units: list[str], consignee, promised=None, shelf=None, shop=None
    ) -> str:
        waybill = next(self.waybills)
        data = {
            "consignee": {"lat": consignee[0], "lon": consignee[1]},
            "consignee_region_code": "320411",
            "logistics_company_id": self.company_id,
        }
        if promised is not None:
            data["promised_by"] = promised.astimezone(CST).isoformat()
        shelf, shop = shelf or self.shelf, shop or self.shop
        self.send(
            shelf,
            shelf.event("packed", t, shop.lat, shop.lon, waybill=waybill, codes=units, data=data),
        )
        return waybill

    def _journey(
        self,
        t: datetime,
        units: list[str],
        consignee,
        sign_at=None,
        promised=None,
        sign_after: float = 100,
        shelf=None,
        shop=None,
        handheld=None,
    ) -> str:
        """A clean delivery in one city: pickup at the shop, transit, out for delivery, sign."""
        waybill = self._pack(t, units, consignee, promised, shelf, shop)
        hh, shop = handheld or self.handheld, shop or self.shop
        mid = ((shop.lat + consignee[0]) / 2, (shop.lon + consignee[1]) / 2)
        self.send(
            hh,
            hh.event("picked_up", t + timedelta(minutes=10), shop.lat, shop.lon, waybill=waybill),
        )
        self.send(hh, hh.event("in_transit", t + timedelta(minutes=40), *mid, waybill=waybill))
        self.send(
            hh, hh.event("out_for_delivery", t + timedelta(minutes=70), *mid, waybill=waybill)
        )
        where = sign_at or (consignee[0] + NEAR[0], consignee[1] + NEAR[1])
        self.send(
            hh,
            hh.event(
                "signed",
                t + timedelta(minutes=sign_after),
                *where,
                waybill=waybill,
                data={"signer": "self"},
            ),
        )
        return waybill

    def _consignee(self) -> tuple[float, float]:
        """A doorstep 2–4 km from the shop, a different one for every case."""
        n = len(self.events)
        return (
            round(self.shop.lat + (2 + n % 7 * 0.3) / 111.2, 6),
            round(self.shop.lon + (n % 11 - 5) * 0.004, 6),
        )

    def duplicate_sale(self) -> None:
        unit, t = self._unit(), self._t()
        self.send(
            self.pos,
            self.pos.event(
                "sold", t, self.shop.lat, self.shop.lon, code=unit, data={"order_id": f"D{unit}"}
            ),
        )
        self.send(
            self.pos,
            self.pos.event(
                "sold",
                t + timedelta(minutes=5),
                self.shop.lat,
                self.shop.lon,
                code=unit,
                data={"order_id": f"D2{unit}"},
            ),
        )
        self.expect("duplicate_sale", unit)

    def shelved_after_signing(self) -> None:
        unit, t = self._unit(), self._t()
        self._journey(t, [unit], self._consignee())
        self.send(
            self.shelf,
            self.shelf.event(
                "shelved", t + timedelta(minutes=200), self.shop.lat, self.shop.lon, code=unit
            ),
        )
        self.expect("lifecycle_violation", unit)

    def signed_without_pickup(self) -> None:
        unit, t = self._unit(), self._t()
        consignee = self._consignee()
        waybill = self._pack(t, [unit], consignee)
        hh = self.handheld
        self.send(
            hh,
            hh.event(
                "signed",
                t + timedelta(minutes=30),
                consignee[0],
                consignee[1],
                waybill=waybill,
                data={"signer": "proxy"},
            ),
        )
        self.expect("empty_parcel", waybill)
        self.expect("lifecycle_violation", waybill)  # a signature with no pickup is unlawful

    def teleported_parcel(self) -> None:
        unit, t = self._unit(), self._t()
        waybill = self._pack(t, [unit], self._consignee())
        hh = self.handheld
        self.send(
            hh,
            hh.event(
                "picked_up", t + timedelta(minutes=5), self.shop.lat, self.shop.lon, waybill=waybill
            ),
        )
        self.send(
            hh, hh.event("in_transit", t + timedelta(minutes=15), 23.05, 112.47, waybill=waybill)
        )  # Zhaoqing, 1,100 km away, 10 minutes later
        self.expect("impossible_travel", waybill)
        self.expect("out_of_area", waybill)  # Zhaoqing is outside the courier's area, too
        self.expect("stalled_parcel", waybill)  # and nothing moves it after that

    def signed_far_away(self) -> None:
        unit, t = self._unit(), self._t()
        consignee = self._consignee()
        waybill = self._journey(
            t, [unit], consignee, sign_at=(consignee[0] + 0.05, consignee[1])
        )  # ~5.6 km off
        self.expect("remote_sign", waybill)

    def outside_service_area(self) -> None:
        unit, t = self._unit(), self._t()
        waybill = self._pack(t, [unit], self._consignee())
        hh = self.handheld
        # The scenario courier's area is the city centre; this pickup is in Liyang, 50 km out.
        self.send(
            hh, hh.event("picked_up", t + timedelta(minutes=10), 31.42, 119.48, waybill=waybill)
        )
        self.expect("out_of_area", waybill)
        self.expect("stalled_parcel", waybill)  # never scanned again

    def stalled(self) -> None:
        unit, t = self._unit(), self._t()
        waybill = self._pack(t, [unit], self._consignee(), promised=t + timedelta(days=30))
        self.send(
            self.handheld,
            self.handheld.event(
                "picked_up",
                t + timedelta(minutes=10),
                self.shop.lat,
                self.shop.lon,
                waybill=waybill,
            ),
        )
        self.expect("stalled_parcel", waybill)

    def late(self) -> None:
        unit, t = self._unit(), self._t()
        waybill = self._journey(
            t, [unit], self._consignee(), promised=t + timedelta(hours=1), sign_after=180
        )
        self.expect("late_delivery", waybill)

    def counterfeit(self) -> None:
        fake = "ZZ" + uuid.uuid4().hex[:14].upper()
        self.send(
            self.shelf,
            self.shelf.event("shelved", self._t(), self.shop.lat, self.shop.lon, code=fake),
        )
        self.expect("unknown_code", fake)

    def expired_sale(self) -> None:
        unit = self.expired.pop()
        self.send(
            self.pos,
            self.pos.event(
                "sold",
                self._t(),
                self.shop.lat,
                self.shop.lon,
                code=unit,
                data={"order_id": f"E{unit}"},
            ),
        )
        self.expect("expired_sale", unit)

    def recalled_sale(self) -> None:
        unit = self.recalled.pop()
        self.send(
            self.pos,
            self.pos.event(
                "sold",
                self._t(),
                self.shop.lat,
                self.shop.lon,
                code=unit,
                data={"order_id": f"R{unit}"},
            ),
        )
        self.expect("recalled_sale", unit)

    def brushing(self) -> None:
        """Brushing (刷单) at the next brushing shop, on a day of its own, in turn one way or
        the other: eight orders in 40 minutes all to one doorstep; or six orders over the
        day to six doorsteps around a block, every parcel signed at one spot of it."""
        n = next(self.brushings)
        if not self.brushers:
            return
        shop, shelf, units = self.brushers[n % len(self.brushers)]
        t = self.start + timedelta(days=1 + n, hours=10)
        if n % 2 == 0:
            point = (shop.lat + 0.02, shop.lon)
            for i in range(8):
                self._pack(
                    t + timedelta(minutes=5 * i), [units.pop()], point, shelf=shelf, shop=shop
                )
        else:
            spot = (shop.lat + 0.025, shop.lon + 0.01)
            for i in range(6):
                doorstep = (spot[0] + 0.002 * (i % 3 - 1), spot[1] + 0.003 * (i // 3 - 0.5))
                self._journey(
                    t + timedelta(hours=i * 1.5),
                    [units.pop()],
                    doorstep,
                    sign_at=spot,
                    shelf=shelf,
                    shop=shop,
                    handheld=self.roaming_handheld,
                )
        # A merchant is one subject: a shop brushing again is the same finding.
        self.expect("brushing", str(shop.merchant_id))

    def complaint(self) -> None:
        unit, t = self._unit(), self._t()
        self.send(
            self.pos,
            self.pos.event(
                "sold", t, self.shop.lat, self.shop.lon, code=unit, data={"order_id": f"C{unit}"}
            ),
        )
        self.complaints.append(unit)
        self.expect("consumer_complaint", unit)


def simulator_courier(session, key: str, company_id: int, *, service_area: bool = True):
    """A courier of the scenarios, with a service area over central Changzhou (or none)."""
    from geoalchemy2 import WKTElement

    from app.parties import operations as parties

    n = session.scalar(sa.select(sa.func.count()).select_from(Courier)) + 1
    body = f"32040219950101{n:03d}"
    check = next(c for c in "0123456789X" if _id_ok(body + c))
    courier = parties.register_courier(
        session,
        OPERATOR,
        key,
        name="场景快递员",
        id_number=body + check,
        phone=f"137{n:08d}",
        company_id=company_id,
        region_code="320402",
    )
    if service_area:
        courier.service_area = WKTElement(
            "MULTIPOLYGON(((119.80 31.60, 120.15 31.60, 120.15 32.00, 119.80 32.00, "
            "119.80 31.60)))",
            srid=4326,
        )
    session.flush()
    return courier


def _id_ok(value: str) -> bool:
    from tracecore.identity import validate_resident_id

    try:
        validate_resident_id(value)
    except Exception:
        return False
    return True


def _gtin(lot: str) -> str:
    from tracecore.gs1 import gtin_check_digit

    body = "693" + str(abs(hash(lot)) % 10**9).zfill(9)
    return body + str(gtin_check_digit(body))


def _messages(items: list[tuple], size: int) -> list[tuple[datetime, str, bytes]]:
    """Group events, (send time, device id, event) in send order, into messages of one
    device each, at most ``size`` events a message: (send time of the last, device, bytes)."""
    out, current, device, last = [], [], None, None
    for at, device_id, body in items:
        if device_id != device or len(current) >= size:
            if current:
                out.append((last, device, json.dumps({"events": current}).encode()))
            current, device = [], device_id
        current.append(body)
        last = at
    if current:
        out.append((last, device, json.dumps({"events": current}).encode()))
    return out


def run(
    app,
    *,
    shops: int = 4,
    couriers: int = 3,
    codes_per_shop: int = 200,
    inject: int = 0,
    seed: int = 7,
    start: datetime | None = None,
    batch_messages: int = 20,
    sweep_hours: float = 2.0,
    clean: bool = True,
) -> Report:
    """Simulate one day (some handhelds offline for hours, delivering late bursts), inject
    ``inject`` cases of every type and (``clean``) the clean cases of
    :mod:`app.ingest.clean_traffic`,
    ingest it all in the order devices send it with a sweep every ``sweep_hours`` of
    simulated time, sweep three days later, and score what was found against what was
    expected."""
    ext = app.extensions["trace"]
    start = start or datetime(2026, 11, 1, tzinfo=CST)
    fleet = demo_fleet.setup_fleet(
        app, shops=shops, couriers=couriers, codes_per_shop=codes_per_shop, seed=seed
    )
    # The whole stream: the shops sell their stock (about a day's trade at the default
    # traffic) and every parcel is delivered, so a clean day leaves nothing half done.
    traffic = simulator.Traffic(offline_share=0.5, offline_minutes=(60.0, 300.0))
    sent = [
        (o.publish_at, o.device_id, o.event)
        for o in simulator.generate(fleet, start=start, seed=seed, traffic=traffic)
    ]
    end = max(datetime.fromisoformat(b["time"]) for _, _, b in sent)
    injector = None
    if inject or clean:
        injector = Injector(app, fleet, start, inject)
        injector.setup()
        injector.build()
        late = injector.sent_late
        sent += [
            (late.get(b["event_id"], datetime.fromisoformat(b["time"])), d, b)
            for d, b in injector.events
        ]
        end = max(end, *(datetime.fromisoformat(b["time"]) for _, b in injector.events))
    sweep_at = max(end, *(at for at, _, _ in sent)) + timedelta(days=3)
    if injector:
        before = len(injector.events)
        injector.keep_alive(sweep_at - timedelta(hours=1))
        sent += [(datetime.fromisoformat(b["time"]), d, b) for d, b in injector.events[before:]]
    sent.sort(key=lambda item: item[0])
    limits = Limits(thresholds=Thresholds(), policy=Policy())
    accepted = 0
    messages = _messages(sent, 100)

    def store(chunk) -> int:
        latest = max(at for at, _, _ in chunk)
        with ext.sessionmaker() as session:
            result = ingest(
                session,
                ext.config.SECRET_KEY,
                [Inbound(d, p, latest) for _, d, p in chunk],
                limits=limits,
                now=latest + timedelta(minutes=1),
            )
            session.commit()
        return result.accepted

    def sweep(at: datetime) -> None:
        with ext.sessionmaker() as session:
            detect.sweep(session, Thresholds(), Policy(), now=at)
            session.commit()

    # In send order, a batch of at most ``batch_messages`` messages at a time, and a sweep
    # at every ``sweep_hours`` mark of the simulated clock, between the batches around it.
    next_sweep, chunk = start + timedelta(hours=sweep_hours), []
    for message in messages:
        if chunk and (len(chunk) >= batch_messages or message[0] >= next_sweep):
            accepted += store(chunk)
            chunk = []
        while message[0] >= next_sweep:
            sweep(next_sweep)
            next_sweep += timedelta(hours=sweep_hours)
        chunk.append(message)
    if chunk:
        accepted += store(chunk)
    with ext.sessionmaker() as session:
        for serial in injector.complaints if injector else []:
            feedback.file_complaint(
                session,
                serial,
                "quality",
                "口感异常",
                None,
                # each complaint from its own consumer's network
                feedback.Source(f"scenario-{serial}", f"scenario-{serial}"),
                100,
                Policy(),
            )
        detect.sweep(session, Thresholds(), Policy(), now=sweep_at)
        session.commit()
        found = session.execute(
            sa.select(
                Anomaly.type, Anomaly.subject, Anomaly.status, Anomaly.party_type, Anomaly.party_id
            )
        ).all()
    scores = {kind: Score() for kind in ALL_TYPES}
    parties_found: set[tuple[str, int]] = set()
    withdrawn = 0
    for kind, subject, status, party_type, party_id in found:
        # A finding withdrawn since still counts: it accused someone for a while.
        withdrawn += status == "withdrawn"
        if kind == "device_silent":  # one subject per silent spell: scored by device
            subject = subject.split("@")[0]
        scores.setdefault(kind, Score()).found.add(subject)
        if injector and (kind, subject) not in injector.expected_pairs():
            parties_found.add((party_type, party_id))
    for kind, subjects in (injector.expected if injector else {}).items():
        scores[kind].expected |= subjects
    clean_parties = injector.clean.parties if injector else set()
    return Report(len(sent), accepted, scores, len(clean_parties & parties_found), withdrawn)
