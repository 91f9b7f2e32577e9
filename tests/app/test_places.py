"""The public names of regions and points (app/consumer/places.py), as pages show them."""

import pytest

from app.consumer.places import place_of_region


@pytest.mark.parametrize(
    ("code", "zh", "en"),
    [
        ("320402", "常州市天宁区", "Tianning District, Changzhou"),  # a bundled district
        ("320400", "常州市", "Changzhou"),  # a city as a whole: a company's registration
        ("441200", "肇庆市", "Zhaoqing"),
        ("320000", "江苏省", "Jiangsu"),  # a province
        ("440100", "广东省", "Guangdong"),  # a city not bundled: its province
    ],
)
def test_a_region_is_named_at_its_own_level(code, zh, en):
    place = place_of_region(code)
    assert (place["zh"], place["en"]) == (zh, en)


def test_an_unknown_region_has_no_name():
    assert place_of_region("990000") is None and place_of_region("") is None
