"""The anomaly queue as CSV: every page of the filtered queue, streamed, with the finding's
identifiers for programs and, beside them, the words a person reads (names, the decision,
its reason and who made it). Cells that a spreadsheet would run as formulas are neutralised.
"""

from __future__ import annotations

import csv
import io

from flask import Response, request, stream_with_context

from app.accesslog.operations import log_access
from app.anomalies import findings
from app.consumer.places import place_of_region
from app.csvcells import cell, csv_text
from app.timefmt import rfc3339_beijing
from app.web import db, unit_of_work
from app.workspace import names, words
from app.workspace.filters import queue_filter
from app.workspace.session import bp, viewer

#: The CSV's columns: the finding's own (identifiers, for programs), then the words a person
#: reads (names in Chinese, the decision, its reason and who made it). Times are Beijing time
#: with their offset (RFC 3339), as people and spreadsheets read them alike.
CSV_COLUMNS = (
    *("id", "type", "severity", "status", "subject_type", "subject", "party_type", "party_id"),
    *("region_code", "detected_at", "decided_at", "type_name", "status_name", "party_name"),
    *("region_name", "decision", "reason", "decider"),
)


@bp.get("/anomalies.csv")
@unit_of_work
def anomalies_csv():
    """The anomaly queue as filtered, every page of it, as CSV (UTF-8 with BOM for Excel)."""
    f = queue_filter()
    you = viewer()
    log_access(db(), you, "export", "anomalies", "csv", detail=request.query_string.decode()[:300])

    def rows():
        yield csv_text([CSV_COLUMNS], bom=True)
        before = f.before
        while True:
            page = findings.find_anomalies(
                db(), you, findings.AnomalyFilter(**{**f.__dict__, "before": before}), 1000
            )
            if not page:
                return
            known = names.rows_of(db(), you, page)
            out = io.StringIO()
            writer = csv.writer(out)
            for a in page:
                decided = known.decided(a)
                place = place_of_region(a.region_code)
                writer.writerow(
                    [
                        *(a.id, a.type, a.severity, a.status, a.subject_type, cell(a.subject)),
                        *(a.party_type, a.party_id, a.region_code),
                        rfc3339_beijing(a.detected_at),
                        rfc3339_beijing(a.decided_at),
                        words.word("anomaly", a.type),
                        words.word("status", a.status),
                        cell(known.party(a) or ""),
                        place["zh"] if place else "",
                        words.word("decision", decided.decision) if decided else "",
                        cell(decided.reason) if decided else "",
                        cell(decided.decider) if decided else "",
                    ]
                )
            yield out.getvalue()
            before = page[-1].id

    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="anomalies.csv"'},
    )
