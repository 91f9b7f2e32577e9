"""The request wrapper: one database session per request, body parsing, authentication,
and the commit. Views call :func:`db`, :func:`parse_body`, :func:`principal` and decorate
writes with :func:`unit_of_work`; use cases only flush.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import TypeVar

import pydantic
from flask import current_app, g, request
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from app.auth.operations import authenticate
from app.errors import ApiError
from tracecore.access import Principal
from tracecore.errors import ValidationError
from tracecore.identity import keyed_hash
from tracecore.sources import address_of, network_of

M = TypeVar("M", bound=pydantic.BaseModel)

#: The largest row id: the databases' integer key (ids in paths, bodies and queries).
MAX_ID = 2**31 - 1


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["trace"].sessionmaker()
    return g.db


def close_session(exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.rollback()  # a no-op after a commit; discards anything unfinished
        session.close()


def unit_of_work(view: Callable) -> Callable:
    """Commit what the view's use case flushed, or roll everything back on any error. A
    request that never opened its session has nothing to commit, and none is opened for it
    (the consumer scan on PostgreSQL, whose check commits with its own statement)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            response = view(*args, **kwargs)
            if "db" in g:
                g.db.commit()
        except BaseException:
            if "db" in g:
                g.db.rollback()
            raise
        return response

    return wrapper


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400: a float cannot hold it, and Infinity is not JSON
        raise ValueError(text)
    return number


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_json(raw: bytes | str, *, field: str = "body", what: str = "the body"):
    """JSON read as the API reads it, for the places that take JSON but no schema (GeoJSON,
    an EPCIS document): a :class:`ValidationError` (a 4xx in the one error shape), never a
    500, for text that is not JSON, is nested deeper than the parser goes, or holds a number
    no float holds (which would come back out as ``Infinity``, not JSON)."""
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise ValidationError(f"{what} is nested too deeply", field=field) from None
    except ValueError:
        message = f"{what} is not JSON (or holds a number out of range)"
        raise ValidationError(message, field=field) from None


def parse_body(model: type[M]) -> M:
    """The JSON body validated against ``model``: 415 for another content type, 400 for
    malformed JSON, 422 naming each field at fault."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
        raise


#: What an outside system's token may call (least privilege): capture, and its own jobs.
OUTSIDE_SYSTEM_ENDPOINTS = frozenset(
    {"epcis.capture", "epcis.capture_jobs", "epcis.capture_job", "epcis.capture_options"}
)


def current_principal() -> Principal | None:
    """The authenticated caller, or None when no Authorization header was sent."""
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    found = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "use 'Authorization: Bearer <token>'")
        found = authenticate(db(), token.strip())
        if found is None:
            raise ApiError(401, "unauthorized", "the token is unknown or revoked")
        if found.outside_system is not None and request.endpoint not in OUTSIDE_SYSTEM_ENDPOINTS:
            raise ApiError(
                403,
                "forbidden",
                "an outside system's token may only capture EPCIS events (/epcis/capture)",
            )
    g.principal = found
    return found


def principal() -> Principal:
    """The authenticated caller; 401 when there is none."""
    found = current_principal()
    if found is None:
        raise ApiError(401, "unauthorized", "this endpoint needs a bearer token")
    return found


def client_address() -> str:
    """The client's address, as the rate limits know it (behind a reverse proxy, the
    production server takes it from the trusted proxies' X-Forwarded-For: app/serve.py)."""
    return request.remote_addr or "unknown"


def client_source(purpose: str) -> tuple[str, str]:
    """Keyed hashes of the client's address and of its network (:mod:`tracecore.sources`),
    for ``purpose`` (each purpose hashes apart): what an anonymous client's input is counted
    by, never its cookie or browser string, which it chooses."""
    secret, address = settings().SECRET_KEY, client_address()
    return (
        keyed_hash(secret, f"{purpose}:address:{address_of(address)}"),
        keyed_hash(secret, f"{purpose}:network:{network_of(address)}"),
    )


def settings():
    """The service's :class:`config.Config`."""
    return current_app.extensions["trace"].config


class SecurityHeaders:
    """WSGI middleware that adds each of ``headers`` to every response (errors included)
    unless the application set its own. The response's headers are already checked, and
    these are constants: they are joined as they are."""

    def __init__(self, wsgi_app: Callable, headers: list[tuple[str, str]]) -> None:
        self.wsgi_app = wsgi_app
        self._headers = list(headers)
        self._names = frozenset(name.lower() for name, _ in headers)

    def __call__(self, environ: dict, start_response: Callable):
        ours, names = self._headers, self._names

        def start(status: str, headers: list, exc_info=None):
            if any(name.lower() in names for name, _ in headers):  # rare: the app set one
                present = {name.lower() for name, _ in headers}
                headers = headers + [(k, v) for k, v in ours if k.lower() not in present]
            else:
                headers = headers + ours
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


class IdConverter(IntegerConverter):
    """``<id:name>`` in a route: a row id, 1 to :data:`MAX_ID` (the database's integer key).
    Anything else is no such page (404), never a number the database refuses (a 500)."""

    def __init__(self, url_map, min: int = 1, max: int = MAX_ID) -> None:
        super().__init__(url_map, min=min, max=max)


def refuse_nul_in_query() -> None:
    """A query string with a NUL character (``%00``) is refused before any view reads it:
    no filter or search means one, and PostgreSQL refuses it in text (a 500 otherwise)."""
    if b"%00" in request.query_string:
        raise ApiError(422, "validation_failed", "the query may not contain NUL characters")


#: A whole number as a query may carry one: ASCII digits (``str.isdigit`` also takes "²",
#: which ``int`` refuses), and no more of them than the largest bound needs.
_DIGITS = re.compile(r"[0-9]{1,19}")


def query_int(
    name: str,
    default: int | None = None,
    *,
    minimum: int = 1,
    maximum: int = MAX_ID,
    args: Mapping[str, str] | None = None,
) -> int | None:
    """The query parameter ``name`` as a whole number from ``minimum`` to ``maximum`` (by
    default a row id), or ``default`` when it is absent or empty; anything else is a 422
    naming the parameter. Every integer a view reads from the query comes through here, so
    none reaches the database out of its range (a 500) and the contract can state the bounds
    (:mod:`app.openapi`)."""
    raw = (request.args if args is None else args).get(name, "")
    if raw == "":
        return default
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not minimum <= value <= maximum:
        raise ApiError(
            422,
            "validation_failed",
            f"{name} must be a whole number from {minimum} to {maximum}",
            field=name,
        )
    return value


def query_text(name: str, max_length: int, default: str = "") -> str:
    """The query parameter ``name`` as text of at most ``max_length`` characters, or
    ``default``; longer is a 422 naming the parameter (NUL was refused before the view)."""
    raw = request.args.get(name, default)
    if len(raw) > max_length:
        raise ApiError(
            422,
            "validation_failed",
            f"{name} may be at most {max_length} characters",
            field=name,
        )
    return raw


def query_time(
    name: str, naive: tzinfo | None = None, args: Mapping[str, str] | None = None
) -> datetime | None:
    """The query parameter ``name`` as an RFC 3339 time, in UTC, or None when absent. A time
    without an offset is read in ``naive`` (the workspace's forms: China Standard Time) or,
    when None, refused; so is one that UTC cannot hold (``0001-01-01T00:00:00+00:01``): a
    422 naming the parameter either way. ``args``: a form's fields instead of the query."""
    raw = (request.args if args is None else args).get(name, "")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None and naive is not None:
            moment = moment.replace(tzinfo=naive)
        if moment.tzinfo is None:
            raise ApiError(422, "validation_failed", f"{name} needs a UTC offset", field=name)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            422, "validation_failed", f"{name} must be an RFC 3339 time", field=name
        ) from None


#: What a redirect target of this site may hold: a path and query of printable ASCII (a
#: browser's own links are percent-encoded), no backslash (some browsers read it as "/").
_LOCAL_TARGET = re.compile(r"/[!#-\[\]-~]*")


def local_target(raw: str, prefix: str, default: str) -> str:
    """``raw`` when it is a path of this site under ``prefix`` (a sign-in's ``next=``, a
    form's ``back``), else ``default``: never another site (``//host``, a scheme, a
    backslash), never a header break (CR, LF, or any other control character), which would
    otherwise reach the ``Location`` header (an open redirect, or a 500)."""
    if (
        _LOCAL_TARGET.fullmatch(raw)
        and raw.startswith(prefix)
        and not raw.startswith("//")
        and raw[len(prefix) : len(prefix) + 1] in ("", "/", "?", "#")
    ):
        return raw
    return default
