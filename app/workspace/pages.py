"""The workspace's pages: search, histories, the anomaly queue, the map, recalls, credit,
exports and the access log. Each view checks, calls one use case, logs the access, renders."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from flask import (
    Response,
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
from app.events import history
from app.events.models import RejectedEvent, RejectionTally
from app.feedback.models import Complaint
from app.parties.models import PARTY_MODELS
from app.web import client_address, db, settings, unit_of_work
from app.workspace import search as finder
from app.workspace import throttle
from app.workspace.maps import MapQuery, map_view
from app.workspace.session import WORKSPACE_ROLES, bp, start_session, viewer
from tracecore.access import Role
from tracecore.anomalies import ANOMALY_TYPES
from tracecore.errors import Forbidden, ValidationError

PAGE = 50
#: Dates typed into the filters are China Standard Time.
CST = timezone(timedelta(hours=8), "CST")


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
            target = request.args.get("next", "")
            # Only a path of this site: never an open redirect.
            if not target.startswith("/workspace") or target.startswith("//"):
                target = url_for("workspace.home")
            return redirect(target)
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


@bp.get("/")
def home():
    you = viewer()
    open_by_type = dict(
        db()
        .execute(
            sa.select(Anomaly.type, sa.func.count())
            .where(Anomaly.id.in_(findings.visible_anomalies(you).with_only_columns(Anomaly.id)))
            .where(Anomaly.status == "open")
            .group_by(Anomaly.type)
        )
        .all()
    )
    pending = db().scalar(
        sa.select(sa.func.count())
        .select_from(Appeal)
        .where(
            Appeal.status == "pending",
            Appeal.anomaly_id.in_(findings.visible_anomalies(you).with_only_columns(Anomaly.id)),
        )
    )
    return render_template("workspace/home.html", open_by_type=open_by_type, pending=pending)


@bp.get("/search")
@unit_of_work
def search():
    q = request.args.get("q", "").strip()[:300]
    results = finder.search(db(), viewer(), q) if q else []
    # A courier's result shows the full name (the ID and phone masked).
    _log("view", "search", q[:64], personal=any(r.kind == "courier" for r in results))
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
    code = codes.find_code(db(), serial)  # as typed: normalised there
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
        rejected=_rejected_naming(RejectedEvent.serial, code.serial),
        place_of_point=place_of_point,
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


def _time(name: str, args=None) -> datetime | None:
    raw = (request.args if args is None else args).get(name, "")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"{name}: give a date like 2026-11-22", field=name) from None
    if moment.tzinfo is None:  # a date from the form: China Standard Time
        moment = moment.replace(tzinfo=CST)
    return moment.astimezone(UTC)


def _queue_filter(args=None) -> findings.AnomalyFilter:
    """The queue's filter from the query (or, for a bulk decision, the form)."""
    args = request.args if args is None else args
    region = args.get("region_code", "").strip()
    if region and (not region.isdigit() or len(region) not in (2, 4, 6)):
        raise ValidationError("region: 2, 4 or 6 digits of a region code", field="region_code")
    before = args.get("before", "")
    return findings.AnomalyFilter(
        type=args.get("type") or None,
        status=args.get("status") or None,
        severity=args.get("severity") or None,
        region_code=region or None,
        since=_time("since", args),
        until=_time("until", args),
        within_wkt=MapQuery.from_args(args).area_wkt(),
        before=int(before) if before.isdigit() else None,
    )


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
    f = _queue_filter()
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


@bp.get("/anomalies.csv")
@unit_of_work
def anomalies_csv():
    """The anomaly queue as filtered, every page of it, as CSV (UTF-8 with BOM for Excel)."""
    f = _queue_filter()
    you = viewer()
    _log("export", "anomalies", "csv", detail=request.query_string.decode()[:300])

    def rows():
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "id",
                "type",
                "severity",
                "status",
                "subject_type",
                "subject",
                "party_type",
                "party_id",
                "region_code",
                "detected_at",
                "decided_at",
            ]
        )
        yield "\ufeff" + out.getvalue()
        before = f.before
        while True:
            page = findings.find_anomalies(
                db(), you, findings.AnomalyFilter(**{**f.__dict__, "before": before}), 1000
            )
            if not page:
                return
            out = io.StringIO()
            writer = csv.writer(out)
            for a in page:
                writer.writerow(
                    [
                        a.id,
                        a.type,
                        a.severity,
                        a.status,
                        a.subject_type,
                        _cell(a.subject),
                        a.party_type,
                        a.party_id,
                        a.region_code,
                        a.detected_at.isoformat(),
                        a.decided_at.isoformat() if a.decided_at else "",
                    ]
                )
            yield out.getvalue()
            before = page[-1].id

    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="anomalies.csv"'},
    )


def _cell(value: str) -> str:
    """No spreadsheet formulas from data (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _back(default: str) -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/workspace") and not target.startswith("//") else default


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
    _log("change", "anomaly", anomaly_id, detail=request.form.get("decision", ""))
    return redirect(_back(url_for("workspace.anomalies")), 303)


#: The queue's filters a bulk decision carries over from the page.
BULK_FILTERS = ("type", "severity", "region_code", "district", "since", "until")


@bp.post("/anomalies/decisions")
@unit_of_work
def decide_many():
    """Confirm or dismiss every open finding the queue's filter selects, with one reason: a
    first post shows how many will be decided and asks again; the second decides."""
    form = request.form
    carried = {k: form.get(k, "")[:64] for k in BULK_FILTERS if form.get(k)}
    where = _queue_filter(carried)
    decision, reason = form.get("decision", ""), form.get("reason", "")[:1000]
    confirmed = form.get("confirmed") == "yes"
    result = decisions.decide_many(
        db(),
        viewer(),
        decision,
        reason,
        where=where,
        period=settings().response_period,
        preview=not confirmed,
    )
    if not confirmed:
        _log("view", "anomalies", "bulk preview", detail=str(carried)[:300])
        return render_template(
            "workspace/bulk_confirm.html",
            result=result,
            decision=decision,
            reason=reason,
            carried=carried,
            cap=decisions.BULK_CAP,
        )
    _log("change", "anomalies", "bulk", detail=f"{decision} {result.decided} {carried}"[:300])
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
    _log("change", "appeal", appeal_id, detail=request.form.get("decision", ""))
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


@bp.post("/batches/<id:batch_id>/recall")
@unit_of_work
def recall(batch_id: int):
    credit_ops.recall_batch(db(), viewer(), batch_id, request.form.get("reason", ""))
    _log("change", "batch", batch_id, detail="recall")
    return redirect(url_for("workspace.batch_page", batch_id=batch_id), 303)


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
                        _cell(who.get("name", "")),
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


@bp.get("/parties/<party_type>/<id:party_id>")
@unit_of_work
def party_page(party_type: str, party_id: int):
    if party_type not in PARTY_MODELS:
        raise ValidationError("party types: merchant, logistics_company, courier")
    party = credit_ops.get_party(db(), party_type, party_id)
    viewer().require_region(party.region_code, "this party")
    account = credit_ops.account(db(), party_type, party_id, settings().policy)
    _log("view", party_type, party_id, personal=party_type == "courier", detail="credit")
    return render_template(
        "workspace/party.html",
        party=party,
        party_type=party_type,
        account=account,
        place=place_of_region(party.region_code),
        anomalies=list(
            db().scalars(
                sa.select(Anomaly)
                .where(Anomaly.party_type == party_type, Anomaly.party_id == party_id)
                .order_by(Anomaly.id.desc())
                .limit(100)
            )
        ),
    )


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
