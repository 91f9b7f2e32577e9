"""The Flask application: :func:`create_app` wires config, database, errors, API and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import flask
from sqlalchemy.orm import Session, sessionmaker

from config import Config, load_config

#: Pages load only their own stylesheet, script and images; no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

#: The public endpoints that answer about one unit, by its code: its page (``/t/``, the
#: Digital Link ``/01/…``, and the page's forms, which answer with the page), the API's
#: answer, lookup by URI and label images, and the public feedback on it. A client has one
#: ``PUBLIC_RATE_LIMIT`` budget for all of them together, whichever URL it asks.
UNIT_ANSWERS = (
    "consumer.*",
    *("codes.get_code", "codes.lookup_code", "codes.label_png", "codes.label_svg"),
    *("codes.barcode_png", "codes.barcode_svg"),
    *("feedback.rate_as_consignee", "feedback.add_review", "feedback.file_complaint"),
)


@dataclass
class Extension:
    config: Config
    engine: object
    sessionmaker: sessionmaker[Session]


def create_app(overrides: dict | None = None) -> flask.Flask:
    """Build the application. ``overrides`` replace settings from the environment (tests)."""
    from flask_limiter import Limiter

    from app import cli, errors, ratelimit, web, workspace, wrappers
    from app.anomalies.api import bp as anomalies_bp
    from app.catalog.api import bp as catalog_bp
    from app.codes.api import bp as codes_bp
    from app.consumer.pages import bp as consumer_bp
    from app.counterfeit.api import bp as counterfeit_bp
    from app.credit.api import bp as credit_bp
    from app.db import create_engine, make_sessionmaker
    from app.epcis.api import bp as epcis_bp
    from app.events.api import bp as events_bp
    from app.feedback.api import bp as feedback_bp
    from app.hooks.api import bp as hooks_bp
    from app.ingest import api as ingest_api
    from app.ingest.api import bp as ingest_bp
    from app.openapi import bp as openapi_bp
    from app.parties.api import bp as parties_bp
    from app.resolver.api import bp as resolver_bp

    config = load_config(overrides)
    speedups = config.SPEEDUPS == "on"
    flask_app = wrappers.flask_class(speedups)(
        __name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance")
    )
    flask_app.url_map.converters["id"] = web.IdConverter  # before any route is added
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
        RATELIMIT_STORAGE_URI=ratelimit.storage_uri(config.RATE_LIMIT_STORAGE, speedups),
        RATELIMIT_HEADERS_ENABLED=True,
    )
    flask_app.session_interface = wrappers.session_interface(speedups)
    flask_app.json.ensure_ascii = False
    flask_app.json.sort_keys = False
    engine = create_engine(config.DATABASE_URL)
    flask_app.extensions["trace"] = Extension(config, engine, make_sessionmaker(engine))

    errors.register(flask_app)
    flask_app.before_request(web.refuse_nul_in_query)
    flask_app.teardown_appcontext(web.close_session)
    limiter = Limiter(web.client_address, app=flask_app)
    if config.RATE_LIMIT_STORAGE.startswith(("redis://", "rediss://")):
        import redis

        for unavailable in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            flask_app.register_error_handler(unavailable, ratelimit.storage_unavailable)
    limits = flask_app.extensions["trace_limits"] = ratelimit.NamedLimits(limiter)
    limits.define("sign_in_address", config.SIGN_IN_RATE_LIMIT)
    limits.define("sign_in_account", config.SIGN_IN_ACCOUNT_LIMIT)
    # The public pages and answers: PUBLIC_RATE_LIMIT per client and group of endpoints
    # (the others: per endpoint). A static string: a callable would be parsed every request.
    public = ratelimit.public_limit(
        limiter,
        config.PUBLIC_RATE_LIMIT,
        web.client_address,
        speedups,
        ratelimit.public_scope({"unit": UNIT_ANSWERS}),
    )
    api = (
        *(parties_bp, catalog_bp, codes_bp, ingest_bp, events_bp),
        *(anomalies_bp, credit_bp, feedback_bp, counterfeit_bp, hooks_bp),
    )
    for bp in (*api, openapi_bp):
        if bp in (codes_bp, anomalies_bp, credit_bp, feedback_bp, counterfeit_bp):
            public.apply(flask_app, bp)
        flask_app.register_blueprint(bp, url_prefix="/api/v1")
    flask_app.register_blueprint(epcis_bp, url_prefix="/epcis")
    public.apply(flask_app, consumer_bp)
    public.apply(flask_app, resolver_bp)
    flask_app.register_blueprint(resolver_bp)
    public.take_over(flask_app)
    # Events over HTTP: the requests that authenticate no event, per client address. The
    # limited view must be the one served (as for sign-in, app/workspace/__init__.py).
    flask_app.view_functions["ingest.post_events"] = limiter.limit(
        config.UNAUTHENTICATED_EVENTS_RATE_LIMIT, deduct_when=ingest_api.unauthenticated
    )(ingest_api.post_events)
    flask_app.register_blueprint(consumer_bp)
    workspace.register(flask_app)
    cli.register(flask_app)
    from app.anomalies.cli import sweep_command

    cli.trace_cli.add_command(sweep_command)

    security_headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("Permissions-Policy", "geolocation=(self), camera=(self)"),
    ]
    if config.TRACE_ENV == "production":
        security_headers.append(("Strict-Transport-Security", "max-age=31536000"))
    flask_app.wsgi_app = web.SecurityHeaders(flask_app.wsgi_app, security_headers)

    @flask_app.get("/healthz")
    def healthz():
        """Liveness for a load balancer (and the load bench's baseline): no database."""
        return {"status": "ok"}

    return flask_app
