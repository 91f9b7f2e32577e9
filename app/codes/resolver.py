"""The GS1 Digital Link resolver: what a phone opens when it scans a unit's QR code.

``GET /01/{gtin}/10/{lot}/21/{serial}`` answers the code's JSON when the client asks for
JSON, and a plain page otherwise (the full consumer page comes with the scan-page work).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.codes import operations
from app.codes.api import code_answer
from app.web import db

bp = Blueprint("resolver", __name__)


def _raw_path() -> str:
    # Lots may hold a percent-encoded '/', which the server has already decoded in PATH_INFO.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return raw.split("?", 1)[0] if raw else request.path


@bp.get("/01/<path:rest>")
def resolve(rest: str):
    code = operations.find_code_by_uri(db(), _raw_path())
    answer = code_answer(code)
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return answer
    return render_template("code.html", code=answer)
