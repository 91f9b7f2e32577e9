"""The regulator's workspace: signed-in pages for people (API clients use tokens instead).

Sign-in is by username and password (scrypt hashes); the session is a signed, HttpOnly,
SameSite cookie that ends after ``SESSION_IDLE_MINUTES`` without a request and after
``SESSION_MAX_HOURS`` in any case. Every form carries the session's anti-forgery token.
Every page checks the role and, for regulators, the jurisdiction (region codes); every view
of a record is written to the access log, marked when it showed personal data.
"""

from __future__ import annotations

from flask import Flask, redirect, url_for

from app.workspace import pages
from app.workspace.session import bp


def register(app: Flask, sign_in_limit) -> None:
    """Add the workspace to the app; ``sign_in_limit`` rate-limits the sign-in form."""
    app.register_blueprint(bp)
    # The limited view must be the one served: Flask-Limiter checks a decorated limit in the
    # wrapper it returns (its before_request hook leaves decorated limits to the wrapper).
    app.view_functions["workspace.sign_in"] = sign_in_limit(pages.sign_in)

    @app.get("/")
    def home():
        return redirect(url_for("workspace.home"))
