"""The workspace's pages: search, histories, the anomaly queue, the map, recalls, credit,
exports and the access log. Each view checks, calls one use case, logs the access, renders."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import (
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)

from app import authz
from app.accesslog.models import AccessEntry
from app.accesslog.operations import log_access
from app.anomalies import decisions, findings
from app.auth.operations import check_password, end_sessions
from app.catalog.operations import get_batch
from app.codes import operations as codes
from app.codes.api import code_answer
from app.consumer.places import place_of_point, place_of_region
from app.credit import operations as credit_ops
from app.credit.models import Anomaly, Appeal, AuditEntry
from app.csvcells import cell
from app.errors import ApiError, wants_page
from app.events import history
from app.events.models import RejectedEvent, RejectionTally
from app.feedback.models import Complaint
from app.web import client_address, db, local_target, settings, unit_of_work
from app.workspace import search as finder
from app.workspace import throttle, words
from app.workspace.filters import queue_filter
from app.workspace.maps import MapQuery, map_view
from app.workspace.names import party_names
from app.workspace.session import WORKSPACE_ROLES, bp, form_token_ok, start_session, viewer
from tracecore.access import Role
from tracecore.anomalies import ANOMALY_TYPES
from tracecore.errors import Forbidden, NotFound, ValidationError

PAGE = 50


def _log(action: str, target_type: str, target_id, *, personal: bool = False, detail: str = ""):
    log_access(
        db(), viewer(), action, target_type, target_id, personal_data=personal, detail=detail
    )


# -- signing in and out -----------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@unit_of_work
def sign_in():
    """Username and password; a failed attempt says nothing about which one was wrong.

    Limited per address and per account (app/workspace/throttle.py)."""
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")[:64]
        attempt = throttle.Attempt.start(username, client_address())
        if attempt.refused_by == "account":
            log_access(db(), None, "sign_in_failed", "user", attempt.account, detail="throttled")
        if attempt.wait:
            return throttle.too_many(attempt.wait)
        if not form_token_ok():  # counted above, like any attempt
            if not wants_page():
                raise ApiError(400, "bad_form_token", "reload the sign-in form and try again")
            error = "表单已过期，请重新登录 · The form has expired; sign in again"
            return render_template("workspace/sign_in.html", error=error), 400
        user = check_password(db(), username, request.form.get("password", "")[:200])
        if user is None or user.role not in WORKSPACE_ROLES:
            log_access(db(), None, "sign_in_failed", "user", attempt.account)
            error = "用户名或密码错误 · Wrong username or password"
        else:
            attempt.succeeded()
            user.last_login_at = datetime.now(UTC)
            start_session(user.id, user.session_generation)
            session["username"] = user.display_name or user.username
            log_access(
                db(), None, "sign_in", "user", user.id, detail=f"{user.role.value} {user.username}"
            )
            # Only a path of this site: never an open redirect, never a header break.
            home = url_for("workspace.home")
            return redirect(local_target(request.args.get("next", ""), "/workspace", home))
    status = 401 if error else 200
    return render_template("workspace/sign_in.html", error=error), status


@bp.post("/sign-out")
@unit_of_work
def sign_out():
    """Ends this session and every other of the same user, on the server."""
    _log("sign_out", "user", viewer().user_id)
    end_sessions(db(), viewer().user_id)
    session.clear()
    return redirect(url_for("workspace.sign_in"))


# -- home and search --------------------------------------------------------------------------


@bp.get("/search")
@unit_of_work
def search():
    q = request.args.get("q", "").strip()[:300]
    results = finder.search(db(), viewer(), q) if q else []
    # Mobile and ID numbers (and a courier's name) are logged masked, with a keyed hash; a
    # courier's result shows the full name (the ID and phone masked): personal data too.
    term = finder.logged_term(q, results)
    shown_courier = any(r.kind == "courier" for r in results)
    _log(
        "view",
        "search",
        term.text[:64],
        personal=term.personal or shown_courier,
        detail=" ".join(term.hashes),
    )
    if len(results) == 1:  # one hit: straight to it
        return redirect(results[0].url)
    return render_template("workspace/search.html", q=q, results=results)


# -- histories ----------------------------------------------------------------------------------


def _rejected_naming(column, subject: str) -> list[RejectedEvent]:
    """Rejected events that name this serial or waybill (``RejectedEvent.serial`` or
    ``.waybill``, indexed: never a search through payloads)."""
    return list(
        db().scalars(
            sa.select(RejectedEvent)
            .where(column == subject, authz.rejected_events_visible(viewer()))
            .order_by(RejectedEvent.id.desc())
            .limit(50)
        )
    )


def _anomalies_on(subject_type: str, subject: str) -> list[Anomaly]:
    return list(
        db().scalars(
            sa.select(Anomaly)
            .where(Anomaly.subject_type == subject_type, Anomaly.subject == subject)
            .order_by(Anomaly.id.desc())
        )
    )


@bp.get("/codes/<serial>")
@unit_of_work
def code_page(serial: str):
    try:
        code = codes.find_code(db(), serial)  # as typed: normalised there
    except (NotFound, ValidationError):
        return _never_issued(serial.strip())
    answer = code_answer(code)
    found = history.code_history(db(), viewer(), code.serial, answer)
    complaints = list(
        db().scalars(
            sa.select(Complaint).where(Complaint.serial == code.serial).order_by(Complaint.id)
        )
    )
    # Exact delivery points, complaint contacts, raw rejected payloads: personal data.
    _log("view", "code", code.serial, personal=True, detail="history, complaints")
    return render_template(
        "workspace/code.html",
        code=answer,
        history=found,
        anomalies=_anomalies_on("code", code.serial),
        complaints=complaints,
        complaint_parties=party_names(
            db(), viewer(), [(c.party_type, c.party_id) for c in complaints]
        ),
        rejected=_rejected_naming(RejectedEvent.serial, code.serial),
        place_of_point=place_of_point,
    )


def _never_issued(serial: str):
    """A code that was never issued but was scanned (an ``unknown_code`` finding) or named
    by a rejected event: what is known of it, instead of a bare 404."""
    found = [a for a in _anomalies_on("code", serial) if viewer().covers(a.region_code)]
    rejected = _rejected_naming(RejectedEvent.serial, serial.upper()[:64])
    if not found and not rejected:
        raise NotFound(f"no trace code {serial[:64]} was ever issued or scanned")
    _log("view", "code", serial[:64], personal=True, detail="never issued")
    return render_template(
        "workspace/never_issued.html", serial=serial, anomalies=found, rejected=rejected
    )


@bp.get("/parcels/<waybill>")
@unit_of_work
def parcel_page(waybill: str):
    found = history.parcel_history(db(), viewer(), waybill)
    _log("view", "parcel", found["waybill"], personal=True, detail="consignee point")
    return render_template(
        "workspace/parcel.html",
        parcel=found,
        anomalies=_anomalies_on("waybill", found["waybill"]),
        rejected=_rejected_naming(RejectedEvent.waybill, found["waybill"]),
        place_of_point=place_of_point,
    )


# -- the anomaly queue --------------------------------------------------------------------------


def _with_appeals(items: list[Anomaly]) -> dict[int, list[Appeal]]:
    found: dict[int, list[Appeal]] = {}
    if items:
        for a in db().scalars(
            sa.select(Appeal).where(Appeal.anomaly_id.in_([i.id for i in items]))
        ):
            found.setdefault(a.anomaly_id, []).append(a)
    return found


@bp.get("/anomalies")
@unit_of_work
def anomalies():
    f = queue_filter()
    items = findings.find_anomalies(db(), viewer(), f, PAGE + 1)
    more = len(items) > PAGE
    items = items[:PAGE]
    _log("view", "anomalies", "queue", detail=request.query_string.decode()[:300])
    args = {k: v for k, v in request.args.items() if k != "before"}
    return render_template(
        "workspace/anomalies.html",
        items=items,
        appeals=_with_appeals(items),
        types=ANOMALY_TYPES,
        args=request.args,
        next_url=url_for("workspace.anomalies", before=items[-1].id, **args) if more else None,
        csv_url=url_for("workspace.anomalies_csv", **args),
        bulk_filters=BULK_FILTERS,
        place_of_region=place_of_region,
    )


def _back(default: str) -> str:
    return local_target(request.form.get("back", ""), "/workspace", default)


@bp.post("/anomalies/<id:anomaly_id>/decision")
@unit_of_work
def decide(anomaly_id: int):
    decisions.decide(
        db(),
        viewer(),
        anomaly_id,
        request.form.get("decision", ""),
        request.form.get("reason", "")[:1000],
        settings().response_period,
    )
    decision = request.form.get("decision", "")
    _log("change", "anomaly", anomaly_id, detail=decision)
    done = words.label("status", "confirmed" if decision == "confirm" else "dismissed")
    flash(f"异常 #{anomaly_id} {done} · Finding #{anomaly_id} {decision}ed")
    return redirect(_back(url_for("workspace.anomalies")), 303)


#: The queue's filters a bulk decision carries over from the page.
BULK_FILTERS = ("type", "severity", "region_code", "district", "since", "until")


def _ticked_rows(form) -> list[int] | None:
    """The rows ticked in the queue (``ids``) when the bulk form says so (``scope=rows``),
    else None: the queue's filter selects."""
    if form.get("scope") != "rows":
        return None
    raw = form.getlist("ids")[: decisions.BULK_CAP + 1]
    if not raw:
        raise ValidationError("请先勾选异常 · tick at least one finding", field="ids")
    if not all(r.isdigit() and len(r) <= 18 for r in raw):
        raise ValidationError("ids: the findings' numbers", field="ids")
    return [int(r) for r in raw]


@bp.post("/anomalies/decisions")
@unit_of_work
def decide_many():
    """Confirm or dismiss, with one reason, the rows ticked in the queue or every open
    finding the queue's filter selects: a first post shows how many will be decided and
    asks again; the second decides, then the queue shows each row's decision."""
    form = request.form
    carried = {k: form.get(k, "")[:64] for k in BULK_FILTERS if form.get(k)}
    ids = _ticked_rows(form)
    where = queue_filter(carried)
    decision, reason = form.get("decision", ""), form.get("reason", "")[:1000]
    confirmed = form.get("confirmed") == "yes"
    result = decisions.decide_many(
        db(),
        viewer(),
        decision,
        reason,
        ids=ids,
        where=None if ids is not None else where,
        period=settings().response_period,
        preview=not confirmed,
    )
    scope = "rows" if ids is not None else "filter"
    if not confirmed:
        _log("view", "anomalies", "bulk preview", detail=f"{scope} {ids or carried}"[:300])
        return render_template(
            "workspace/bulk_confirm.html",
            result=result,
            decision=decision,
            reason=reason,
            carried=carried,
            ids=ids or [],
            cap=decisions.BULK_CAP,
        )
    _log(
        "change",
        "anomalies",
        "bulk",
        detail=f"{decision} {result.decided} {scope} {ids or carried}"[:300],
    )
    done = words.label("status", "confirmed" if decision == "confirm" else "dismissed")
    flash(f"{done} {result.decided} 条异常 · {result.decided} findings {decision}ed")
    return redirect(url_for("workspace.anomalies", decided=result.decided, **carried), 303)


@bp.post("/appeals/<id:appeal_id>/decision")
@unit_of_work
def decide_appeal(appeal_id: int):
    decisions.decide_appeal(
        db(),
        viewer(),
        appeal_id,
        request.form.get("decision", ""),
        request.form.get("reason", "")[:1000],
        settings().policy,
    )
    decision = request.form.get("decision", "")
    _log("change", "appeal", appeal_id, detail=decision)
    done = words.label("status", "upheld" if decision == "uphold" else "rejected")
    flash(f"申诉 #{appeal_id} {done} · Appeal #{appeal_id} {done}")
    return redirect(_back(url_for("workspace.anomalies")), 303)


# -- the map ------------------------------------------------------------------------------------


@bp.get("/map")
@unit_of_work
def map_page():
    query = MapQuery.from_args(request.args)
    shown = map_view(db(), viewer(), query)
    _log("view", "map", query.describe())
    return render_template("workspace/map.html", view=shown, query=query)


# -- batches: recall and forward trace --------------------------------------------------------


def _trace_rows(batch_id: int, after: str = "", limit: int = 100) -> dict:
    found = history.batch_trace(db(), viewer(), batch_id, after=after, limit=limit)
    for unit in found["units"]:
        last = unit["last_event"]
        unit["place"] = (
            place_of_point(last["lat"], last["lon"]) if last and last["lat"] is not None else None
        )
    return found


@bp.get("/batches/<id:batch_id>")
@unit_of_work
def batch_page(batch_id: int):
    batch = get_batch(db(), batch_id)
    viewer().require_region(batch.product.merchant.region_code, "this batch")
    found = _trace_rows(batch_id, request.args.get("after", "")[:16])
    _log("view", "batch", batch_id, personal=True, detail="forward trace (courier names)")
    return render_template("workspace/batch.html", batch=batch, trace=found)


@bp.get("/batches/<id:batch_id>/trace.csv")
@unit_of_work
def batch_trace_csv(batch_id: int):
    """Where every unit of the batch is now, as CSV, streamed a page at a time."""
    batch = get_batch(db(), batch_id)
    viewer().require_region(batch.product.merchant.region_code, "this batch")
    _log("export", "batch", batch_id, personal=True, detail="forward trace csv")

    def rows():
        out = io.StringIO()
        csv.writer(out).writerow(
            ["serial", "state", "custodian_type", "custodian", "last_event", "time", "district"]
        )
        yield "\ufeff" + out.getvalue()
        after = ""
        while True:
            page = _trace_rows(batch_id, after, 1000)
            out = io.StringIO()
            writer = csv.writer(out)
            for u in page["units"]:
                who = u["custodian"] or {}
                last = u["last_event"] or {}
                writer.writerow(
                    [
                        u["serial"],
                        u["state"],
                        who.get("type", ""),
                        cell(who.get("name", "")),
                        last.get("type", ""),
                        last.get("time", ""),
                        u["place"]["zh"] if u["place"] else "",
                    ]
                )
            yield out.getvalue()
            if not page["next_after"]:
                return
            after = page["next_after"]

    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-trace.csv"'},
    )


# -- credit -------------------------------------------------------------------------------------


@bp.post("/parties/<party_type>/<id:party_id>/records")
@unit_of_work
def add_record(party_type: str, party_id: int):
    credit_ops.add_record(
        db(),
        viewer(),
        party_type,
        party_id,
        request.form.get("kind", ""),
        request.form.get("reason", "")[:300],
        settings().policy,
        settings().response_period,
    )
    _log("change", party_type, party_id, detail=request.form.get("kind", ""))
    return redirect(url_for("workspace.party_page", party_type=party_type, party_id=party_id), 303)


# -- the access log (admins) ------------------------------------------------------------------


@bp.get("/audit")
@unit_of_work
def audit_log():
    you = viewer()
    if you.role is not Role.ADMIN:
        raise Forbidden("the access log is for admins")
    accesses = list(db().scalars(sa.select(AccessEntry).order_by(AccessEntry.id.desc()).limit(200)))
    decisions = list(db().scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)))
    _log("view", "access_log", "latest")
    return render_template("workspace/audit.html", accesses=accesses, decisions=decisions)


# -- rejected traffic ---------------------------------------------------------------------------


@bp.get("/rejected")
@unit_of_work
def rejected_traffic():
    """What unregistered senders sent (and registered devices beyond their hourly cap of
    rows), counted per hour, client address, claimed device id and reason: the latest 200
    tallies. Client addresses may identify a person: the view is logged as such."""
    tallies = list(
        db().scalars(
            sa.select(RejectionTally)
            .where(authz.rejected_events_visible(viewer(), RejectionTally.device_id))
            .order_by(RejectionTally.last_seen_at.desc())
            .limit(200)
        )
    )
    _log("view", "rejection_tallies", "latest", personal=True)
    return render_template("workspace/rejected.html", tallies=tallies)
