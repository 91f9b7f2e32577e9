"""The consumer's scan page: what a phone opens from a unit's QR code.

``/01/{gtin}/10/{lot}/21/{serial}`` (the GS1 Digital Link in the QR code) and the short
``/t/{serial}`` answer the same content: a light server-rendered page, Chinese first with
English (``?lang=en``), or JSON to ``Accept: application/json``. The forms (review, complaint,
delivery rating) work without JavaScript; they are protected by a token bound to the
client's cookie and rate-limited per client.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from datetime import UTC, datetime

import pydantic
from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import LanguageAccept, MIMEAccept
from werkzeug.http import parse_accept_header

from app import serialize
from app.consumer import checks, scan, texts
from app.consumer.units import find_unit
from app.counterfeit import operations as counterfeit
from app.errors import ApiError
from app.feedback import operations as feedback
from app.schemas import ComplaintIn, CounterfeitReportIn, DeliveryRatingIn, ReviewIn
from app.web import client_source, db, settings, unit_of_work
from app.wrappers import set_client_cookie
from tracecore.errors import DomainError, NotFound, ValidationError
from tracecore.identity import keyed_hash
from tracecore.sources import network_of

bp = Blueprint("consumer", __name__)

CLIENT_COOKIE = "tc_client"
#: The client cookie lasts a year from the client's last check.
CLIENT_COOKIE_MAX_AGE = 365 * 24 * 3600
_CLIENT_VALUE = re.compile(r"[0-9a-f]{32}")
FORMS = ("review", "complaint", "rating")


# -- who is asking, in which language ---------------------------------------------------------


def _client_value() -> str:
    """The client's pseudonymous id: its cookie, or (first visit, or no cookies) a keyed hash
    of its address and browser, which then becomes its cookie."""
    value = g.get("client_value")
    if value is None:
        req = request._get_current_object()
        value = req.cookies.get(CLIENT_COOKIE, "")
        if not _CLIENT_VALUE.fullmatch(value):
            seen = f"{req.remote_addr}|{req.headers.get('User-Agent', '')}"
            value = keyed_hash(settings().SECRET_KEY, "client:" + seen)[:32]
        g.client_value = value
    return value


def _check_source() -> str:
    """Who a check (and a shared place) counts as: the keyed hash of the client's network
    (:func:`tracecore.sources.network_of`), never its cookie or browser string, which the
    client chooses: one person with five cookies is one source, and so is one office."""
    return keyed_hash(settings().SECRET_KEY, "check:" + network_of(request.remote_addr))


def _form_token(serial: str) -> str:
    """The anti-forgery token of this client's forms for this code (another site can
    neither read the client's cookie nor compute the token)."""
    message = f"form:{_client_value()}:{serial}".encode()
    return hmac.new(settings().SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _check_form_token(serial: str) -> None:
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent, _form_token(serial)):
        raise ApiError(
            400,
            "bad_form_token",
            "the form has expired or did not come from this page; reload the page and retry",
        )


# Clients send few distinct Accept and Accept-Language headers: each is parsed once (werkzeug
# parses them again on every request, a twentieth of a JSON answer's CPU).


@functools.lru_cache(maxsize=256)
def _lang_of(accept_language: str | None) -> str:
    best = parse_accept_header(accept_language, LanguageAccept).best_match(texts.LANGS, "zh")
    return best or "zh"


@functools.lru_cache(maxsize=256)
def _json_preferred(accept: str | None) -> bool:
    best = parse_accept_header(accept, MIMEAccept).best_match(["text/html", "application/json"])
    return best == "application/json"


def _lang() -> str:
    req = request._get_current_object()
    asked = req.args.get("lang")
    if asked in texts.LANGS:
        return asked
    return _lang_of(req.headers.get("Accept-Language"))


def _wants_json() -> bool:
    return _json_preferred(request.headers.get("Accept"))


def _remember_client(response):
    # A year from the client's last check (app.wrappers.cookie_header writes it as werkzeug).
    set_client_cookie(
        response,
        CLIENT_COOKIE,
        _client_value(),
        CLIENT_COOKIE_MAX_AGE,
        request.is_secure,
        settings().SPEEDUPS == "on",
    )
    return response


# -- the page ----------------------------------------------------------------------------------


def _raw_path() -> str:
    # Lots may hold a percent-encoded '/', which the server has already decoded in PATH_INFO.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return raw.split("?", 1)[0] if raw else request.path


def _unknown(code_text: str):
    """The answer to a code that was never issued (or a genuine serial under another
    product's link), its check recorded where regulators read it (the counterfeit map)."""
    seen = counterfeit.sighting_of(db(), code_text)
    if seen is not None:
        source = counterfeit.Source(*client_source("counterfeit"))
        counterfeit.record_check(db(), seen, source, datetime.now(UTC), settings())
    if _wants_json():
        return scan.unknown_answer(code_text), 404
    return _unknown_page(code_text, seen)


def _unknown_page(code_text: str, seen, *, status: int = 404, error: str | None = None):
    """The never-issued page, with the report-a-fake form when the code is a fake."""
    page = render_template(
        "consumer/unknown.html",
        scan=scan.unknown_answer(code_text),
        lang=_lang(),
        report_code=code_text[:300],
        report_token=_form_token("report:" + seen.code) if seen is not None else None,
        report_error=error,
    )
    return _remember_client(make_response(page, status))


def _check(*, serial: str | None = None, link: str | None = None):
    """The unit and the answer to this client's check of it, recorded: the view's
    :func:`unit_of_work` commits it (on PostgreSQL its own statement has; the request's
    session is then opened only when the scan needs it)."""
    engine = current_app.extensions["trace"].engine
    return scan.check(engine, db, _check_source(), settings(), serial=serial, link=link)


def _answer(
    unit,
    scan: dict,
    *,
    status: int = 200,
    notice: str | None = None,
    errors: dict | None = None,
):
    if _wants_json():
        body = serialize.json_body(scan)  # the provider's bytes, written faster
        if body is None:
            response = make_response(scan, status)
        else:
            response = current_app.response_class(body, status, mimetype="application/json")
    else:
        lang = _lang()
        response = make_response(
            render_template(
                "consumer/scan.html",
                scan=scan,
                lang=lang,
                t=lambda pair: texts.pick(pair, lang),
                form_token=_form_token(unit.serial),
                notice=notice,
                errors=errors or {},
                signed=any(step["type"] == "signed" for step in scan["journey"]),
            ),
            status,
        )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Vary"] = "Accept, Accept-Language"  # a new response: none set yet
    return _remember_client(response)


@bp.get("/01/<path:rest>")
@unit_of_work
def by_link(rest: str):
    """The GS1 Digital Link of the QR code."""
    try:
        unit, scan = _check(link=_raw_path())
    except (NotFound, ValidationError):
        return _unknown(_raw_path())
    return _answer(unit, scan)


@bp.get("/t/<serial>")
@unit_of_work
def by_serial(serial: str):
    """The short form, for a code typed by hand."""
    sent = request.args.get("sent")
    notice = sent if sent in FORMS else None
    try:
        unit, scan = _check(serial=serial.strip().upper())
    except (NotFound, ValidationError):
        return _unknown(serial)
    return _answer(unit, scan, notice=notice)


# -- what the consumer sends back ------------------------------------------------------------


def _form_model(kind: str):
    form = request.form
    if kind == "review":
        return ReviewIn(rating=_int(form.get("rating")), text=form.get("text", ""))
    if kind == "complaint":
        return ComplaintIn(
            category=form.get("category", ""),
            text=form.get("text", ""),
            contact=form.get("contact") or None,
        )
    return DeliveryRatingIn(
        courier=_int(form.get("courier")),
        company=_int(form.get("company")),
        tags=form.getlist("tags"),
    )


def _int(raw: str | None):
    return int(raw) if raw and raw.isdigit() else raw


_STATUS_OF = {"conflict": 409, "forbidden": 403, "not_found": 404}


@bp.post("/t/<serial>/<kind>")
@unit_of_work
def send_form(serial: str, kind: str):
    """A review, complaint or delivery rating from the page's forms (no JavaScript needed).
    On success the page is shown again with a notice (post/redirect/get); when refused, what
    was sent is dropped and the page is answered again (its check recorded) with the reason."""
    if kind not in FORMS:
        raise NotFound("the forms are review, complaint and rating")
    code = find_unit(db(), serial.strip().upper())
    _check_form_token(code.serial)
    cfg = settings()
    try:
        body = _form_model(kind)
        if kind == "review":
            feedback.add_review(
                db(),
                code.serial,
                body.rating,
                body.text,
                feedback.Source(*client_source("feedback")),
                cfg.REVIEWS_PER_HOUR,
            )
        elif kind == "complaint":
            feedback.file_complaint(
                db(),
                code.serial,
                body.category,
                body.text,
                body.contact,
                feedback.Source(*client_source("feedback")),
                cfg.COMPLAINTS_PER_HOUR,
                cfg.policy,
            )
        else:
            feedback.rate_as_consignee(
                db(), code.serial, body.courier, body.company, body.tags, cfg.policy
            )
    except pydantic.ValidationError as exc:
        db().rollback()
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or kind
        return _answer(
            *_check(serial=code.serial), status=422, errors={kind: f"{field}: {first['msg']}"}
        )
    except DomainError as exc:
        db().rollback()
        status = getattr(exc, "status", None) or _STATUS_OF.get(exc.code, 422)
        return _answer(*_check(serial=code.serial), status=status, errors={kind: exc.message})
    return redirect(url_for("consumer.by_serial", serial=code.serial, sent=kind, lang=_lang()))


@bp.post("/report-fake")
@unit_of_work
def report_fake():
    """A consumer's report of a fake from the never-issued or forged-link page (no
    JavaScript needed; "share my district" fills in a coarse place with it). On success,
    post/redirect/get to a thank-you page; when refused, the page again with the reason."""
    form = request.form
    text = form.get("code", "")[:300]
    seen = counterfeit.refuse_genuine(counterfeit.sighting_of(db(), text))
    _check_form_token("report:" + seen.code)
    try:
        shared = form.get("share_district") == "1"
        body = CounterfeitReportIn(
            code=text,
            what=form.get("what", ""),
            where_bought=form.get("where_bought", ""),
            description=form.get("description", ""),
            contact=form.get("contact") or None,
            lat=_degrees(form.get("lat")) if shared else None,
            lon=_degrees(form.get("lon")) if shared else None,
        )
        counterfeit.file_report(
            db(),
            seen,
            body.what,
            body.where_bought,
            body.description,
            body.contact,
            counterfeit.shared_place(body.lat, body.lon),
            counterfeit.Source(*client_source("counterfeit")),
            settings(),
            datetime.now(UTC),
        )
    except pydantic.ValidationError as exc:
        db().rollback()
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "report"
        return _unknown_page(text, seen, status=422, error=f"{field}: {first['msg']}")
    except DomainError as exc:
        db().rollback()
        status = getattr(exc, "status", None) or _STATUS_OF.get(exc.code, 422)
        return _unknown_page(text, seen, status=status, error=exc.message)
    return redirect(url_for("consumer.report_sent", lang=_lang()), 303)


def _degrees(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


@bp.get("/report-fake/sent")
def report_sent():
    """Thanks for a report (the page a report redirects to)."""
    return render_template("consumer/report_sent.html", lang=_lang())


@bp.post("/t/<serial>/place")
@unit_of_work
def share_place(serial: str):
    """The consumer agreed to share a coarse place for their check (the page's one script)."""
    code = find_unit(db(), serial.strip().upper())
    _check_form_token(code.serial)
    try:
        lat, lon = float(request.form["lat"]), float(request.form["lon"])
    except (KeyError, ValueError):
        raise ValidationError("send lat and lon as numbers", field="lat") from None
    place = checks.share_place(db(), code.serial, _check_source(), lat, lon, settings())
    return {"place": place}
