"""Build tracecore/data/districts.geojson from the stored MCA TopoJSON files, offline.

Usage (from the repository root)::

    .venv/bin/python scripts/make_districts.py [--tolerance 0.001] [--check]

Inputs are ``scripts/data/mca-320400.topo.json`` (Changzhou) and
``scripts/data/mca-441200.topo.json`` (Zhaoqing), copied verbatim from
bh1xuw/mca-administrative (see tracecore/data/README.md). They are quantized TopoJSON in CRS84
(WGS 84 / CGCS2000 longitude, latitude), one Polygon per county-level district plus the
neighbouring prefectures and a frame.

The source coordinates are all shifted by the same amount, about +0.1283 deg in longitude and
+0.1294 deg in latitude (some 13 km to the north-east), in both cities: a georeferencing slip in
that repository's conversion, not a datum (GCJ-02 moves points by a few hundred metres only,
and by different amounts in different places). :data:`OFFSET` takes it off. It was fitted
against the district centroids of the DataV.GeoAtlas files (GCJ-02, converted to WGS 84 with
the published GCJ-02 formula): ``--fit`` recomputes it from :data:`REFERENCE_CENTROIDS`; the
13 districts agree to within 0.0004 deg (about 40 m), far and near alike, so it is a pure
translation with no scale error.

The district polygons share their borders as TopoJSON arcs, so the simplification is done per
arc (shapely ``simplify(tolerance, preserve_topology=True)``, which keeps an arc's end points)
and the rings are assembled afterwards: neighbours keep exactly the same border, with no gaps
or slivers, which simplifying each polygon on its own would not give. ``--check`` rebuilds and
fails if the bundled file differs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from shapely.geometry import LineString, Polygon, mapping
from shapely.geometry.polygon import orient

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (
    ROOT / "scripts" / "data" / "mca-320400.topo.json",
    ROOT / "scripts" / "data" / "mca-441200.topo.json",
)
OUTPUT = ROOT / "tracecore" / "data" / "districts.geojson"
DECIMALS = 5

#: What to subtract from the source's (lon, lat): see the module docstring and ``--fit``.
OFFSET = (0.1283, 0.1294)

#: DataV.GeoAtlas "centroid" of each district (GCJ-02), from anzhou99/GeoJsons 320400_full.json
#: (commit c509f3ad) and 441200_full.json (commit 6137cf53); 441204 has none there.
REFERENCE_CENTROIDS = {
    "320402": (120.060044, 31.801986),
    "320404": (119.858011, 31.787817),
    "320411": (119.886314, 31.924334),
    "320412": (119.940815, 31.638666),
    "320413": (119.509004, 31.717248),
    "320481": (119.376273, 31.419784),
    "441202": (112.470621, 23.096495),
    "441203": (112.615469, 23.202773),
    "441223": (112.436824, 23.671637),
    "441224": (112.172042, 23.96359),
    "441225": (111.717063, 23.555962),
    "441226": (111.979778, 23.270087),
    "441284": (112.681175, 23.424341),
}

#: Cities: code -> (Chinese name, English name).
CITIES = {
    "320400": ("常州市", "Changzhou"),
    "441200": ("肇庆市", "Zhaoqing"),
}

#: The districts to keep: code -> English name. Order is the order of the output file.
DISTRICTS_EN = {
    "320402": "Tianning District",
    "320404": "Zhonglou District",
    "320411": "Xinbei District",
    "320412": "Wujin District",
    "320413": "Jintan District",
    "320481": "Liyang City",
    "441202": "Duanzhou District",
    "441203": "Dinghu District",
    "441204": "Gaoyao District",
    "441223": "Guangning County",
    "441224": "Huaiji County",
    "441225": "Fengkai County",
    "441226": "Deqing County",
    "441284": "Sihui City",
}

#: Codes in the source that were renumbered since: 高要市 became 高要区 (441204) in 2015.
RENUMBERED = {"441283": "441204"}


def decode_arcs(topology: dict) -> list[list[tuple[int, int]]]:
    """Undo the delta encoding of quantized arcs: absolute integer grid positions."""
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x, y))
        arcs.append(points)
    return arcs


def ring_arcs(arcs: list[list[tuple[int, int]]], indexes: list[int]) -> list[list[tuple[int, int]]]:
    """The arcs of one ring in ring order (a negative index ``~i`` is arc ``i`` reversed).

    Raises ValueError when consecutive arcs do not meet or the ring does not close: that is
    how a damaged source file shows.
    """
    parts = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in indexes]
    for before, after in zip(parts, [*parts[1:], parts[0]], strict=True):
        if before[-1] != after[0]:
            raise ValueError(f"arcs {indexes} do not join at {before[-1]} / {after[0]}")
    return parts


def to_lonlat(
    transform: dict, point: tuple[float, float], offset: tuple[float, float] = OFFSET
) -> tuple[float, float]:
    """Grid position -> WGS 84 (lon, lat), the source's shift taken off."""
    (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
    return (point[0] * sx + tx - offset[0], point[1] * sy + ty - offset[1])


def simplified_arcs(
    topology: dict, tolerance: float, offset: tuple[float, float] = OFFSET
) -> list[list[tuple[float, float]]]:
    """Every arc in lon/lat, simplified (end points kept) and rounded."""
    result = []
    for grid in decode_arcs(topology):
        line = [to_lonlat(topology["transform"], p, offset) for p in grid]
        if tolerance > 0 and len(line) > 2:
            line = list(LineString(line).simplify(tolerance, preserve_topology=True).coords)
        result.append([(round(x, DECIMALS), round(y, DECIMALS)) for x, y in line])
    return result


def assemble(parts: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Join a ring's arcs, dropping the repeated point where two arcs meet."""
    ring = list(parts[0])
    for part in parts[1:]:
        ring.extend(part[1:])
    return ring


def features(path: Path, tolerance: float, offset: tuple[float, float] = OFFSET) -> list[dict]:
    """The GeoJSON features of the wanted districts in one MCA TopoJSON file."""
    topology = json.loads(path.read_text(encoding="utf-8"))
    (city_code,) = topology["objects"]
    grid_arcs = decode_arcs(topology)
    lonlat_arcs = simplified_arcs(topology, tolerance, offset)
    result = []
    for geometry in topology["objects"][city_code]["geometries"]:
        code = geometry["properties"]["QUHUADAIMA"]
        code = RENUMBERED.get(code, code)
        if code not in DISTRICTS_EN:
            continue
        if geometry["type"] != "Polygon":
            raise ValueError(f"{code}: unexpected {geometry['type']}")
        rings = []
        for indexes in geometry["arcs"]:
            ring_arcs(grid_arcs, indexes)  # the checks, on the exact grid
            parts = [lonlat_arcs[i] if i >= 0 else lonlat_arcs[~i][::-1] for i in indexes]
            rings.append(assemble(parts))
        polygon = orient(Polygon(rings[0], rings[1:]), 1.0)  # RFC 7946: exterior CCW
        if not polygon.is_valid:
            raise ValueError(f"{code}: invalid after simplification; lower the tolerance")
        city, city_en = CITIES[code[:4] + "00"]
        result.append(
            {
                "type": "Feature",
                "properties": {
                    "code": code,
                    "name": geometry["properties"]["NAME"],
                    "name_en": DISTRICTS_EN[code],
                    "city_code": code[:4] + "00",
                    "city": city,
                    "city_en": city_en,
                },
                "geometry": mapping(polygon),
            }
        )
    return result


def _gcj_delta(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 shift at a WGS 84 point (the widely published formula), in degrees."""
    x, y = lon - 105.0, lat - 35.0
    a, ee = 6378245.0, 0.00669342162296594323
    common = (20 * math.sin(6 * x * math.pi) + 20 * math.sin(2 * x * math.pi)) * 2 / 3
    dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + common
    dlat += (20 * math.sin(y * math.pi) + 40 * math.sin(y / 3 * math.pi)) * 2 / 3
    dlat += (160 * math.sin(y / 12 * math.pi) + 320 * math.sin(y * math.pi / 30)) * 2 / 3
    dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + common
    dlon += (20 * math.sin(x * math.pi) + 40 * math.sin(x / 3 * math.pi)) * 2 / 3
    dlon += (150 * math.sin(x / 12 * math.pi) + 300 * math.sin(x / 30 * math.pi)) * 2 / 3
    rad = math.radians(lat)
    magic = 1 - ee * math.sin(rad) ** 2
    dlat = dlat * 180 / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = dlon * 180 / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return dlon, dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Invert GCJ-02 by fixed-point iteration (converges to well under a metre)."""
    wlon, wlat = lon, lat
    for _ in range(10):
        dlon, dlat = _gcj_delta(wlon, wlat)
        wlon, wlat = lon - dlon, lat - dlat
    return wlon, wlat


def fit_offset() -> None:
    """Print the source's shift measured at every reference centroid, and the mean."""
    raw = {
        f["properties"]["code"]: Polygon(f["geometry"]["coordinates"][0]).centroid
        for source in SOURCES
        for f in features(source, 0.0, (0.0, 0.0))
    }
    shifts = []
    for code, (lon, lat) in REFERENCE_CENTROIDS.items():
        wlon, wlat = gcj02_to_wgs84(lon, lat)
        shifts.append((raw[code].x - wlon, raw[code].y - wlat))
        print(f"{code} {shifts[-1][0]:+.4f} {shifts[-1][1]:+.4f}")
    dx, dy = zip(*shifts, strict=True)
    print(
        f"mean {statistics.mean(dx):+.5f} (sd {statistics.stdev(dx):.5f}) "
        f"{statistics.mean(dy):+.5f} (sd {statistics.stdev(dy):.5f})"
    )


def render(tolerance: float) -> str:
    """The whole output file: one feature per line, so that a change reads as a diff."""
    found = [f for source in SOURCES for f in features(source, tolerance)]
    found.sort(key=lambda f: list(DISTRICTS_EN).index(f["properties"]["code"]))
    missing = set(DISTRICTS_EN) - {f["properties"]["code"] for f in found}
    if missing:
        raise ValueError(f"not in the sources: {sorted(missing)}")
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in found]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) tracecore/data/districts.geojson."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance", type=float, default=0.001, help="degrees")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    parser.add_argument("--fit", action="store_true", help="measure the source's shift")
    args = parser.parse_args(argv)
    if args.fit:
        fit_offset()
        return 0
    text = render(args.tolerance)
    if args.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run scripts/make_districts.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
