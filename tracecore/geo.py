"""Distances and speeds on the WGS 84 sphere, for the anomaly rules."""

from __future__ import annotations

import math
from datetime import datetime

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula (error well under 0.5 %)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def speed_kmh(km: float, start: datetime, end: datetime) -> float:
    """Implied speed; infinite when a distance is covered in no time."""
    hours = (end - start).total_seconds() / 3600
    if hours <= 0:
        return math.inf if km > 0 else 0.0
    return km / hours
