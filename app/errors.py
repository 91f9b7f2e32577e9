"""The one JSON error shape: ``{"error": {"code", "message", "details"?}}``.

Every failure of an API request leaves through here: domain errors become 4xx with the
message written for the client; HTTP errors keep their status; anything unexpected is
logged, rolled back and answered with a bare 500 that reveals no internals.
"""

from __future__ import annotations

import logging

import pydantic
import sqlalchemy.exc
from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from tracecore.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError

log = logging.getLogger(__name__)

STATUS = {ValidationError: 422, NotFound: 404, Forbidden: 403, Conflict: 409}


class ApiError(DomainError):
    """An error of the HTTP layer itself (authentication, content type, body size...)."""

    def __init__(self, status: int, code: str, message: str, **kw) -> None:
        super().__init__(message, code=code, **kw)
        self.status = status


def wants_page() -> bool:
    """People's pages (not /api/) answer errors as a page when the client prefers HTML."""
    if request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict | list | None = None,
    headers: dict | None = None,
) -> Response:
    if wants_page():
        page = render_template("error.html", status=status, code=code, message=message)
        return Response(page, status, headers or {}, mimetype="text/html")
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _domain(exc: DomainError) -> Response:
    status = getattr(exc, "status", None) or next(
        (s for cls, s in STATUS.items() if isinstance(exc, cls)), 400
    )
    details = dict(exc.details)
    if exc.field:
        details["field"] = exc.field
    headers = {"WWW-Authenticate": 'Bearer realm="trace"'} if status == 401 else None
    return error_response(status, exc.code, exc.message, details or None, headers)


def _pydantic(exc: pydantic.ValidationError) -> Response:
    fields = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    first = fields[0]
    # details.field names the (first) field at fault, as a use case's own 422 does.
    return error_response(
        422,
        "validation_failed",
        f"{first['field']}: {first['message']}",
        {"field": first["field"], "fields": fields},
    )


def _http(exc: HTTPException) -> Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    # The exception's own headers (a 405's Allow, a 429's Retry-After), not its HTML type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)


def _database_gone(exc: sqlalchemy.exc.DBAPIError) -> Response:
    """The database dropped the connection (a restart): the pool has discarded it and its
    older siblings; the client may simply try again."""
    if not exc.connection_invalidated:
        return _unexpected(exc)
    log.warning("database connection lost; the pool renews its connections: %s", exc.orig)
    return error_response(
        503,
        "database_unavailable",
        "The database connection was lost; nothing was saved. Try again.",
        headers={"Retry-After": "1"},
    )


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "Internal error; nothing was saved.")


def register(app: Flask) -> None:
    app.register_error_handler(DomainError, _domain)
    app.register_error_handler(pydantic.ValidationError, _pydantic)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(sqlalchemy.exc.DBAPIError, _database_gone)
    app.register_error_handler(Exception, _unexpected)
