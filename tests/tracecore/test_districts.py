"""Districts from the bundled boundaries: lookup, labels, and the SVG map helpers."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.ops import unary_union

from tracecore import districts as geo
from tracecore.districts import District, MapProjection, district, district_paths, districts, locate

ROOT = Path(__file__).resolve().parents[2]

# fmt: off
#: Every district the data must hold: code -> (name, English name, city).
EXPECTED = {
    "320402": ("天宁区", "Tianning District", "常州市"),
    "320404": ("钟楼区", "Zhonglou District", "常州市"),
    "320411": ("新北区", "Xinbei District", "常州市"),
    "320412": ("武进区", "Wujin District", "常州市"),
    "320413": ("金坛区", "Jintan District", "常州市"),
    "320481": ("溧阳市", "Liyang City", "常州市"),
    "441202": ("端州区", "Duanzhou District", "肇庆市"),
    "441203": ("鼎湖区", "Dinghu District", "肇庆市"),
    "441204": ("高要区", "Gaoyao District", "肇庆市"),
    "441223": ("广宁县", "Guangning County", "肇庆市"),
    "441224": ("怀集县", "Huaiji County", "肇庆市"),
    "441225": ("封开县", "Fengkai County", "肇庆市"),
    "441226": ("德庆县", "Deqing County", "肇庆市"),
    "441284": ("四会市", "Sihui City", "肇庆市"),
}

#: (lat, lon) of a point in each district. The first ten are the centres that
#: devices/simulator/geography.py uses for its traffic; the last four are the county seats
#: (the DataV "center" of each county, converted from GCJ-02 to WGS 84).
SEATS = {
    "320402": (31.78, 119.98), "320404": (31.80, 119.93), "320411": (31.83, 119.97),
    "320412": (31.70, 119.94), "320413": (31.72, 119.57), "320481": (31.42, 119.48),
    "441202": (23.05, 112.47), "441203": (23.16, 112.56), "441204": (23.03, 112.46),
    "441284": (23.33, 112.73),
    "441223": (23.634, 112.435), "441224": (23.916, 112.177), "441225": (23.437, 111.498),
    "441226": (23.144, 111.776),
}
# fmt: on

#: Seats of government about 1.5 km apart on either side of a shared border, WGS 84.
TIANNING_GOVERNMENT, ZHONGLOU_GOVERNMENT = (31.7817, 119.9591), (31.7831, 119.9437)


@pytest.mark.parametrize("code", sorted(SEATS))
def test_each_seat_locates_to_its_district(code: str) -> None:
    """Does a point known to be in each district locate to that district?"""
    found = locate(*SEATS[code])
    assert found is not None
    assert found.code == code


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        pytest.param(39.9, 116.4, id="beijing"),
        pytest.param(30.0, 125.0, id="east-china-sea"),
        pytest.param(32.06, 118.80, id="nanjing"),
        pytest.param(31.57, 120.30, id="wuxi"),
        pytest.param(23.13, 113.26, id="guangzhou"),
        pytest.param(23.48, 111.28, id="wuzhou-guangxi"),
        pytest.param(0.0, 0.0, id="null-island"),
        pytest.param(math.nan, 119.98, id="nan"),
        pytest.param(31.78, math.inf, id="inf"),
    ],
)
def test_points_outside_every_district_locate_to_none(lat: float, lon: float) -> None:
    """Are places outside the bundled districts, and non-numbers, given no district?"""
    assert locate(lat, lon) is None
    assert geo.place_label(lat, lon) is None


def test_neighbouring_seats_are_not_swapped() -> None:
    """Do two seats 1.5 km apart across the Tianning/Zhonglou border each get their own?"""
    assert locate(*TIANNING_GOVERNMENT).code == "320402"
    assert locate(*ZHONGLOU_GOVERNMENT).code == "320404"


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_a_point_inside_a_district_is_not_given_to_a_neighbour(code: str) -> None:
    """Does a point inside each district's outline (not its bounding box) locate to it?"""
    inside = district(code).geometry.representative_point()
    assert locate(inside.y, inside.x).code == code


@pytest.mark.slow  # every district against every sampled point, seconds
def test_locate_agrees_with_a_brute_force_search() -> None:
    """Does the grid lookup give the same answer as testing every polygon, near borders too?"""
    for city in ("3204", "4412"):
        shown = districts(city)
        min_lon = min(d.bbox[0] for d in shown)
        min_lat = min(d.bbox[1] for d in shown)
        max_lon = max(d.bbox[2] for d in shown)
        max_lat = max(d.bbox[3] for d in shown)
        steps = 60
        for i in range(steps + 1):
            for j in range(steps + 1):
                lon = min_lon + (max_lon - min_lon) * i / steps + 1e-4
                lat = min_lat + (max_lat - min_lat) * j / steps + 1e-4
                containing = {d.code for d in shown if d.geometry.covers(Point(lon, lat))}
                found = locate(lat, lon)
                assert (found.code if found else None) in (containing or {None})


def test_every_geometry_is_valid_and_nonempty() -> None:
    """Is every district a valid, non-empty polygon?"""
    for item in districts():
        assert isinstance(item.geometry, Polygon | MultiPolygon)
        assert item.geometry.is_valid, item.code
        assert item.geometry.area > 0.001  # square degrees: about 10 km², the smallest is 100+


def test_districts_of_a_city_do_not_overlap() -> None:
    """Do the districts of each city share borders without overlapping?"""
    for city in ("3204", "4412"):
        for a, b in combinations(districts(city), 2):
            assert a.geometry.intersection(b.geometry).area < 1e-7, (a.code, b.code)


def test_districts_of_a_city_leave_no_gaps_between_them() -> None:
    """Is each city's outline one piece, with no slivers between neighbours?"""
    for city in ("3204", "4412"):
        union = unary_union([d.geometry for d in districts(city)])
        assert isinstance(union, Polygon)
        assert not union.interiors


def test_bundled_file_lists_every_district_with_names() -> None:
    """Does the GeoJSON hold each expected code once, with its names and city?"""
    collection = json.loads(geo.DATA_PATH.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    found = {}
    for feature in collection["features"]:
        props = feature["properties"]
        assert props["code"] not in found
        found[props["code"]] = (props["name"], props["name_en"], props["city"])
        assert props["city_code"] == props["code"][:4] + "00"
        assert props.get("approximate") is not True
    assert found == EXPECTED


def test_bundled_file_stays_small() -> None:
    """Is the bundled file small enough to ship and to load on first use?"""
    assert geo.DATA_PATH.stat().st_size < 150_000


def test_district_and_districts_look_up_by_code_and_prefix() -> None:
    """Do the lookups by code and by code prefix give the right districts, in code order?"""
    assert district("320402").name == "天宁区"
    assert district("320402").city_en == "Changzhou"
    assert district("441283") is None  # 高要市's code before it became 高要区 (441204)
    assert district("") is None
    assert [d.code for d in districts("3204")] == sorted(c for c in EXPECTED if c[:4] == "3204")
    assert len(districts("4412")) == 8
    assert [d.code for d in districts()] == sorted(EXPECTED)
    assert districts("11") == []


def test_district_bbox_is_the_bounds_of_its_geometry() -> None:
    """Is the bounding box (min_lon, min_lat, max_lon, max_lat) that of the outline?"""
    item = district("441224")
    assert item.bbox == item.geometry.bounds
    assert item.bbox[0] < item.bbox[2] and item.bbox[1] < item.bbox[3]


def test_place_label_in_chinese_and_english() -> None:
    """Is the label city + district, in either language?"""
    assert geo.place_label(*SEATS["320402"]) == "常州市天宁区"
    assert geo.place_label(*SEATS["320402"], lang="en") == "Tianning District, Changzhou"
    assert geo.place_label(*SEATS["320481"], lang="en") == "Liyang City, Changzhou"
    assert geo.place_label(*SEATS["441225"]) == "肇庆市封开县"


def test_place_label_rejects_an_unknown_language() -> None:
    """Is a language other than zh or en an error rather than a guess?"""
    with pytest.raises(ValueError, match="lang"):
        geo.place_label(*SEATS["320402"], lang="fr")


def test_place_label_is_never_finer_than_a_district() -> None:
    """Over a grid of points, is every label exactly one of the district labels?"""
    allowed = {lang: {d.label(lang) for d in districts()} for lang in ("zh", "en")}
    seen = set()
    for lat10 in range(225, 325, 2):
        for lon10 in range(1110, 1205, 2):
            for lang in ("zh", "en"):
                label = geo.place_label(lat10 / 10, lon10 / 10, lang)
                if label is not None:
                    assert label in allowed[lang]
                    assert not re.search(r"[0-9路街号镇乡村]", label)
                    seen.add(label)
    assert len(seen) > 10


def test_districts_compare_by_identity_fields_not_geometry() -> None:
    """Are two District values with the same codes and names equal and hashable?"""
    item = district("320404")
    twin = District(
        item.code, item.name, item.name_en, item.city_code, item.city, item.city_en,
        geometry=Polygon([(0, 0), (1, 0), (1, 1)]), bbox=(0, 0, 1, 1),
    )  # fmt: skip
    assert twin == item
    assert hash(twin) == hash(item)


# -- the SVG map --------------------------------------------------------------------------


@pytest.fixture
def changzhou() -> MapProjection:
    return MapProjection.for_districts(districts("3204"))


def test_projection_round_trips(changzhou: MapProjection) -> None:
    """Does to_lonlat undo to_xy, everywhere on the map?"""
    min_lon, min_lat, max_lon, max_lat = changzhou.bbox
    for i in range(11):
        for j in range(11):
            lon = min_lon + (max_lon - min_lon) * i / 10
            lat = min_lat + (max_lat - min_lat) * j / 10
            back = changzhou.to_lonlat(*changzhou.to_xy(lon, lat))
            assert back == pytest.approx((lon, lat), abs=1e-9)


def test_projection_puts_north_up_and_fills_the_width(changzhou: MapProjection) -> None:
    """Is the north-west corner at (0, 0), the south-east at (width, height), y downwards?"""
    min_lon, min_lat, max_lon, max_lat = changzhou.bbox
    assert changzhou.to_xy(min_lon, max_lat) == pytest.approx((0, 0))
    assert changzhou.to_xy(max_lon, min_lat) == pytest.approx((800, changzhou.height))
    assert changzhou.view_box.split()[:3] == ["0", "0", "800"]
    assert float(changzhou.view_box.split()[3]) == pytest.approx(changzhou.height, abs=0.05)


def test_projection_keeps_shapes(changzhou: MapProjection) -> None:
    """Is a kilometre east as long on the map as a kilometre north (cos-latitude scaling)?"""
    lat = (changzhou.bbox[1] + changzhou.bbox[3]) / 2
    lon = (changzhou.bbox[0] + changzhou.bbox[2]) / 2
    x0, y0 = changzhou.to_xy(lon, lat)
    km_lat = 1 / 111.2
    km_lon = km_lat / math.cos(math.radians(lat))
    east = changzhou.to_xy(lon + km_lon, lat)[0] - x0
    north = y0 - changzhou.to_xy(lon, lat + km_lat)[1]
    assert east == pytest.approx(north, rel=1e-9)
    assert north > 0  # north is up


def test_projection_shows_every_district_inside_the_margin(changzhou: MapProjection) -> None:
    """Does every vertex of the shown districts land inside the drawing, off its edges?"""
    for item in districts("3204"):
        for lon, lat in item.geometry.exterior.coords:
            x, y = changzhou.to_xy(lon, lat)
            assert 0 < x < 800
            assert 0 < y < changzhou.height


def test_a_drawn_box_becomes_an_ordered_lonlat_box(changzhou: MapProjection) -> None:
    """Is a box dragged in any direction turned into (min_lon, min_lat, max_lon, max_lat)?"""
    box = changzhou.box_to_lonlat(600, 500, 100, 50)  # dragged up and to the left
    min_lon, min_lat, max_lon, max_lat = box
    assert min_lon < max_lon and min_lat < max_lat
    assert (min_lon, max_lat) == pytest.approx(changzhou.to_lonlat(100, 50))
    assert (max_lon, min_lat) == pytest.approx(changzhou.to_lonlat(600, 500))


def test_projection_refuses_an_empty_area() -> None:
    """Is a map of nothing, or of no width, an error?"""
    with pytest.raises(ValueError):
        MapProjection((120.0, 31.0, 120.0, 32.0))
    with pytest.raises(ValueError):
        MapProjection.for_districts([])


def test_path_data_has_one_move_per_ring() -> None:
    """For a MultiPolygon with a hole, is there one M (and one Z) per ring, one decimal?"""
    with_hole = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (1, 2), (2, 2), (2, 1)]])
    island = Polygon([(6, 0), (8, 0), (8, 2)])
    shape = MultiPolygon([with_hole, island])
    fake = District(
        "999999", "测试区", "Test District", "999900", "测试市", "Test City",
        geometry=shape, bbox=shape.bounds,
    )  # fmt: skip
    projection = MapProjection((-1.0, -1.0, 9.0, 5.0), width=100)
    [(item, path)] = district_paths(projection, [fake])
    assert item is fake
    assert path.count("M") == 3
    assert path.count("Z") == 3
    # y runs down; outlines and holes wound opposite ways; Z closes, no repeated point
    assert path == "M10 50L50 50L50 10L10 10ZM20 40L20 30L30 30L30 40ZM70 50L90 50L90 30Z"


def test_paths_of_real_districts_match_their_rings(changzhou: MapProjection) -> None:
    """Does each real district get a path with one subpath per ring, in input order?"""
    shown = districts("3204")
    paths = district_paths(changzhou, shown)
    assert [item for item, _ in paths] == shown
    for item, path in paths:
        polygons = getattr(item.geometry, "geoms", [item.geometry])
        rings = sum(1 + len(p.interiors) for p in polygons)
        assert path.count("M") == rings
        assert len(path) < 10_000


def test_paths_default_to_every_district() -> None:
    """Without a list, are all districts drawn?"""
    projection = MapProjection.for_districts(districts())
    assert [item.code for item, _ in district_paths(projection)] == sorted(EXPECTED)


@pytest.mark.slow  # runs the build script
@pytest.mark.skipif(
    not (ROOT / "scripts" / "data" / "mca-320400.topo.json").exists(),
    reason="source files of the boundaries not present",
)
def test_bundled_file_is_what_the_script_builds() -> None:
    """Does scripts/make_districts.py, run on the stored sources, give the bundled file?"""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_districts.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
