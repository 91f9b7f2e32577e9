"""The resolver's routes and answers (docs/resolver.md).

- ``GET /.well-known/gs1resolver``: the resolver description file;
- ``GET /api/v1/batches/{id}/certificates``, ``/api/v1/batches/{id}/recall-status`` and
  ``/api/v1/products/{id}/recall-status``: the public facts the links lead to;
- :func:`answer_link`: what ``/01/…`` answers when a client asks for its linkset or for one
  of its link types (``app.consumer.pages.by_link`` calls it; a plain scan never does).
"""

from __future__ import annotations

import functools

from flask import Blueprint, current_app, json, redirect, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from app.errors import ApiError
from app.resolver import operations
from app.web import db, settings
from tracecore import resolver
from tracecore.errors import NotFound, ValidationError
from tracecore.gs1 import DigitalLink, digital_link_path, parse_digital_link

bp = Blueprint("resolver", __name__)

#: How long a client or cache may keep a linkset or the description file (the links of a
#: thing do not change; what they lead to is read fresh there).
MAX_AGE_S = 300
_PUBLIC = {"Access-Control-Allow-Origin": "*"}  # the standard: resolvers support CORS


@bp.get("/.well-known/gs1resolver")
def description_file():
    """The resolver description file: who runs this resolver, its root, the keys and link
    types it knows."""
    response = current_app.response_class(
        json.dumps(operations.description(settings()), ensure_ascii=False),
        mimetype="application/json",
    )
    response.headers.update(_PUBLIC)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/api/v1/batches/<id:batch_id>/certificates")
def certificates(batch_id: int):
    """A batch's inspection certificates (public facts)."""
    return _public(operations.certificates(db(), batch_id))


@bp.get("/api/v1/batches/<id:batch_id>/recall-status")
def batch_recall_status(batch_id: int):
    """Whether a batch is recalled, since when and why, in plain words too."""
    return _public(operations.batch_recall_status(db(), batch_id))


@bp.get("/api/v1/products/<id:product_id>/recall-status")
def product_recall_status(product_id: int):
    """Which batches of a product are recalled."""
    return _public(operations.product_recall_status(db(), product_id))


def _public(body: dict):
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), mimetype="application/json"
    )
    response.headers.update(_PUBLIC)
    return response


# -- the Digital Link's other answers ------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _linkset_preferred(accept: str) -> bool:
    best = parse_accept_header(accept, MIMEAccept).best_match(
        ["text/html", "application/json", resolver.LINKSET_MEDIA_TYPE]
    )
    return best == resolver.LINKSET_MEDIA_TYPE


def asked_link_type() -> str | None:
    """What the client asks of a Digital Link besides its default answer: ``"linkset"``
    (``?linkType=linkset`` or ``all``, or an ``Accept`` that prefers the linkset), the
    ``linkType`` as sent, or None (the plain scan: two cheap tests)."""
    req = request._get_current_object()
    if req.query_string and b"linkType" in req.query_string:
        value = req.args.get("linkType")
        if value is not None:
            return "linkset" if resolver.link_type(value) == "linkset" else value
    accept = req.headers.get("Accept")
    if accept and "linkset" in accept and _linkset_preferred(accept):
        return "linkset"
    return None


def check_link(path: str) -> DigitalLink:
    """The Digital Link of ``path``, read as the GS1 Digital Link standard writes it: a
    GTIN of 8, 12 or 13 digits is answered by a permanent redirect to its GTIN-14 link, and
    a trailing slash by one to the link without it (:class:`Moved`); a link that is not a
    Digital Link (a wrong check digit, an AI other than 01, 10 and 21, qualifiers out of
    order) is a ValidationError, answered 400."""
    query = request.query_string.decode("ascii", "replace")
    if len(path) > 4 and path.endswith("/"):
        raise Moved(path.rstrip("/"), query)
    link = parse_digital_link(path)
    gtin_segment = path[4:].split("/", 1)[0]
    if len(gtin_segment) != 14:
        raise Moved(digital_link_path(link.gtin14, link.lot, link.serial), query)
    return link


class Moved(Exception):
    """The link is written canonically elsewhere (a 301 to ``path``, the query kept)."""

    def __init__(self, path: str, query: str) -> None:
        super().__init__(path)
        self.location = path + ("?" + query if query else "")

    def response(self):
        """The permanent redirect."""
        response = redirect(self.location, 301)
        response.headers.update(_PUBLIC)
        return response


def invalid_link(exc: ValidationError) -> ApiError:
    """The error a link that is not a GS1 Digital Link is answered with (400, the one
    shape), the reason from the standard's rules."""
    return ApiError(
        400,
        "invalid_digital_link",
        f"this is not a GS1 Digital Link this resolver reads: {exc.message}",
        details={"expected": "/01/{gtin14}[/10/{lot}][/21/{serial}]", **exc.details},
    )


def answer_link(link: DigitalLink, asked: str | None):
    """The answer to a Digital Link other than the consumer page: its linkset (``asked``
    is ``"linkset"``), a redirect to the link of the asked type, or to the default link
    when the thing has none of that type (as the standard says: a redirect to the default
    link unless the request says something better). None when the consumer page answers: a
    unit's link asked for no link type, or for one of a unit or a GTIN nobody issued (the
    page says so, and records the check)."""
    if link.serial is not None and asked is None:
        return None
    config = settings()
    item = operations.find_item(db(), link)
    if item is None:
        if asked == "linkset":
            raise NotFound("no product, batch or unit has this Digital Link")
        return None
    entries = operations.entries(item, config)
    anchor = entries[0].anchor
    if asked == "linkset":
        response = current_app.response_class(
            json.dumps(resolver.linkset(entries), ensure_ascii=False),
            mimetype=resolver.LINKSET_MEDIA_TYPE,
        )
        response.headers["Link"] = resolver.context_header()
        response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
        response.headers["Vary"] = "Accept"
    else:
        target = _target(entries, asked)
        query = request.args.items(multi=True)
        response = redirect(resolver.redirect_target(target.href, query), 307)
        response.headers["Link"] = resolver.linkset_header(anchor)
        response.headers["Vary"] = "Accept, Accept-Language"
    response.headers.update(_PUBLIC)
    return response


def _target(entries: list[resolver.Entry], asked: str | None) -> resolver.Link:
    """The link of the asked type at the most specific level that has one, in the client's
    language; else the asked thing's default link."""
    rel = resolver.link_type(asked) if asked else None
    languages = _languages()
    if rel is not None:
        for entry in entries:
            found = resolver.choose(entry.links, rel, languages)
            if found is not None:
                return found
    return resolver.choose(entries[0].links, resolver.DEFAULT_LINK, languages)


def _languages() -> list[str]:
    asked = request.args.get("lang")
    found = [asked] if asked else []
    return found + [lang for lang, _ in request.accept_languages]
