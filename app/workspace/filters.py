"""The anomaly queue's filter as a person types it (query string or a bulk decision's form):
dates are read as Beijing time (app/timefmt.py), region codes checked, a district or drawn
box turned into an area for the spatial query."""

from __future__ import annotations

from datetime import datetime

from flask import request

from app import timefmt
from app.anomalies import findings
from app.web import query_int
from app.workspace.maps import MapQuery
from tracecore.errors import ValidationError


def typed_time(name: str, args=None) -> datetime | None:
    """A date typed into a filter, read as Beijing time; ``until`` includes the day typed."""
    raw = (request.args if args is None else args).get(name, "")
    return timefmt.parse_typed(raw[:40], name, end_of_day=name == "until")


def queue_filter(args=None) -> findings.AnomalyFilter:
    """The queue's filter from the query (or, for a bulk decision, the form)."""
    args = request.args if args is None else args
    region = args.get("region_code", "").strip()
    if region and (not region.isdigit() or len(region) not in (2, 4, 6)):
        raise ValidationError("region: 2, 4 or 6 digits of a region code", field="region_code")
    return findings.AnomalyFilter(
        type=args.get("type") or None,
        status=args.get("status") or None,
        severity=args.get("severity") or None,
        region_code=region or None,
        since=typed_time("since", args),
        until=typed_time("until", args),
        within_wkt=MapQuery.from_args(args).area_wkt(),
        before=query_int("before", args=args),
    )
