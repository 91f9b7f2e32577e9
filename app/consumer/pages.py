"""The consumer's pages: the entry page where a code is typed or scanned, and the scan
page, what a phone opens from a unit's QR code.

``/01/{gtin}/10/{lot}/21/{serial}`` (the GS1 Digital Link in the QR code) and the short
``/t/{serial}`` answer the same content: a light server-rendered page, Chinese first with
English (``?lang=en``), or JSON to ``Accept: application/json``. A serial is read as typed
(:func:`tracecore.serials.normalize_serial`); a page asked for by a serial that is not
written canonically redirects to the canonical URL. The forms (review, complaint, delivery
rating) work without JavaScript; they are protected by a token bound to the client's cookie
and rate-limited per client. ``/`` is the entry page (``/check`` reads what was typed), and
``/credit/{type}/{id}`` a party's public credit, which the scan page's grade links to.
"""

from __future__ import annotations

import functools
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
    send_from_directory,
    url_for,
)
from werkzeug.datastructures import LanguageAccept, MIMEAccept
from werkzeug.http import parse_accept_header

from app import serialize
from app.consumer import checks, scan, texts
from app.consumer.icons import MARK, VERDICT_ICONS
from app.consumer.places import spoken_day, spoken_time
from app.consumer.units import find_unit
from app.counterfeit import operations as counterfeit
from app.credit import operations as credit
from app.errors import ApiError
from app.feedback import operations as feedback
from app.resolver import api as resolver_api
from app.schemas import ComplaintIn, CounterfeitReportIn, DeliveryRatingIn, ReviewIn
from app.web import client_source, db, settings, unit_of_work
from app.wrappers import set_client_cookie
from tracecore.errors import DomainError, NotFound, ValidationError
from tracecore.gs1 import (
    DigitalLink,
    digital_link_path,
    encode_decoded_link_path,
    is_digital_link,
    is_unit_link_path,
)
from tracecore.identity import keyed_hash
from tracecore.resolver import linkset_header
from tracecore.serials import grouped, is_serial, normalize_serial, read_code
from tracecore.sources import network_of

bp = Blueprint("consumer", __name__)

CLIENT_COOKIE = "tc_client"
#: The client cookie lasts a year from the client's last check.
CLIENT_COOKIE_MAX_AGE = 365 * 24 * 3600
_CLIENT_VALUE = re.compile(r"[0-9a-f]{32}")
FORMS = ("review", "complaint", "rating")
#: Longest text the entry page reads (a Digital Link with a long lot, with some slack).
MAX_TYPED = 300


@bp.context_processor
def _issuer() -> dict:
    """Every consumer page names its issuer in its header and footer, and gives the hotline;
    the icons are the issuer's mark and each verdict's; ``links`` are the pages' fixed
    links (:func:`_links`)."""
    cfg = settings()
    return {
        "issuer": _issuer_of(
            cfg.ISSUER_NAME, cfg.ISSUER_NAME_EN, cfg.ISSUER_URL, cfg.ISSUER_HOTLINE
        ),
        "icons": _ICONS,
        "links": _links(request.script_root),
    }


_ICONS = {"mark": MARK, "verdict": VERDICT_ICONS}


@functools.lru_cache(maxsize=4)
def _issuer_of(name: str, name_en: str, url: str, hotline: str) -> dict:
    # Shared by every page that names this issuer: templates only read it.
    return {
        "name": {"zh": name, "en": name_en},
        "url": url,
        "site": url.split("://", 1)[-1].rstrip("/"),  # as the footer shows the address
        "hotline": hotline,
    }


@functools.lru_cache(maxsize=16)
def _links(script_root: str) -> dict:
    """The consumer pages' links that depend on nothing of the request but its script root
    (``SCRIPT_NAME``), built with ``url_for`` once per root: each ``url_for`` walks
    werkzeug's routing (10-15 µs), and the scan page had nine, a fifth of its render. A
    unit's and a merchant's links are their route's prefix here and the serial or the id
    (:func:`_scan_page`). Called during a request under that root."""
    return {
        "stylesheet": url_for("static", filename="site.css"),
        "favicon": url_for("static", filename="favicon.svg"),
        "share_script": url_for("static", filename="share-place.js"),
        "entry": {"zh": url_for("consumer.entry"), "en": url_for("consumer.entry", lang="en")},
        # /t/<serial> (the forms post to /t/<serial>/<kind>), /credit/merchant/<id>
        "unit": url_for("consumer.by_serial", serial="0")[:-1],
        "merchant_credit": url_for("consumer.credit_page", party_type="merchant", party_id=1)[:-1],
    }


@bp.app_template_filter("when")
def _when(moment: str | None, lang: str) -> str:
    """An answer's RFC 3339 time as people say it, in Beijing time."""
    return spoken_time(moment, lang) if moment else ""


@bp.app_template_filter("grouped")
def _grouped(serial: str) -> str:
    """A serial in groups of four, as its label prints it."""
    return grouped(serial)


@bp.app_template_filter("day")
def _day(value: str | None, lang: str) -> str:
    """An answer's ISO date as people write it."""
    return spoken_day(value, lang)


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
    return keyed_hash(settings().SECRET_KEY, f"form:{_client_value()}:{serial}")


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
    """The path as the client sent it. Lots may hold a percent-encoded '/', which the server
    has already decoded in PATH_INFO: the raw URI where the server gives it (gunicorn's
    ``RAW_URI``, uWSGI's ``REQUEST_URI``), else the decoded path encoded again, its values
    read by the Digital Link's shape (granian, the production server, gives no raw URI)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return raw.split("?", 1)[0] if raw else encode_decoded_link_path(request.path)


def _unknown(code_text: str, *, by_link: bool = False, status: int = 404):
    """The answer to a code that was never issued (or, ``by_link``, a genuine serial under
    another product's link: a forged link), its check recorded where regulators read it
    (the counterfeit map). What the code is comes from one look-up (:func:`sighting_of`)."""
    seen = counterfeit.sighting_of(db(), code_text)
    # A link that named no unit although its serial was issued is a forged link (seen is None
    # only if the serial was issued for the link's own product and lot: counted as forged).
    forged_link = by_link and (seen is None or seen.kind == "forged_link")
    if seen is not None:
        source = counterfeit.Source(*client_source("counterfeit"))
        counterfeit.record_check(db(), seen, source, datetime.now(UTC), settings())
    if _wants_json():
        return scan.unknown_answer(code_text, forged_link=forged_link), status
    return _unknown_page(code_text, seen, forged_link=forged_link, status=status)


def _unknown_page(
    code_text: str,
    seen,
    *,
    forged_link: bool = False,
    status: int = 404,
    error: str | None = None,
):
    """The never-issued (or forged-link) page, with the report-a-fake form when the code is
    a fake."""
    answer = scan.unknown_answer(code_text, forged_link=forged_link)
    lang = _lang()
    page = render_template(
        "consumer/unknown.html",
        scan=answer,
        lang=lang,
        t=lambda pair: texts.pick(pair, lang),
        advice=texts.ADVICE[answer["verdict"]["look"]],
        report_code=code_text[:300],
        report_token=_form_token("report:" + seen.code) if seen is not None else None,
        report_error=error,
    )
    return _remember_client(make_response(page, status))


def _canonical(url: str):
    """A redirect to where what was typed is written canonically, the query kept."""
    query = request.query_string.decode("ascii", "replace")
    return redirect(url + ("?" + query if query else ""), 302)


def _check(*, serial: str | None = None, link: str | None = None):
    """The unit and the answer to this client's check of it, recorded: the view's
    :func:`unit_of_work` commits it (on PostgreSQL its own statement has; the request's
    session is then opened only when the scan needs it)."""
    engine = current_app.extensions["trace"].engine
    return scan.check(engine, db, _check_source(), settings(), serial=serial, link=link)


def _scan_page(
    scan: dict,
    lang: str,
    form_token: str,
    *,
    notice: str | None = None,
    errors: dict | None = None,
) -> str:
    """The scan page of an answer, in ``lang``. What the page would otherwise work out on
    every render from fixed tables (the advice, the words for the unit's state and the
    merchant's grade) or through the routing (the forms' and links' URLs) comes ready."""
    links = _links(request.script_root)
    unit = links["unit"] + scan["code"]["serial"]  # a serial is URL-safe: A-Z and 2-7
    merchant = scan["merchant"]
    grade = merchant["credit"]["grade"]
    state = scan["code"]["state"]
    return render_template(
        "consumer/scan.html",
        scan=scan,
        lang=lang,
        form_token=form_token,
        advice=_advice(scan["verdict"]["look"], lang, settings().ISSUER_HOTLINE),
        state=texts.pick(texts.STATES[state], lang) if state in texts.STATES else state,
        grade=texts.pick(texts.GRADES[grade], lang) if grade in texts.GRADES else "",
        form_urls={kind: f"{unit}/{kind}?lang={lang}" for kind in FORMS},
        place_url=f"{unit}/place",
        credit_url=f"{links['merchant_credit']}{merchant['id']}"
        + ("" if lang == "zh" else f"?lang={lang}"),
        notice=notice,
        errors=errors or {},
        signed=any(step["type"] == "signed" for step in scan["journey"]),
    )


@functools.lru_cache(maxsize=64)
def _advice(look: str, lang: str, hotline: str) -> tuple[str, ...]:
    """What to do, per look of a verdict, in ``lang``, with the issuer's hotline."""
    return tuple(texts.pick(line, lang).format(hotline=hotline) for line in texts.ADVICE[look])


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
        page = _scan_page(scan, _lang(), _form_token(unit.serial), notice=notice, errors=errors)
        response = make_response(page, status)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Vary"] = "Accept, Accept-Language"  # a new response: none set yet
    response.headers["Link"] = linkset_header(scan["code"]["uri"])  # the resolver's links
    return _remember_client(response)


@bp.get("/01/<path:rest>")
@unit_of_work
def by_link(rest: str):
    """The GS1 Digital Link of the QR code (or typed: a serial not written canonically
    redirects a browser to the link that is). A unit's link answers its consumer page; a
    product's or a batch's, and any link asked for its linkset or a link type, answer as a
    GS1-Conformant resolver (:mod:`app.resolver.api`), off the plain scan's path."""
    path = _raw_path()
    asked = resolver_api.asked_link_type()
    if asked is not None or not is_unit_link_path(path):
        try:
            link = resolver_api.check_link(path)
        except resolver_api.Moved as moved:
            return moved.response()
        except ValidationError as exc:
            return _invalid_link(path, exc, asked)
        answered = resolver_api.answer_link(link, asked)
        if answered is not None:
            return answered
        if link.serial is None:
            return _unknown(path)
    if not is_serial(path.rsplit("/", 1)[-1]) and not _wants_json():
        try:
            link = read_code(path)
            if isinstance(link, DigitalLink) and link.serial and is_serial(link.serial):
                canonical = digital_link_path(link.gtin14, link.lot, link.serial)
                if canonical != path:
                    return _canonical(canonical)
        except ValidationError:
            pass  # answered below as a code never issued
    try:
        unit, scan = _check(link=path)
    except ValidationError as exc:
        if not is_digital_link(path):
            return _invalid_link(path, exc, asked)
        return _unknown(path, by_link=True)
    except NotFound:
        return _unknown(path, by_link=True)
    return _answer(unit, scan)


def _invalid_link(path: str, exc: ValidationError, asked: str | None):
    """A link that is not a GS1 Digital Link: 400, in the one error shape for programs; a
    person sees the never-issued page (its check recorded, a fake's report form offered)
    with the same status."""
    if asked is not None or _wants_json():
        raise resolver_api.invalid_link(exc)
    return _unknown(path, status=400)


@bp.get("/t/<serial>")
@unit_of_work
def by_serial(serial: str):
    """The short form, for a code typed by hand: read as typed; a browser is redirected to
    the canonical form when it is not how the code was written."""
    canonical = normalize_serial(serial)
    if canonical != serial and is_serial(canonical) and not _wants_json():
        return _canonical(url_for("consumer.by_serial", serial=canonical))
    sent = request.args.get("sent")
    notice = sent if sent in FORMS else None
    try:
        unit, scan = _check(serial=canonical)
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
    """A form's number (stars) as an int, or as sent for the schema to refuse: ASCII digits
    only (``str.isdigit`` also takes "²", which ``int`` refuses), a few of them."""
    return int(raw) if raw and len(raw) <= 9 and raw.isascii() and raw.isdigit() else raw


_STATUS_OF = {"conflict": 409, "forbidden": 403, "not_found": 404}


@bp.post("/t/<serial>/<kind>")
@unit_of_work
def send_form(serial: str, kind: str):
    """A review, complaint or delivery rating from the page's forms (no JavaScript needed).
    On success the page is shown again with a notice (post/redirect/get); when refused, what
    was sent is dropped and the page is answered again (its check recorded) with the reason."""
    if kind not in FORMS:
        raise NotFound("the forms are review, complaint and rating")
    code = find_unit(db(), serial)
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
        return _unknown_page(
            text,
            seen,
            forged_link=seen.kind == "forged_link",
            status=422,
            error=f"{field}: {first['msg']}",
        )
    except DomainError as exc:
        db().rollback()
        status = getattr(exc, "status", None) or _STATUS_OF.get(exc.code, 422)
        return _unknown_page(
            text, seen, forged_link=seen.kind == "forged_link", status=status, error=exc.message
        )
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
    code = find_unit(db(), serial)
    _check_form_token(code.serial)
    try:
        lat, lon = float(request.form["lat"]), float(request.form["lon"])
    except (KeyError, ValueError):
        raise ValidationError("send lat and lon as numbers", field="lat") from None
    place = checks.share_place(db(), code.serial, _check_source(), lat, lon, settings())
    return {"place": place}


# -- the entry page, and the public credit the scan page links to ------------------------------


def _entry(typed: str = "", error: str | None = None, status: int = 200):
    lang = _lang()
    page = render_template("consumer/entry.html", lang=lang, typed=typed, error=error)
    response = make_response(page, status)
    response.headers["Vary"] = "Accept-Language"
    return response


@bp.get("/")
def entry():
    """Where the public types a code, or scans it with the phone's camera."""
    return _entry()


@bp.get("/t/")
def entry_again():
    """``/t/`` without a code: the entry page."""
    return redirect(url_for("consumer.entry", **request.args), 302)


#: Why typed text is not looked up: (Chinese, English).
_NOT_A_CODE = {
    "empty": ("请输入追溯码。", "Type a trace code."),
    "long": ("输入的内容太长，不是追溯码。", "That is too long to be a trace code."),
    "no_serial": (
        "这个条码只有商品编码，没有追溯码（序列号）。",
        "That barcode names the product only, with no serial.",
    ),
    "shape": (
        "追溯码为 16 位，由字母 A–Z 和数字 2–7 组成，请核对标签。",
        "A trace code has 16 characters, letters A–Z and digits 2–7: check the label.",
    ),
}


def _target_of(typed: str) -> str:
    """The canonical path of the unit page for what was typed; ValidationError (its message
    in the page's language) when it cannot be a code."""
    lang = _lang()
    if not typed.strip():
        problem = "empty"
    elif len(typed) > MAX_TYPED:
        problem = "long"
    else:
        read = read_code(typed)  # a malformed link or element string: its own message
        if isinstance(read, DigitalLink):
            if read.serial is not None:
                return digital_link_path(read.gtin14, read.lot, read.serial)
            problem = "no_serial"
        elif is_serial(read):
            return url_for("consumer.by_serial", serial=read)
        else:
            problem = "shape"
    raise ValidationError(texts.pick(_NOT_A_CODE[problem], lang), field="code")


@bp.get("/check")
def check_typed():
    """What was typed (or scanned) on the entry page: redirected to its unit's page by
    serial or by Digital Link, written canonically. Text that cannot be a code is answered
    with the entry page again and the reason (422), not with a counterfeit verdict."""
    typed = request.args.get("code", "")
    try:
        target = _target_of(typed)
    except ValidationError as exc:
        if _wants_json():
            raise
        return _entry(typed[:MAX_TYPED], exc.message, 422)
    asked = request.args.get("lang")
    return redirect(target + (f"?lang={asked}" if asked in texts.LANGS else ""), 303)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for it whatever a page says; the pages themselves point at the SVG."""
    return send_from_directory(
        current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400
    )


@bp.get("/credit/<party_type>/<id:party_id>")
def credit_page(party_type: str, party_id: int):
    """A party's public credit as a page (the scan page's grade links here): score, grade,
    lists, commitment and the final records behind them, as ``GET /api/v1/credit/…``
    answers them to the public."""
    if party_type not in ("merchant", "logistics_company", "courier"):
        raise NotFound("the party types are merchant, logistics_company and courier")
    party = credit.public_party(db(), party_type, party_id)
    account = credit.account(db(), party_type, party_id, settings().policy)
    records = [r for r in account.records if r.standing == "public"]
    lang = _lang()
    return render_template(
        "consumer/credit.html",
        lang=lang,
        party=party,
        standing=account.standing,
        commitment=account.commitment,
        records=sorted(records, key=lambda r: r.effective_at, reverse=True),
        grades=texts.GRADES,
        lists=texts.LISTS,
        policy=settings().policy,
        t=lambda pair: texts.pick(pair, lang),
    )
