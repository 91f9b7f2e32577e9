"""The regulator's map: a city's districts drawn from the bundled boundaries (no tiles from
the internet), with anomalies and recent events as points. The district filter and the
drawn box are spatial queries in the database (PostGIS ``ST_Within`` with its GiST index;
on SpatiaLite, the R*Tree index narrows the rows before ``ST_Within``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.anomalies.findings import visible_anomalies
from app.credit.models import Anomaly
from app.events.models import Event
from tracecore import districts
from tracecore.access import Principal
from tracecore.errors import ValidationError

MAX_ANOMALIES = 500
MAX_EVENTS = 2000
#: What ``days`` may be: 1 to 90 (anything else shows the default week).
_DAYS = frozenset(str(n) for n in range(1, 91))


def _float(args, name: str) -> float | None:
    raw = args.get(name, "")
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a number of degrees", field=name) from None
    if value != value or abs(value) > 180:
        raise ValidationError(f"{name} must be a number of degrees", field=name)
    return value


@dataclass(frozen=True)
class MapQuery:
    """What the map (and the anomaly queue's place filter) is narrowed to."""

    city: str = ""  #: a 4-digit city prefix whose districts are drawn
    district: str = ""  #: a 6-digit district code: only what lies within it
    box: tuple[float, float, float, float] | None = None  #: min lon, min lat, max lon, max lat
    days: int = 7  #: events of the last this many days

    @classmethod
    def from_args(cls, args) -> MapQuery:
        district = args.get("district", "").strip()
        if district and districts.district(district) is None:
            raise ValidationError("district: a code from the bundled map", field="district")
        corners = [_float(args, n) for n in ("min_lon", "min_lat", "max_lon", "max_lat")]
        box = None
        if any(c is not None for c in corners):
            if any(c is None for c in corners):
                raise ValidationError("a box needs all four corners", field="min_lon")
            min_lon, min_lat, max_lon, max_lat = corners
            ordered = min_lon < max_lon and min_lat < max_lat
            if not ordered or max(abs(min_lat), abs(max_lat)) > 90:
                raise ValidationError("the box's corners are out of order", field="min_lon")
            box = (min_lon, min_lat, max_lon, max_lat)
        days = args.get("days", "7")
        city = args.get("city", "").strip()
        if city and not (len(city) == 4 and city.isdigit()):
            raise ValidationError("city: 4 digits of a region code", field="city")
        return cls(
            city=city or (district[:4] if district else ""),
            district=district,
            box=box,
            days=int(days) if days in _DAYS else 7,
        )

    def area_wkt(self) -> str | None:
        """The area asked for, as WGS 84 WKT: the box, else the district's boundary."""
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            return f"POLYGON(({x1} {y1},{x2} {y1},{x2} {y2},{x1} {y2},{x1} {y1}))"
        if self.district:
            return districts.district(self.district).geometry.wkt
        return None

    def bounds(self) -> tuple[float, float, float, float] | None:
        if self.box is not None:
            return self.box
        if self.district:
            return districts.district(self.district).bbox
        return None

    def describe(self) -> str:
        return f"city={self.city} district={self.district} box={self.box} days={self.days}"


def _within(session: Session, column, table: str, query: MapQuery):
    """``column`` within the asked area, using the spatial index on both engines."""
    wkt = query.area_wkt()
    if wkt is None:
        return sa.true()
    area = sa.func.ST_GeomFromText(wkt, 4326)
    inside = sa.func.ST_Within(column, area).is_(sa.true())
    if session.get_bind().dialect.name == "sqlite":
        x1, y1, x2, y2 = query.bounds()
        indexed = sa.text(
            f"{table}.ROWID IN (SELECT ROWID FROM SpatialIndex WHERE f_table_name = '{table}' "
            "AND f_geometry_column = 'location' AND search_frame = BuildMbr(:x1, :y1, :x2, :y2))"
        ).bindparams(x1=x1, y1=y1, x2=x2, y2=y2)
        return sa.and_(indexed, inside)
    return inside


@dataclass
class MapView:
    projection: districts.MapProjection
    paths: list  #: (District, path data)
    labels: list  #: (District, x, y): a point inside each district for its name
    cities: list[tuple[str, str]]  #: (4-digit prefix, name) the viewer may pick
    anomalies: list[dict]
    events: list[dict]
    counts: Counter  #: anomalies per district code
    #: How many anomalies and events the area holds (the drawn ones are at most
    #: MAX_ANOMALIES and MAX_EVENTS of them, the newest): the page says so.
    anomalies_total: int = 0
    events_total: int = 0


def cities_of(viewer: Principal) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for d in districts.districts():
        if viewer.covers(d.code) or any(p.startswith(d.code[:4]) for p in viewer.jurisdiction):
            seen.setdefault(d.code[:4], d.city)
    return sorted(seen.items())


def map_view(session: Session, viewer: Principal, query: MapQuery) -> MapView:
    """The districts of the chosen city and the points in the asked area."""
    cities = cities_of(viewer)
    if not cities:
        raise ValidationError("no bundled map covers your jurisdiction", field="city")
    city = query.city if query.city in dict(cities) else cities[0][0]
    shown = districts.districts(city)
    projection = districts.MapProjection.for_districts(shown)
    if query.area_wkt() is None:  # the city drawn: never the newest points of elsewhere
        query = replace(query, box=projection.bbox)
    x = sa.func.ST_X(Anomaly.location)
    y = sa.func.ST_Y(Anomaly.location)
    anomalies_shown = (
        visible_anomalies(viewer)
        .where(Anomaly.location.is_not(None), Anomaly.status.not_in(("dismissed", "withdrawn")))
        .where(_within(session, Anomaly.location, "anomalies", query))
    )
    found = session.execute(
        anomalies_shown.with_only_columns(
            Anomaly.id,
            Anomaly.type,
            Anomaly.severity,
            Anomaly.status,
            x,
            y,
            Anomaly.subject_type,
            Anomaly.subject,
        ).limit(MAX_ANOMALIES)
    ).all()
    since = datetime.now(UTC) - timedelta(days=query.days)
    ex, ey = sa.func.ST_X(Event.location), sa.func.ST_Y(Event.location)
    events_shown = (
        sa.select(Event.type, ex, ey, Event.serial, Event.waybill)
        .where(Event.location.is_not(None), Event.occurred_at >= since)
        .where(_within(session, Event.location, "events", query))
    )
    events = session.execute(
        events_shown.order_by(Event.occurred_at.desc()).limit(MAX_EVENTS)
    ).all()
    # Counted only when the drawing is capped (events: in the area, near its edge perhaps
    # outside the jurisdiction, which are not drawn).
    totals = [
        len(rows)
        if len(rows) < cap
        else session.scalar(sa.select(sa.func.count()).select_from(shown.order_by(None).subquery()))
        for rows, cap, shown in (
            (found, MAX_ANOMALIES, anomalies_shown),
            (events, MAX_EVENTS, events_shown),
        )
    ]
    counts: Counter = Counter()
    anomalies = []
    for row in found:
        place = districts.locate(row[5], row[4])
        if place is not None:
            counts[place.code] += 1
        px, py = projection.to_xy(row[4], row[5])
        anomalies.append(
            {
                "id": row[0],
                "type": row[1],
                "severity": row[2],
                "status": row[3],
                "x": px,
                "y": py,
                "href": _subject_href(row[6], row[7]),
            }
        )
    points = []
    for kind, lon, lat, serial, waybill in events:
        place = districts.locate(lat, lon)
        if not viewer.covers(place.code if place else None):
            continue  # events are shown only inside the viewer's own jurisdiction
        px, py = projection.to_xy(lon, lat)
        if 0 <= px <= projection.width and 0 <= py <= projection.height:
            href = f"/workspace/codes/{serial}" if serial else f"/workspace/parcels/{waybill}"
            points.append({"type": kind, "x": px, "y": py, "href": href})
    if totals[1] == len(events):  # not capped: what the viewer may see, all drawn
        totals[1] = len(points)
    labels = []
    for d in shown:
        inside = d.geometry.representative_point()  # inside even for a crescent-shaped one
        labels.append((d, *projection.to_xy(inside.x, inside.y)))
    return MapView(
        projection,
        districts.district_paths(projection, shown),
        labels,
        cities,
        anomalies,
        points,
        counts,
        *totals,
    )


def _subject_href(subject_type: str, subject: str) -> str | None:
    """The page of an anomaly's subject: its history."""
    return {
        "code": f"/workspace/codes/{subject}",
        "waybill": f"/workspace/parcels/{subject}",
        "batch": f"/workspace/batches/{subject}",
        "merchant": f"/workspace/parties/merchant/{subject}",
    }.get(subject_type)
