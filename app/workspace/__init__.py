"""The regulator's workspace: signed-in pages for people (API clients use tokens instead).

Sign-in is by username and password (scrypt hashes); the session is a signed, HttpOnly,
SameSite cookie that ends after ``SESSION_IDLE_MINUTES`` without a request and after
``SESSION_MAX_HOURS`` in any case. Every form carries the session's anti-forgery token.
Every page checks the role and, for regulators, the jurisdiction (region codes); every view
of a record is written to the access log, marked when it showed personal data.
"""

from __future__ import annotations

from flask import Flask, redirect, url_for

from app.workspace import counterfeits, pages  # noqa: F401 - their views are the blueprint's
from app.workspace.session import bp


def register(app: Flask) -> None:
    """Add the workspace to the app (the sign-in form checks its own limits)."""
    app.register_blueprint(bp)

    @app.get("/")
    def home():
        return redirect(url_for("workspace.home"))
