"""The building blocks of the contract: :func:`operation`, which makes every operation, the
parameters, and the schemas that more than one area uses.

Every operation is made by :func:`operation`, which adds the answers every operation of its
kind can give (:func:`standard_errors`): 401 and 403 for a token's operations, 400, 413, 415
and 422 for a JSON body, 404 for a path parameter, 422 for query and header parameters, 429
where a rate limit applies, 503 when the database is lost.
"""

from __future__ import annotations

from typing import Literal

from app.web import MAX_ID

ERROR = {"$ref": "#/components/schemas/Error"}
BEARER = [{"bearer": []}]

#: Who may call an operation: anyone; the holder of an API token (``Authorization: Bearer``);
#: a device, whose events are signed (devices/PROTOCOL.md) and which sends no token.
Auth = Literal["public", "token", "device"]

REASONS = {
    400: "The body is not valid JSON",
    401: "No token, or an unknown or revoked one",
    403: "Not yours, or outside your jurisdiction",
    404: "No such resource (or not one you may see)",
    405: "No such resource: an id out of range matches no DELETE route (werkzeug answers 405)",
    409: "A duplicate, or a state that does not allow it",
    413: "The body is larger than MAX_CONTENT_LENGTH",
    415: "The body is not application/json",
    422: "A parameter or field is invalid; details.field names it",
    429: "Over a rate limit; Retry-After says when to try again",
    503: "The database connection was lost; nothing was saved; Retry-After: 1",
}


def standard_errors(
    auth: Auth,
    *,
    body: bool = False,
    parameters: list[dict] = (),
    limited: bool = False,
) -> set[int]:
    """The error statuses any operation of this kind can answer (see the module's text)."""
    found = {503}
    if auth == "token":
        found |= {401, 403}
    if body:
        found |= {400, 413, 415, 422}
    if any(p["in"] == "path" for p in parameters):
        found.add(404)
    if any(p["in"] in ("query", "header") for p in parameters):
        found.add(422)
    if limited:
        found.add(429)
    return found


def operation(
    summary: str,
    *,
    auth: Auth,
    ok: int = 200,
    produces: tuple[str, ...] = ("application/json",),
    body: type | dict | None = None,
    parameters: list[dict] = (),
    errors: tuple[int, ...] = (),
    limited: bool = False,
    answer: dict | None = None,
) -> dict:
    """One operation of the contract: its success answer ``ok`` (of the media types
    ``produces``), its :func:`standard_errors` and the ``errors`` of its own (a 404 for an
    id in the body, a 409...). ``body`` is a pydantic model (its schema is a component) or a
    JSON schema; ``limited``: a rate limit applies (the public one, or the operation's own);
    ``answer``: the JSON schema of the success answer, where the contract states it."""
    statuses = standard_errors(auth, body=body is not None, parameters=parameters, limited=limited)
    content: dict = {t: {} for t in produces}
    if answer is not None:
        content["application/json"] = {"schema": answer}
    responses = {str(ok): {"description": "OK", "content": content}}
    for status in sorted(statuses | set(errors)):
        responses[str(status)] = {
            "description": REASONS[status],
            "content": {"application/json": {"schema": ERROR}},
        }
    op: dict = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        schema = (
            body if isinstance(body, dict) else {"$ref": f"#/components/schemas/{body.__name__}"}
        )
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    if auth == "token":
        op["security"] = BEARER
    return op


# -- parameters ---------------------------------------------------------------------------------


def path_id(name: str) -> dict:
    """A row id in the path (``<id:name>``: app.web.IdConverter)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def path_text(name: str, max_length: int = 64, **schema) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": max_length, **schema},
    }


def query_int(name: str, minimum: int = 1, maximum: int = MAX_ID, **schema) -> dict:
    """An integer in the query (app.web.query_int, with the same bounds)."""
    return {
        "name": name,
        "in": "query",
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, **schema},
    }


def query_text(name: str, max_length: int | None = None, **schema) -> dict:
    out = {"name": name, "in": "query", "schema": {"type": "string", **schema}}
    if max_length is not None:
        out["schema"]["maxLength"] = max_length
    return out


#: A trace code's serial (GS1 AI 21: 1 to 20 characters of GS1's character set 82; an
#: ill-formed one is a 422).
SERIAL = path_text("serial", 20)
WAYBILL = path_text("waybill")
DEVICE = path_text("device_id")
PARTY_TYPE = {
    "name": "party_type",
    "in": "path",
    "required": True,
    "schema": {"enum": ["merchant", "logistics_company", "courier"]},
}
#: An RFC 3339 time with its offset; empty, as every empty filter, means none.
TIME = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}


def public_read(summary: str, parameter: dict, limited: bool = False) -> dict:
    """A public read of one resource, named by the path parameter ``parameter``."""
    return {"get": operation(summary, auth="public", parameters=[parameter], limited=limited)}


#: The body of every error answer (the component that ERROR refers to).
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
