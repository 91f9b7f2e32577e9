"""The regulator's workspace: signed-in pages for people (API clients use tokens instead).

Sign-in is by username and password (scrypt hashes); the session is a signed, HttpOnly,
SameSite cookie that ends after ``SESSION_IDLE_MINUTES`` without a request and after
``SESSION_MAX_HOURS`` in any case. Every form carries the session's anti-forgery token.
Every page checks the role and, for regulators, the jurisdiction (region codes); every view
of a record is written to the access log, marked when it showed personal data.
"""

from __future__ import annotations

from flask import Flask

from app.workspace import (  # noqa: F401 - views
    counterfeits,
    exports,
    overview,
    pages,
    parties,
    recall,
    words,
)
from app.workspace.session import bp


def register(app: Flask) -> None:
    """Add the workspace to the app (the sign-in form checks its own limits). It lives
    under ``/workspace/``; ``/`` is the public's entry page (app.consumer.pages)."""
    app.register_blueprint(bp)
    words.register(app)  # `label` and the `beijing` filter, for every area's templates
