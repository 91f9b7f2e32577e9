"""CSV for people's spreadsheets: UTF-8 with a byte order mark (Excel then reads Chinese),
and no cell that a spreadsheet would run as a formula (CSV injection). Every CSV the
service writes (the anomaly queue, the credit exchange) goes through here."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

#: The byte order mark that tells Excel the file is UTF-8.
BOM = "\ufeff"


def cell(value: str) -> str:
    """No spreadsheet formulas from data (CSV injection): a text starting with ``=``, ``+``,
    ``-`` or ``@`` is prefixed with an apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def csv_text(rows: Iterable[Iterable], *, bom: bool = False) -> str:
    """``rows`` as CSV text (every text cell through :func:`cell`), the BOM first when
    ``bom``: the first chunk of a file."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([cell(v) if isinstance(v, str) else v for v in row])
    return (BOM if bom else "") + out.getvalue()
