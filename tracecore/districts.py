"""County-level districts (区, 县, 县级市; GB/T 2260 codes) from bundled boundary polygons.

What a public page may say about where something happened is the district, never finer:
:func:`locate` turns an event's (lat, lon) into its :class:`District`, and :func:`place_label`
into text such as "常州市天宁区" / "Tianning District, Changzhou". The regulator's map draws
the same polygons as SVG (:class:`MapProjection`, :func:`district_paths`), with no map tiles
from the internet.

The boundaries (``tracecore/data/districts.geojson``, see ``tracecore/data/README.md``) are those of
the Ministry of Civil Affairs' national administrative map for Changzhou (320400) and
Zhaoqing (441200), in WGS 84 longitude/latitude. They are generalised for small-scale maps:
a border may be off by a few hundred metres, and a shift in the source was corrected to within
about 50 m. That is right for district-level display and filtering; a point within a few
hundred metres of a border may be given to the neighbouring district, and a point on the coast
or a river bank just outside the drawn outline gives ``None``. Do not use this for anything
that needs the exact legal boundary.

Pure Python plus shapely: no Flask, no database. The file is read once, on first use.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

__all__ = [
    "DATA_PATH",
    "District",
    "MapProjection",
    "district",
    "district_paths",
    "districts",
    "locate",
    "place_label",
]

#: The bundled boundaries: a GeoJSON FeatureCollection, one Feature per district.
DATA_PATH = Path(__file__).resolve().parent / "data" / "districts.geojson"

_LANGS = ("zh", "en")


@dataclass(frozen=True)
class District:
    """A county-level district and its boundary.

    Equality and hashing use the names and codes only, not the geometry.
    """

    #: GB/T 2260 code, 6 digits, e.g. "320402".
    code: str
    #: Chinese name, e.g. "天宁区".
    name: str
    #: English name, e.g. "Tianning District".
    name_en: str
    #: Code of the prefecture-level city, e.g. "320400".
    city_code: str
    #: Chinese name of the city, e.g. "常州市".
    city: str
    #: English name of the city, e.g. "Changzhou".
    city_en: str
    #: Boundary, WGS 84 (lon, lat): a shapely Polygon or MultiPolygon.
    geometry: BaseGeometry = field(repr=False, compare=False)
    #: (min_lon, min_lat, max_lon, max_lat) of the boundary.
    bbox: tuple[float, float, float, float] = field(repr=False, compare=False)

    def label(self, lang: str = "zh") -> str:
        """District-level place text: "常州市天宁区" (zh) or "Tianning District, Changzhou" (en)."""
        if lang == "zh":
            return f"{self.city}{self.name}"
        if lang == "en":
            return f"{self.name_en}, {self.city_en}"
        raise ValueError(f"lang must be one of {_LANGS}, not {lang!r}")


#: Side of the lookup grid's cells, degrees (about 2 km).
_CELL = 0.02


@dataclass(frozen=True)
class _Index:
    """The loaded districts, ordered by code, and a grid for fast point lookups.

    ``cells`` maps a grid cell (floor(lon / _CELL), floor(lat / _CELL)) to the district that
    covers the whole cell, or to the districts whose boundary passes through it (to test with
    the prepared geometry). Cells that touch no district are absent.
    """

    all: tuple[District, ...]
    by_code: dict[str, District]
    cells: dict[tuple[int, int], District | tuple[District, ...]]


def _grid(found: tuple[District, ...]) -> dict[tuple[int, int], District | tuple[District, ...]]:
    """The lookup grid of :class:`_Index` over the bounding boxes of ``found``."""
    keys = sorted(
        {
            (i, j)
            for d in found
            for i in range(math.floor(d.bbox[0] / _CELL), math.floor(d.bbox[2] / _CELL) + 1)
            for j in range(math.floor(d.bbox[1] / _CELL), math.floor(d.bbox[3] / _CELL) + 1)
        }
    )
    boxes = shapely.box(
        [i * _CELL for i, _ in keys],
        [j * _CELL for _, j in keys],
        [(i + 1) * _CELL for i, _ in keys],
        [(j + 1) * _CELL for _, j in keys],
    )
    # The districts (prepared) are the query side: much faster than the other way round.
    tree = shapely.STRtree(boxes)
    geometries = [d.geometry for d in found]
    inside = tree.query(geometries, predicate="contains_properly").tolist()
    covered = {cell: district_index for district_index, cell in zip(*inside, strict=True)}
    touching: dict[int, list[int]] = {}
    for district_index, cell in zip(
        *tree.query(geometries, predicate="intersects").tolist(), strict=True
    ):
        touching.setdefault(cell, []).append(district_index)
    cells: dict[tuple[int, int], District | tuple[District, ...]] = {}
    for cell, key in enumerate(keys):
        if cell in covered:
            cells[key] = found[covered[cell]]
        elif cell in touching:
            cells[key] = tuple(found[k] for k in sorted(touching[cell]))
    return cells


def _district(feature: dict) -> District:
    """A District from a GeoJSON feature, its geometry prepared."""
    props = feature["properties"]
    geometry = shape(feature["geometry"])
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise ValueError(f"district {props['code']}: not a polygon")
    shapely.prepare(geometry)  # makes the point-in-polygon tests fast
    return District(
        code=props["code"],
        name=props["name"],
        name_en=props["name_en"],
        city_code=props["city_code"],
        city=props["city"],
        city_en=props["city_en"],
        geometry=geometry,
        bbox=tuple(geometry.bounds),
    )


@functools.cache
def _index() -> _Index:
    """Read the bundled file and index it, once per process."""
    with DATA_PATH.open(encoding="utf-8") as f:
        collection = json.load(f)
    found = tuple(sorted((_district(f) for f in collection["features"]), key=lambda d: d.code))
    return _Index(all=found, by_code={d.code: d for d in found}, cells=_grid(found))


def district(code: str) -> District | None:
    """The district with this GB/T 2260 code, or None if it is not in the bundled data."""
    return _index().by_code.get(code)


def districts(prefix: str = "") -> list[District]:
    """The bundled districts whose code starts with ``prefix``, ordered by code.

    ``"3204"`` gives Changzhou's, ``"32"`` those in Jiangsu, ``""`` all of them.
    """
    return [d for d in _index().all if d.code.startswith(prefix)]


def locate(lat: float, lon: float) -> District | None:
    """The district that contains the point (WGS 84 degrees), or None when none does.

    A point exactly on a shared border goes to one of the two. Not a number gives None.
    A grid lookup first; prepared point-in-polygon tests only near borders.
    """
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    entry = _index().cells.get((math.floor(lon / _CELL), math.floor(lat / _CELL)))
    if entry is None or isinstance(entry, District):
        return entry
    for candidate in entry:
        if shapely.intersects_xy(candidate.geometry, lon, lat):
            return candidate
    return None


def place_label(lat: float, lon: float, lang: str = "zh") -> str | None:
    """Where the point is, to the district and no finer, e.g. "常州市天宁区".

    ``lang="en"`` gives "Tianning District, Changzhou". None when the point is in no bundled
    district: the caller decides what to show then (e.g. the province, or nothing).
    """
    if lang not in _LANGS:
        raise ValueError(f"lang must be one of {_LANGS}, not {lang!r}")
    found = locate(lat, lon)
    return found.label(lang) if found else None


@dataclass(frozen=True)
class MapProjection:
    """Longitude/latitude to SVG user units (x right, y down) and back.

    Equirectangular, with longitudes scaled by the cosine of the middle latitude so that
    shapes look right at this scale (a city is a degree or two across). Build one with
    :meth:`for_districts`; the SVG is ``width`` x ``height``, see :attr:`view_box`.
    """

    #: The area shown, degrees: (min_lon, min_lat, max_lon, max_lat), margin included.
    bbox: tuple[float, float, float, float]
    #: Width of the drawing in SVG user units (px).
    width: float = 800.0

    def __post_init__(self) -> None:
        min_lon, min_lat, max_lon, max_lat = self.bbox
        if not (min_lon < max_lon and min_lat < max_lat) or self.width <= 0:
            raise ValueError(f"empty map area {self.bbox} or width {self.width}")

    @classmethod
    def for_districts(
        cls, shown: Iterable[District], width: float = 800.0, margin: float = 0.03
    ) -> MapProjection:
        """A projection showing all of ``shown``, with ``margin`` (a fraction of the larger
        side) added around their joint bounding box."""
        boxes = [d.bbox for d in shown]
        if not boxes:
            raise ValueError("no districts to show")
        min_lon = min(b[0] for b in boxes)
        min_lat = min(b[1] for b in boxes)
        max_lon = max(b[2] for b in boxes)
        max_lat = max(b[3] for b in boxes)
        pad = margin * max(max_lon - min_lon, max_lat - min_lat)
        return cls((min_lon - pad, min_lat - pad, max_lon + pad, max_lat + pad), width)

    @property
    def _kx(self) -> float:
        """Longitude degrees -> x: cos(middle latitude) folded into the scale."""
        return self.width / (self.bbox[2] - self.bbox[0])

    @property
    def _ky(self) -> float:
        """Latitude degrees -> y."""
        mid = math.radians((self.bbox[1] + self.bbox[3]) / 2)
        return self._kx / math.cos(mid)

    @property
    def height(self) -> float:
        """Height of the drawing in SVG user units."""
        return (self.bbox[3] - self.bbox[1]) * self._ky

    @property
    def view_box(self) -> str:
        """The SVG ``viewBox`` attribute, e.g. "0 0 800 612.4"."""
        return f"0 0 {_num(self.width)} {_num(self.height)}"

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        """(lon, lat) -> (x, y) in the SVG. Note the order: longitude first, as in GeoJSON."""
        return ((lon - self.bbox[0]) * self._kx, (self.bbox[3] - lat) * self._ky)

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        """(x, y) in the SVG -> (lon, lat): the inverse of :meth:`to_xy`."""
        return (self.bbox[0] + x / self._kx, self.bbox[3] - y / self._ky)

    def box_to_lonlat(
        self, x1: float, y1: float, x2: float, y2: float
    ) -> tuple[float, float, float, float]:
        """A box drawn on the map (any two opposite corners) -> (min_lon, min_lat, max_lon,
        max_lat), for a draw-a-box search."""
        lon1, lat1 = self.to_lonlat(x1, y1)
        lon2, lat2 = self.to_lonlat(x2, y2)
        return (min(lon1, lon2), min(lat1, lat2), max(lon1, lon2), max(lat1, lat2))


def _num(value: float) -> str:
    """One decimal, without a useless ".0" or "-0"."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _ring_path(projection: MapProjection, coords: Iterable[tuple[float, float]]) -> str:
    """One closed subpath: "M x y L x y ... Z"."""
    points: list[str] = []
    for lon, lat in coords:
        x, y = projection.to_xy(lon, lat)
        point = f"{_num(x)} {_num(y)}"
        if not points or points[-1] != point:  # vertices that round to the same spot
            points.append(point)
    if len(points) > 1 and points[-1] == points[0]:
        points.pop()  # "Z" closes the ring
    return "M" + points[0] + "".join("L" + p for p in points[1:]) + "Z"


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    """The polygons of a Polygon or MultiPolygon."""
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    raise TypeError(f"not a polygon: {geometry.geom_type}")


def district_paths(
    projection: MapProjection, shown: Iterable[District] | None = None
) -> list[tuple[District, str]]:
    """SVG path data ("M x y L x y ... Z", one decimal) for each district's boundary.

    One subpath (one "M") per ring: each polygon's outline, then its holes. Outlines and
    holes are wound in opposite directions, so holes stay empty with either SVG fill rule.
    ``shown`` defaults to every bundled district.
    """
    result = []
    for item in districts() if shown is None else shown:
        rings = []
        for polygon in _polygons(item.geometry):
            polygon = orient(polygon, 1.0)
            rings.append(_ring_path(projection, polygon.exterior.coords))
            rings.extend(_ring_path(projection, hole.coords) for hole in polygon.interiors)
        result.append((item, "".join(rings)))
    return result
