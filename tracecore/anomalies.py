"""Anomaly rules: dishonest behaviour found in the trace itself (plain functions).

Each rule takes the recent facts of one subject (a unit, a parcel, a merchant's orders) and
returns :class:`Finding` values: type, severity, subject, responsible parties and evidence.
The ingest path feeds them as each batch is committed; a periodic sweep feeds the rules about
time passing (stalled and late parcels, silent handhelds). Thresholds come from
:class:`Thresholds`, whose defaults are the service's configuration defaults.

Two principles run through the rules. A position is a circle, not a point: a device reports
how accurate its fix is (``accuracy_m``), and a distance the rules judge is the distance
between the two circles (each radius capped at ``accuracy_cap_m``, so that a device cannot
excuse anything by claiming a huge radius). And a deadline is judged only on what the
service can know: a parcel is late or stalled only once the handheld that holds it has
delivered its events past the deadline (:class:`DeviceSync`); until then it is awaiting
sync, and a handheld silent for long is a finding of its own for its company.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any, NamedTuple

from tracecore.geo import distance_km, speed_kmh
from tracecore.sync import DeviceSync, awaiting_sync
from tracecore.vocabulary import WITH_COURIER, EventType

MINOR, MAJOR, SERIOUS = "minor", "major", "serious"
#: Scans of a parcel on its way between pickup and signature.
_UNDER_WAY = (EventType.IN_TRANSIT, EventType.OUT_FOR_DELIVERY)
#: Events by which a recalled unit changes hands (a sale, a shipment).
_CHANGES_HANDS = (EventType.SOLD, EventType.PACKED, EventType.PICKED_UP)

#: Every kind of anomaly the service finds, in the order regulators see them listed.
ANOMALY_TYPES = (
    "lifecycle_violation",
    "empty_parcel",
    "impossible_travel",
    "remote_sign",
    "out_of_area",
    "stalled_parcel",
    "late_delivery",
    "duplicate_sale",
    "unknown_code",
    "expired_sale",
    "recalled_sale",
    "brushing",
    "consumer_complaint",
    "copied_code",
    "device_silent",
    "counterfeit_cluster",
)
#: Each type's name, (Chinese, English): what people read, and what the credit exchange
#: gives as the rule a finding broke.
ANOMALY_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "lifecycle_violation": ("流程违规", "Lifecycle violation"),
        "empty_parcel": ("空包", "Empty parcel"),
        "impossible_travel": ("不可能的移动", "Impossible travel"),
        "remote_sign": ("异地签收", "Signed far from the consignee"),
        "out_of_area": ("超出经营区域", "Out of area"),
        "stalled_parcel": ("包裹滞留", "Stalled parcel"),
        "late_delivery": ("延误送达", "Late delivery"),
        "duplicate_sale": ("重复销售", "Sold twice"),
        "unknown_code": ("未登记的追溯码", "Unknown trace code"),
        "expired_sale": ("销售过期商品", "Expired product sold"),
        "recalled_sale": ("销售召回商品", "Recalled product sold"),
        "brushing": ("刷单", "Brushing (fake orders)"),
        "consumer_complaint": ("消费者投诉", "Consumer complaint"),
        "copied_code": ("追溯码被复制", "Copied trace code"),
        "device_silent": ("手持终端长时间未同步", "Handheld silent"),
        "counterfeit_cluster": ("假冒追溯码集中出现", "Counterfeit codes clustering"),
    }
)
#: Each severity's name, (Chinese, English).
SEVERITY_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "minor": ("轻微", "Minor"),
        "major": ("较重", "Major"),
        "serious": ("严重", "Serious"),
    }
)
#: Findings that name their party as the *victim*, not as the one responsible: fakes of a
#: merchant's product checked and reported by consumers. They are stored as anomalies against
#: the party (so it and the regulators of its region see them) but carry no credit record:
#: never a risk signal, and a confirmation counts nothing against the party either.
VICTIM_TYPES = frozenset({"counterfeit_cluster"})

Party = tuple[str, int]  # ("merchant" | "courier" | "logistics_company", id)
Subject = tuple[
    str, Any
]  # ("code", serial) | ("waybill", waybill) | ("batch", id) | ("merchant", id)


@dataclass(frozen=True)
class Thresholds:
    #: impossible_travel: faster than this between two scans of one unit or parcel.
    max_speed_kmh: float = 900.0
    #: empty_parcel: signed faster than any road vehicle could have carried it.
    vehicle_speed_kmh: float = 150.0
    #: empty_parcel: a pickup-to-signature distance above this needs a transit scan between.
    empty_parcel_km: float = 5.0
    #: remote_sign: signed farther than this from the consignee point.
    remote_sign_km: float = 2.0
    #: stalled_parcel: no scan for this long while in the courier's hands.
    stalled_hours: float = 48.0
    #: brushing: orders in a one-hour window per distinct consignee point, and the minimum
    #: number of orders in the window for the ratio to count.
    brushing_ratio: float = 3.0
    brushing_min_orders: int = 6
    #: brushing: this many of a merchant's parcels signed at one point in a day (lockers
    #: excepted), within ``brushing_point_m`` of each other.
    brushing_same_point: int = 5
    brushing_point_m: float = 50.0
    #: copied_code: consumers' checks of one code by at least this many distinct clients
    #: (a client counted by its network, never by its cookie: docs/consumer.md)...
    copied_code_clients: int = 5
    #: ... in at least this many distinct county-level districts (one place per network).
    copied_code_districts: int = 3
    #: copied_code: a network's shared places count for at most this many codes a day.
    copied_code_places_per_day: int = 10
    #: A fix's reported accuracy radius counts up to this many metres: beyond it, the rules
    #: trust the fix no less (a claimed 50 km radius does not excuse a remote signature).
    accuracy_cap_m: float = 1000.0
    #: device_silent: a handheld holding parcels and not heard from for this long.
    device_silent_hours: float = 24.0
    #: counterfeit_cluster: never-issued codes (or forged links) under one product's GTIN
    #: checked or reported from at least this many distinct networks...
    counterfeit_cluster_networks: int = 5
    #: ... within this many hours.
    counterfeit_cluster_hours: float = 72.0


#: The default ``data`` of a scan: empty and read-only (one object shared by every scan).
NO_DATA: Mapping[str, Any] = MappingProxyType({})


class Scan(NamedTuple):
    """An event as the rules see it.

    A named tuple, not a dataclass: the ingest path builds one for every event of every
    unit and parcel a batch touched, and a frozen dataclass costs several times as much to
    build. Immutable all the same."""

    event_id: str
    type: str
    time: datetime
    party: Party
    lat: float | None = None
    lon: float | None = None
    #: Why the lifecycle refused it (None: lawful).
    violation: str | None = None
    data: Mapping[str, Any] = NO_DATA
    #: The radius of the fix, as the device reported it (None: not reported, taken as 0).
    accuracy_m: float | None = None

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None

    def radius_km(self, t: Thresholds) -> float:
        """How far the true place may be from (lat, lon): the reported radius, capped."""
        return min(self.accuracy_m or 0.0, t.accuracy_cap_m) / 1000


@dataclass(frozen=True)
class Finding:
    type: str
    severity: str
    subject: Subject
    parties: tuple[Party, ...]
    evidence: dict

    def __post_init__(self) -> None:
        if self.type not in ANOMALY_TYPES:
            raise ValueError(f"unknown anomaly type {self.type!r}")

    @property
    def key(self) -> tuple:
        """One ongoing anomaly per rule and subject (and party)."""
        return (self.type, self.subject, self.parties)

    @property
    def against_parties(self) -> bool:
        """Whether its parties are the ones responsible (False: they are its victims, and
        it weighs nothing on their credit, :data:`VICTIM_TYPES`)."""
        return self.type not in VICTIM_TYPES


def _km(a: Scan, b: Scan) -> float:
    return distance_km(a.lat, a.lon, b.lat, b.lon)


def _apart_km(a: Scan, b: Scan, t: Thresholds) -> float:
    """The least distance the two fixes allow: between their circles (0 if they overlap)."""
    return max(0.0, _km(a, b) - a.radius_km(t) - b.radius_km(t))


def _ordered(scans: list[Scan]) -> list[Scan]:
    return sorted(scans, key=lambda s: s.time)


# -- rules on one unit or parcel --------------------------------------------------------------


def lifecycle_violations(subject: Subject, scans: list[Scan]) -> list[Finding]:
    """Each event the lifecycle does not allow (a second sale is its own rule)."""
    return [
        Finding(
            "lifecycle_violation",
            MAJOR,
            subject,
            (s.party,),
            {"event_ids": [s.event_id], "violation": s.violation},
        )
        for s in scans
        if s.violation and not s.violation.startswith("sold is not allowed after sold")
    ]


def duplicate_sale(serial: str, scans: list[Scan]) -> list[Finding]:
    """A code sold a second time without a return (the one-sale rule of drug codes)."""
    sales = [s for s in _ordered(scans) if s.type == EventType.SOLD]
    return [
        Finding(
            "duplicate_sale",
            SERIOUS,
            ("code", serial),
            (second.party,),
            {
                "event_ids": [sales[0].event_id, second.event_id],
                "first_sale": sales[0].time.isoformat(),
                "second_sale": second.time.isoformat(),
            },
        )
        for second in sales[1:]
        if second.violation and second.violation.startswith("sold is not allowed after sold")
    ]


def impossible_travel(subject: Subject, scans: list[Scan], t: Thresholds) -> list[Finding]:
    """Two consecutive scans whose implied speed is beyond any plausible transport, over
    the least distance their accuracy radii allow."""
    located = [s for s in _ordered(scans) if s.located]
    out = []
    for a, b in pairwise(located):
        km = _apart_km(a, b, t) if (a.accuracy_m or b.accuracy_m) else _km(a, b)
        kmh = speed_kmh(km, a.time, b.time)
        if kmh > t.max_speed_kmh and km > 1.0:
            out.append(
                Finding(
                    "impossible_travel",
                    MAJOR,
                    subject,
                    (b.party,),
                    {
                        "event_ids": [a.event_id, b.event_id],
                        "km": round(km, 1),
                        "hours": round((b.time - a.time).total_seconds() / 3600, 3),
                        "kmh": None if kmh == float("inf") else round(kmh),
                    },
                )
            )
    return out


def empty_parcel(waybill: str, merchant_id: int, scans: list[Scan], t: Thresholds) -> list[Finding]:
    """A parcel signed with no pickup scan, or with no transit scan between a distant pickup
    and the signature, or signed faster than a vehicle could carry it (空包裹代发). Distances
    are the least the two fixes' accuracy radii allow."""
    lawful = [s for s in _ordered(scans) if not s.violation]
    # A signature with no pickup is also a lifecycle violation; it still counts here.
    signed = next((s for s in _ordered(scans) if s.type == EventType.SIGNED), None)
    if signed is None:
        return []
    couriers = tuple(dict.fromkeys(s.party for s in scans if s.party[0] == "courier"))
    parties = (("merchant", merchant_id), *couriers)
    pickups = [s for s in scans if s.type == EventType.PICKED_UP and s.time <= signed.time]
    if not pickups:
        return [
            Finding(
                "empty_parcel",
                SERIOUS,
                ("waybill", waybill),
                parties,
                {"event_ids": [signed.event_id], "why": "signed with no pickup scan"},
            )
        ]
    pickup = min(pickups, key=lambda s: s.time)
    if not (pickup.located and signed.located):
        return []
    km = _apart_km(pickup, signed, t)
    between = [s for s in lawful if pickup.time < s.time < signed.time and s.type in _UNDER_WAY]
    kmh = speed_kmh(km, pickup.time, signed.time)
    evidence = {
        "event_ids": [pickup.event_id, signed.event_id],
        "km": round(km, 1),
        "hours": round((signed.time - pickup.time).total_seconds() / 3600, 3),
    }
    if kmh > t.vehicle_speed_kmh and km > t.empty_parcel_km:
        why = (
            f"carried {km:.0f} km at {kmh:.0f} km/h"
            if kmh != float("inf")
            else f"carried {km:.0f} km in no time"
        )
        return [
            Finding("empty_parcel", SERIOUS, ("waybill", waybill), parties, evidence | {"why": why})
        ]
    if not between and km > t.empty_parcel_km:
        return [
            Finding(
                "empty_parcel",
                SERIOUS,
                ("waybill", waybill),
                parties,
                evidence | {"why": "no transit scan between pickup and signature"},
            )
        ]
    return []


def remote_sign(
    waybill: str, scans: list[Scan], consignee: tuple[float, float], t: Thresholds
) -> list[Finding]:
    """Signed (or reported delivered) farther than allowed from the consignee point (异地签收):
    farther than ``remote_sign_km`` beyond the fix's accuracy radius. A signature whose
    radius covers the consignee point is no proof of a remote signature."""
    out = []
    for s in scans:
        if s.type != EventType.SIGNED or not s.located or s.violation:
            continue
        km = distance_km(s.lat, s.lon, *consignee)
        beyond = km - s.radius_km(t)
        if beyond > t.remote_sign_km:
            evidence = {"event_ids": [s.event_id], "km": round(km, 2)}
            if s.accuracy_m:
                evidence |= {"accuracy_m": s.accuracy_m, "km_beyond_accuracy": round(beyond, 2)}
            out.append(Finding("remote_sign", MAJOR, ("waybill", waybill), (s.party,), evidence))
    return out


def out_of_area(subject: Subject, scan: Scan) -> Finding:
    """A courier's scan outside the courier's service area (the spatial test is the
    database's: the caller passes only scans it found outside)."""
    return Finding(
        "out_of_area",
        MINOR,
        subject,
        (scan.party,),
        {"event_ids": [scan.event_id], "lat": scan.lat, "lon": scan.lon},
    )


def expired_sale(serial: str, scans: list[Scan], expires_on: date) -> list[Finding]:
    """Sold after the batch's expiry date (by the date where the sale happened)."""
    return [
        Finding(
            "expired_sale",
            SERIOUS,
            ("code", serial),
            (s.party,),
            {
                "event_ids": [s.event_id],
                "expires_on": expires_on.isoformat(),
                "sold_on": s.time.date().isoformat(),
            },
        )
        for s in scans
        if s.type == EventType.SOLD and s.time.date() > expires_on
    ]


def recalled_sale(
    serial: str, scans: list[Scan], recalled_at: datetime, merchant_of: dict[str, int] | None = None
) -> list[Finding]:
    """Sold, packed or shipped after the batch was recalled. The merchant answers: the one
    whose device scanned it, or for a courier's scan the parcel's merchant."""
    out = []
    for s in scans:
        if s.type not in _CHANGES_HANDS or s.time < recalled_at:
            continue
        party = (
            s.party
            if s.party[0] == "merchant"
            else ("merchant", (merchant_of or {}).get(s.event_id))
        )
        if party[1] is None:
            continue
        out.append(
            Finding(
                "recalled_sale",
                SERIOUS,
                ("code", serial),
                (party,),
                {
                    "event_ids": [s.event_id],
                    "recalled_at": recalled_at.isoformat(),
                    "event": s.type,
                },
            )
        )
    return out


# -- time passing: stalled and late parcels, silent handhelds --------------------------------


def stall_held(times: list[datetime], at: datetime, t: Thresholds) -> bool:
    """Whether a parcel scanned at ``times`` (from its pickup on) sat unscanned for longer
    than ``stalled_hours`` at some point up to ``at``: the stall found at ``at`` still holds."""
    known = sorted(x for x in times if x <= at)
    if not known:
        return True
    limit = timedelta(hours=t.stalled_hours)
    return at - known[-1] > limit or any(b - a > limit for a, b in pairwise(known))


def device_silent(
    device: DeviceSync,
    company_id: int,
    courier_id: int,
    waybills: list[str],
    now: datetime,
    t: Thresholds,
) -> list[Finding]:
    """A handheld holding parcels and silent for long: one finding for its company per
    silent spell (the subject names the device and when it was last heard), instead of an
    accusation per parcel it holds."""
    if not waybills or not device.silent(now, t.device_silent_hours):
        return []
    heard = device.last_heard_at
    return [
        Finding(
            "device_silent",
            MINOR,
            ("device", f"{device.device_id}@{heard.strftime('%Y%m%dT%H%M%SZ')}"),
            (("logistics_company", company_id),),
            {
                "device_id": device.device_id,
                "courier_id": courier_id,
                "last_heard_at": heard.isoformat(),
                "synced_through": device.synced_through.isoformat()
                if device.synced_through
                else None,
                "parcels": len(waybills),
                "waybills": sorted(waybills)[:20],
            },
        )
    ]


def stalled_parcel(
    waybill: str,
    company_id: int,
    state: str,
    last_scan: datetime,
    now: datetime,
    t: Thresholds,
    holders: tuple[DeviceSync, ...] = (),
) -> list[Finding]:
    """No scan for too long while the courier has it, and the handheld holding it has
    delivered its events past that point (else: awaiting sync, no finding)."""
    if state not in WITH_COURIER:
        return []
    idle = now - last_scan
    if idle <= timedelta(hours=t.stalled_hours):
        return []
    if awaiting_sync(last_scan + timedelta(hours=t.stalled_hours), holders):
        return []
    return [
        Finding(
            "stalled_parcel",
            MINOR,
            ("waybill", waybill),
            (("logistics_company", company_id),),
            {
                "last_scan": last_scan.isoformat(),
                "idle_hours": round(idle.total_seconds() / 3600, 1),
            },
        )
    ]


def late_delivery(
    waybill: str,
    company_id: int,
    promised_by: datetime | None,
    signed_at: datetime | None,
    now: datetime,
    holders: tuple[DeviceSync, ...] = (),
) -> list[Finding]:
    """Not signed by the promised time (signed late, or still not signed once it passed and
    every handheld that may hold it has delivered its events past it)."""
    if promised_by is None:
        return []
    if signed_at is not None and signed_at <= promised_by:
        return []
    if signed_at is None and (now <= promised_by or awaiting_sync(promised_by, holders)):
        return []
    return [
        Finding(
            "late_delivery",
            MINOR,
            ("waybill", waybill),
            (("logistics_company", company_id),),
            {
                "promised_by": promised_by.isoformat(),
                "signed_at": signed_at.isoformat() if signed_at else None,
            },
        )
    ]


def unknown_code(
    device_owner: Party, code: str, event_id: str | None, place: tuple[float, float] | None = None
) -> Finding:
    """A scan of a code that was never issued: a counterfeit in circulation."""
    evidence = {"event_ids": [event_id] if event_id else [], "code": code[:200]}
    if place is not None:
        evidence["lat"], evidence["lon"] = place
    return Finding("unknown_code", SERIOUS, ("code", code[:64]), (device_owner,), evidence)


@dataclass(frozen=True)
class CheckSummary:
    """Consumers' checks of one code on the scan page, summed up: how many, by how many
    distinct clients, in how many districts, and the first check. ``districts`` and
    ``first_district`` (the first check with a place) may be left out while the counts
    are below the rule's thresholds."""

    checks: int
    clients: int
    district_count: int
    first_at: datetime
    districts: tuple[str, ...] = ()
    first_district: str | None = None

    def could_be_copied(self, t: Thresholds) -> bool:
        return (
            self.clients >= t.copied_code_clients and self.district_count >= t.copied_code_districts
        )


def copied_code(
    serial: str, merchant_id: int, summary: CheckSummary, t: Thresholds
) -> Finding | None:
    """One genuine code checked by many consumers in many districts: the label has been
    copied onto other units. Repeated checks by one client count once. Party: the merchant
    whose label it is, so that it looks into its labelling and channel."""
    if not summary.could_be_copied(t):
        return None
    return Finding(
        "copied_code",
        MAJOR,
        ("code", serial),
        (("merchant", merchant_id),),
        {
            "checks": summary.checks,
            "clients": summary.clients,
            "districts": sorted(summary.districts),
            "first_check_at": summary.first_at.isoformat(),
            "first_check_district": summary.first_district,
        },
    )


@dataclass(frozen=True)
class FakeSightings:
    """Consumers' checks and reports of counterfeits under one product's GTIN within the
    window: never-issued codes, or genuine serials under the wrong link, each counted by its
    source network (never its cookie: docs/consumer.md)."""

    gtin: str
    networks: int
    checks: int
    reports: int
    districts: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()


def counterfeit_cluster(merchant_id: int, seen: FakeSightings, t: Thresholds) -> Finding | None:
    """Fakes of one product checked or reported from many networks: counterfeits of it are
    in circulation. Party: the product's merchant, as the *victim* (:data:`VICTIM_TYPES`):
    told so that it can act (its channel, a complaint to the police), never blamed."""
    if seen.networks < t.counterfeit_cluster_networks:
        return None
    return Finding(
        "counterfeit_cluster",
        MAJOR,
        ("product", seen.gtin),
        (("merchant", merchant_id),),
        {
            "role": "victim",
            "gtin": seen.gtin,
            "networks": seen.networks,
            "checks": seen.checks,
            "reports": seen.reports,
            "districts": sorted(seen.districts),
            "codes": sorted(seen.codes)[:50],
            "window_hours": t.counterfeit_cluster_hours,
        },
    )


# -- rules on a merchant's orders -------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """A merchant's order as the brushing rule sees it: when, and where it is going."""

    waybill: str
    time: datetime
    lat: float
    lon: float


def _cell(lat: float, lon: float, metres: float) -> tuple[int, int]:
    """A grid cell about ``metres`` wide: points in one cell count as one place."""
    step = metres / 111_000
    return round(lat / step), round(lon / step)


def brushing(
    merchant_id: int, orders: list[Order], signed: list[Scan], t: Thresholds
) -> list[Finding]:
    """刷单: many orders to few places within an hour, or many parcels signed at one point."""
    out = []
    ordered = sorted(orders, key=lambda o: o.time)
    start = 0
    for end, order in enumerate(ordered):
        while order.time - ordered[start].time > timedelta(hours=1):
            start += 1
        window = ordered[start : end + 1]
        if len(window) < t.brushing_min_orders:
            continue
        places = {_cell(o.lat, o.lon, t.brushing_point_m) for o in window}
        if len(window) / len(places) >= t.brushing_ratio:
            out.append(
                Finding(
                    "brushing",
                    SERIOUS,
                    ("merchant", merchant_id),
                    (("merchant", merchant_id),),
                    {
                        "why": "orders per consignee point in one hour",
                        "orders": len(window),
                        "points": len(places),
                        "from": window[0].time.isoformat(),
                        "to": window[-1].time.isoformat(),
                        "waybills": [o.waybill for o in window][:50],
                    },
                )
            )
            break
    by_place = defaultdict(list)
    for s in signed:
        if s.located and s.data.get("signer") != "locker":
            by_place[(_cell(s.lat, s.lon, t.brushing_point_m), s.time.date())].append(s)
    for (_, day), group in by_place.items():
        if len(group) >= t.brushing_same_point:
            out.append(
                Finding(
                    "brushing",
                    SERIOUS,
                    ("merchant", merchant_id),
                    (("merchant", merchant_id),),
                    {
                        "why": "many parcels signed at one point",
                        "parcels": len(group),
                        "day": day.isoformat(),
                        "event_ids": [s.event_id for s in group][:50],
                    },
                )
            )
            break
    return out
