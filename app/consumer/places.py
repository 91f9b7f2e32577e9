"""Places and times as the consumer sees them: never finer than a district, in China
Standard Time."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, timezone

from tracecore import districts
from tracecore.regions import PROVINCES
from tracecore.vocabulary import EventType

#: Times on the page are China Standard Time, as the consumer's clock shows them.
CST = timezone(timedelta(hours=8), "CST")
#: Consumers see cities for these steps, districts for the others.
CITY_ONLY = frozenset({EventType.IN_TRANSIT})


# Places come from the bundled boundaries, which do not change while the process runs: the
# lookups are kept (the answers are shared: do not modify them). They were about a twentieth
# of a scan's CPU.


@functools.lru_cache(maxsize=16_384)
def place_of_region(region_code: str | None, *, city_only: bool = False) -> dict | None:
    """The public name of a GB/T 2260 region: district (or city) when bundled, else province."""
    if not region_code:
        return None
    found = districts.district(region_code)
    if found is not None:
        if city_only:
            return {"region_code": found.city_code, "zh": found.city, "en": found.city_en}
        return {
            "region_code": found.code,
            "zh": found.city + found.name,
            "en": f"{found.name_en}, {found.city_en}",
        }
    if region_code.endswith("00") and not region_code.endswith("0000"):  # a city, as a whole
        city = next(iter(districts.districts(region_code[:4])), None)
        if city is not None:
            return {"region_code": city.city_code, "zh": city.city, "en": city.city_en}
    province = PROVINCES.get(region_code[:2])
    if province is None:
        return None
    return {"region_code": region_code[:2] + "0000", "zh": province[0], "en": province[1]}


@functools.lru_cache(maxsize=65_536)
def place_of_point(lat: float | None, lon: float | None, *, city_only: bool = False):
    """The district (or city) a point lies in, or None outside the bundled boundaries."""
    if lat is None or lon is None:
        return None
    found = districts.locate(lat, lon)
    return None if found is None else place_of_region(found.code, city_only=city_only)


def local_time(moment: datetime) -> str:
    """A moment as the page shows it: China Standard Time, to the minute (ISO 8601)."""
    return moment.astimezone(CST).isoformat(timespec="minutes")


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def spoken_time(moment: datetime | str, lang: str, this_year: int | None = None) -> str:
    """A moment as people say it, in Beijing time: ``12月2日 05:14（北京时间）`` or
    ``2 Dec 05:14 (Beijing time)``, with the year when it is not ``this_year`` (by default
    the current one). ``moment`` may be the ISO 8601 text of an answer."""
    year = this_year if this_year is not None else datetime.now(CST).year
    if isinstance(moment, str):  # a page's times: the same few again and again
        return _spoken_text(moment, lang, year)
    return _spoken(moment, lang, year)


@functools.lru_cache(maxsize=65_536)
def _spoken_text(moment: str, lang: str, this_year: int) -> str:
    return _spoken(datetime.fromisoformat(moment), lang, this_year)


def _spoken(moment: datetime, lang: str, year: int) -> str:
    local = moment.astimezone(CST)
    if lang == "en":
        day = f"{local.day} {_MONTHS_EN[local.month - 1]}"
        if local.year != year:
            day += f" {local.year}"
        return f"{day} {local:%H:%M} (Beijing time)"
    day = f"{local.month}月{local.day}日"
    if local.year != year:
        day = f"{local.year}年{day}"
    return f"{day} {local:%H:%M}（北京时间）"


def spoken_day(day: date | str | None, lang: str) -> str:
    """A date as people write it, always with its year: ``2027年1月31日``, ``31 Jan 2027``."""
    if day is None:
        return ""
    if isinstance(day, str):
        day = date.fromisoformat(day[:10])
    if lang == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"
