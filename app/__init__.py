"""The Flask application: :func:`create_app` wires config, database, errors, API and CLI."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

import trace
from config import Config, load_config

# The domain package shares its name with a standard-library module; the project root must
# come first on sys.path (scripts/bootstrap.sh sees to it). Fail loudly if it does not.
if (
    Path(getattr(trace, "__file__", "") or "").parent
    != Path(__file__).resolve().parent.parent / "trace"
):
    sys.exit(
        "the standard library's 'trace' module shadows the project's: run from the "
        "project root or through the README's commands"
    )


@dataclass
class Extension:
    config: Config
    engine: object
    sessionmaker: sessionmaker[Session]


def create_app(overrides: dict | None = None) -> Flask:
    """Build the application. ``overrides`` replace settings from the environment (tests)."""
    from app import cli, errors, web
    from app.catalog.api import bp as catalog_bp
    from app.codes.api import bp as codes_bp
    from app.codes.resolver import bp as resolver_bp
    from app.credit.api import bp as credit_bp
    from app.db import create_engine, make_sessionmaker
    from app.events.api import bp as events_bp
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
    )
    flask_app.json.ensure_ascii = False
    flask_app.json.sort_keys = False
    engine = create_engine(config.DATABASE_URL)
    flask_app.extensions["trace"] = Extension(config, engine, make_sessionmaker(engine))

    errors.register(flask_app)
    flask_app.teardown_appcontext(web.close_session)
    for bp in (parties_bp, catalog_bp, codes_bp, events_bp, credit_bp, openapi_bp):
        flask_app.register_blueprint(bp, url_prefix="/api/v1")
    flask_app.register_blueprint(resolver_bp)
    cli.register(flask_app)
    from app.credit.cli import sweep_command

    cli.trace_cli.add_command(sweep_command)

    @flask_app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return flask_app
