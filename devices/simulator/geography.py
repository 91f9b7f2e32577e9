"""The simulator's map: the districts it trades in (GB/T 2260 codes and their centres), China
Standard Time, and great-circle distances and offsets. Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta, timezone

#: China Standard Time: what the devices' clocks show.
CST = timezone(timedelta(hours=8), "CST")


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
    """The district whose centre is nearest (lat, lon), if within ``within_km``."""
    best = min(DISTRICTS, key=lambda d: distance_km(lat, lon, d.lat, d.lon))
    return best if distance_km(lat, lon, best.lat, best.lon) <= within_km else None


def nearest_district_by_name(place: str) -> District | None:
    """The first district whose name appears in ``place`` (e.g. "常州市溧阳市")."""
    for district in DISTRICTS:
        if district.name in place:
            return district
    return None
