"""Domain errors: what went wrong, in words a client can act on.

The web layer maps each class to one HTTP status (see ``app/errors.py``); the CLI prints
the message. ``field`` names the input at fault, as the client spelled it.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class. ``code`` is a stable machine-readable identifier of the failure."""

    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.details = details or {}


class ValidationError(DomainError):
    """The input is malformed or breaks a rule of the domain (HTTP 422)."""

    code = "validation_failed"


class NotFound(DomainError):
    """The thing asked for does not exist, or the caller may not know it exists (HTTP 404)."""

    code = "not_found"


class Forbidden(DomainError):
    """The caller is known but may not do this (HTTP 403)."""

    code = "forbidden"


class Conflict(DomainError):
    """The request is well formed but clashes with the current state (HTTP 409)."""

    code = "conflict"
