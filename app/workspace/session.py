"""The workspace's blueprint and its sessions: sign-in state, the signed-in viewer, the
anti-forgery token, checked before every workspace request."""

from __future__ import annotations

import hmac
import secrets
import time

from flask import Blueprint, g, redirect, request, session, url_for

from app.auth.operations import user_principal
from app.errors import ApiError
from app.web import db, settings
from app.workspace import names
from app.workspace.evidence import describe
from app.workspace.words import page_lang
from tracecore.access import Principal, Role
from tracecore.errors import Forbidden

bp = Blueprint("workspace", __name__, url_prefix="/workspace")

#: Roles that may use the workspace at all (merchants and companies use the API for now).
WORKSPACE_ROLES = (Role.ADMIN, Role.REGULATOR)
OPEN_VIEWS = {"workspace.sign_in"}


def start_session(user_id: int, generation: int) -> None:
    """A fresh session for a user who just proved who they are (never reuse the old one),
    valid while the user's session generation stays ``generation``."""
    session.clear()
    session.permanent = True
    now = int(time.time())
    session.update(
        uid=user_id, gen=generation, signed_in_at=now, seen_at=now, csrf=secrets.token_urlsafe(32)
    )


def viewer() -> Principal:
    """The signed-in person (set for every workspace request but the sign-in page)."""
    return g.workspace_viewer


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.before_request
def require_sign_in():
    """Load the person behind the session, ending it when it is too old or idle."""
    if request.endpoint in OPEN_VIEWS:
        return None
    cfg = settings()
    now = int(time.time())
    uid = session.get("uid")
    expired = (
        uid is None
        or now - session.get("signed_in_at", 0) > cfg.SESSION_MAX_HOURS * 3600
        or now - session.get("seen_at", 0) > cfg.SESSION_IDLE_MINUTES * 60
    )
    found = None if expired else user_principal(db(), uid, session.get("gen"))
    if found is None:
        session.clear()
        if request.method == "GET":
            return redirect(url_for("workspace.sign_in", next=request.full_path))
        raise ApiError(401, "unauthorized", "your session has ended; sign in again")
    if found.role not in WORKSPACE_ROLES:
        raise Forbidden("the workspace is for regulators and admins")
    session["seen_at"] = now
    g.workspace_viewer = found
    if request.method == "POST" and not form_token_ok():
        raise ApiError(400, "bad_form_token", "the form has expired; reload the page and try again")
    return None


def form_token_ok() -> bool:
    """Whether a posted form carries this session's anti-forgery token (the sign-in form's
    too: another site cannot sign a browser in to an account of its choosing)."""
    sent = request.form.get("csrf_token", "")
    return bool(sent) and hmac.compare_digest(sent, session.get("csrf", ""))


@bp.context_processor
def page_globals() -> dict:
    return {
        "csrf_token": csrf_token,
        "viewer": g.get("workspace_viewer"),
        "username": session.get("username", ""),
        "finding_rows": _finding_rows,
        "evidence": lambda anomaly: describe(anomaly, page_lang()),
        # What <html lang> declares: the language the page is written in (screen readers,
        # the browser's translation offer, the font's CJK forms).
        "html_lang": "en" if page_lang() == "en" else "zh-CN",
    }


def _finding_rows(items: list) -> names.Rows:
    """Party names and decisions of the findings a page lists (app/workspace/names.py)."""
    return names.rows_of(db(), viewer(), items)
