"""The Flask application: :func:`create_app` wires config, database, errors, API and CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import flask
import flask.templating
from sqlalchemy.orm import Session, sessionmaker

from config import Config, load_config

#: Pages load only their own stylesheet, script and images; no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


#: What a plain dict has as attributes (methods); any other name can only be one of its keys.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class TemplateEnvironment(flask.templating.Environment):
    """Flask's Jinja environment, where ``a.b`` on a plain dict looks up the key first. Jinja
    tries the attribute first and then the key: the pages read their answers (dicts) this
    way a hundred times a page, and each failed attribute raised and caught an exception.
    The result is the same: a plain dict has no attribute other than its methods."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


class Response(flask.Response):
    """Flask's response, whose headers go to the server as the application set them.

    werkzeug copies every header into a new list at the end, checking each value again
    (they were checked when set), to fix up ``Location`` and ``Content-Location`` and the
    length of bodyless statuses: about a twentieth of a consumer scan's CPU. Responses that
    need none of that (no such header, a status with a body) skip the copy; the others take
    werkzeug's way."""

    def get_wsgi_response(self, environ: dict[str, Any]):
        status = self.status_code
        if status < 200 or status in (204, 304):
            return super().get_wsgi_response(environ)
        headers = list(self.headers)
        has_length = False
        for name, _ in headers:
            lowered = name.lower()
            if lowered == "content-length":
                has_length = True
            elif lowered in ("location", "content-location"):
                return super().get_wsgi_response(environ)
        if not has_length and self.automatically_set_content_length and self.is_sequence:
            headers.append(("Content-Length", str(sum(len(x) for x in self.iter_encoded()))))
        return self.get_app_iter(environ), self.status, headers


class Flask(flask.Flask):
    """Flask, with :class:`Response`, :meth:`ensure_sync`'s answer kept per function (Flask
    asks again for every hook and view on every request, and each answer inspects the
    function's code flags), and templates in a :class:`TemplateEnvironment`."""

    jinja_environment = TemplateEnvironment
    response_class = Response

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        found = self._sync.get(func)
        if found is None:
            if len(self._sync) > 4096:  # functions made on the fly: keep it bounded
                self._sync.clear()
            found = self._sync[func] = super().ensure_sync(func)
        return found


@dataclass
class Extension:
    config: Config
    engine: object
    sessionmaker: sessionmaker[Session]


def create_app(overrides: dict | None = None) -> flask.Flask:
    """Build the application. ``overrides`` replace settings from the environment (tests)."""
    from flask_limiter import Limiter

    from app import cli, errors, ratelimit, web, workspace
    from app.anomalies.api import bp as anomalies_bp
    from app.catalog.api import bp as catalog_bp
    from app.codes.api import bp as codes_bp
    from app.consumer.pages import bp as consumer_bp
    from app.credit.api import bp as credit_bp
    from app.db import create_engine, make_sessionmaker
    from app.events.api import bp as events_bp
    from app.feedback.api import bp as feedback_bp
    from app.ingest.api import bp as ingest_bp
    from app.openapi import bp as openapi_bp
    from app.parties.api import bp as parties_bp

    config = load_config(overrides)
    flask_app = Flask(
        __name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance")
    )
    flask_app.config.update(
        SECRET_KEY=config.SECRET_KEY,
        MAX_CONTENT_LENGTH=config.MAX_CONTENT_LENGTH,
        TESTING=config.TRACE_ENV == "testing",
        JSON_SORT_KEYS=False,
        # Workspace sessions: HttpOnly, SameSite, Secure whenever served over HTTPS.
        SESSION_COOKIE_NAME="trace_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.TRACE_ENV == "production",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.SESSION_MAX_HOURS),
        RATELIMIT_STORAGE_URI=(
            ratelimit.SCHEME
            if config.RATE_LIMIT_STORAGE.startswith("memory://")
            else config.RATE_LIMIT_STORAGE
        ),
        RATELIMIT_HEADERS_ENABLED=True,
    )
    flask_app.session_interface = web.SessionInterface()
    flask_app.json.ensure_ascii = False
    flask_app.json.sort_keys = False
    engine = create_engine(config.DATABASE_URL)
    flask_app.extensions["trace"] = Extension(config, engine, make_sessionmaker(engine))

    errors.register(flask_app)
    flask_app.teardown_appcontext(web.close_session)
    limiter = Limiter(web.client_address, app=flask_app)
    # Static strings (the settings do not change while the app runs): a callable is called
    # and its limit string parsed again on every request.
    public = ratelimit.PublicLimit(limiter, config.PUBLIC_RATE_LIMIT, web.client_address)
    api = (
        *(parties_bp, catalog_bp, codes_bp, ingest_bp, events_bp),
        *(anomalies_bp, credit_bp, feedback_bp),
    )
    for bp in (*api, openapi_bp):
        if bp in (codes_bp, anomalies_bp, credit_bp, feedback_bp):
            public.apply(flask_app, bp)
        flask_app.register_blueprint(bp, url_prefix="/api/v1")
    public.apply(flask_app, consumer_bp)
    public.take_over(flask_app)
    flask_app.register_blueprint(consumer_bp)
    workspace.register(flask_app, limiter.limit(config.SIGN_IN_RATE_LIMIT))
    cli.register(flask_app)
    from app.anomalies.cli import sweep_command

    cli.trace_cli.add_command(sweep_command)

    security_headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("Permissions-Policy", "geolocation=(self), camera=()"),
    ]
    if config.TRACE_ENV == "production":
        security_headers.append(("Strict-Transport-Security", "max-age=31536000"))
    flask_app.wsgi_app = web.SecurityHeaders(flask_app.wsgi_app, security_headers)

    @flask_app.get("/healthz")
    def healthz():
        """Liveness for a load balancer (and the load bench's baseline): no database."""
        return {"status": "ok"}

    return flask_app
