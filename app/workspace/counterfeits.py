"""The workspace's counterfeit map: where fakes of a product (or of a merchant's products) are
checked and reported, by district, inside the viewer's jurisdiction; with the reports, whose
contacts regulators alone see (each read logged as personal data)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template, request

from app.accesslog.operations import log_access
from app.counterfeit.operations import MapFilter, counterfeit_map
from app.web import db, unit_of_work
from app.workspace.maps import cities_of
from app.workspace.session import bp, viewer
from tracecore import districts
from tracecore.errors import ValidationError


@bp.get("/counterfeits")
@unit_of_work
def counterfeit_page():
    """The counterfeit map of a city the viewer covers: a circle per district sized by the
    networks that checked or reported fakes there, the products, and the newest reports."""
    f = MapFilter.from_args(request.args)
    who = viewer()
    found = counterfeit_map(db(), who, f, datetime.now(UTC))
    cities = cities_of(who)
    if not cities:
        raise ValidationError("no bundled map covers your jurisdiction", field="city")
    asked = request.args.get("city", "")
    city = asked if asked in dict(cities) else cities[0][0]
    shown = districts.districts(city)
    projection = districts.MapProjection.for_districts(shown)
    spots = []
    for d in shown:
        counts = found.by_district.get(d.code)
        if counts:
            inside = d.geometry.representative_point()
            x, y = projection.to_xy(inside.x, inside.y)
            spots.append({"district": d, "x": x, "y": y, **counts})
    # The one page that shows reports' contacts: every view is logged as personal data.
    log_access(
        db(),
        who,
        "view",
        "counterfeit_map",
        "reports",
        personal_data=True,
        detail=f"gtin={f.gtin} merchant={f.merchant_id} days={f.days}",
    )
    return render_template(
        "workspace/counterfeits.html",
        found=found,
        query=f,
        city=city,
        cities=cities,
        paths=districts.district_paths(projection, shown),
        projection=projection,
        spots=spots,
        names={d.code: d.name for d in districts.districts()},
    )
