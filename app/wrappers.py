"""Every subclass of a Flask, werkzeug or Jinja class the app uses, in one place.

They exist for speed only: together they carry about a sixth of the JSON scan's app CPU,
which its goal needs (bench/bench_consumer.py, alternating runs; docs/performance.md lists
each with the library internals it touches, its pin, its test and its measured gain).
``SPEEDUPS=off`` (config.py) builds the app from the plain classes instead: :func:`flask_class`,
:func:`session_interface` and :func:`set_client_cookie` choose, once, at start-up.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import flask
import flask.templating
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.http import dump_cookie
from werkzeug.sansio.http import parse_cookie
from werkzeug.utils import cached_property

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


class Request(flask.Request):
    """Flask's request, whose cookies are parsed from the environ's ``HTTP_COOKIE``, where
    a WSGI server puts the Cookie header. werkzeug finds that header by walking every
    variable of the environ (``headers.getlist("Cookie")``), which costs more than parsing
    it, and every request reads its cookies (the session is opened on each; the consumer
    pages read their client cookie): about 15 µs a request, a cookie sent or not."""

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        return parse_cookie(self.environ.get("HTTP_COOKIE", ""), cls=self.dict_storage_class)


class Flask(flask.Flask):
    """Flask, with :class:`Request`, :class:`Response` and :meth:`ensure_sync`'s answer kept
    per function (Flask asks again for every hook and view on every request, and each answer
    inspects the function's code flags)."""

    jinja_environment = TemplateEnvironment
    request_class = Request
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


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per set of keys
    instead of on every request (every request opens the session, even the public pages'
    that never use it), and nothing worked out at the response for a session left alone."""

    _serializers: dict[tuple, URLSafeTimedSerializer]

    def __init__(self) -> None:
        self._serializers = {}

    def get_signing_serializer(self, app) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        found = self._serializers.get(keys)
        if found is None:
            found = self._serializers[keys] = super().get_signing_serializer(app)
        return found

    def save_session(self, app, session, response) -> None:
        # Empty, never read and never changed (a public page's request): Flask's own
        # save_session writes nothing then, after looking up seven cookie settings.
        if session or session.accessed or session.modified:
            super().save_session(app, session, response)


def flask_class(speedups: bool) -> type[flask.Flask]:
    """The application class: :class:`Flask`, or Flask's own with ``SPEEDUPS=off``."""
    if not speedups:
        return flask.Flask
    return Flask


def session_interface(speedups: bool) -> SecureCookieSessionInterface:
    """The session interface: :class:`SessionInterface`, or Flask's own."""
    return SessionInterface() if speedups else SecureCookieSessionInterface()


# -- the consumer pages' client cookie ---------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _cookie_attributes(name: str, max_age: int, second: int, secure: bool) -> str:
    """What follows the value in a ``Set-Cookie`` header during this second (the same for
    every client; its Expires changes every second)."""
    header = dump_cookie(
        name,
        "",
        max_age=max_age,
        expires=second + max_age,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    return header[len(name) + 1 :]


def cookie_header(name: str, value: str, max_age: int, secure: bool) -> str:
    """The ``Set-Cookie`` header of an HttpOnly, SameSite=Lax cookie that lasts ``max_age``
    seconds, as werkzeug's ``dump_cookie`` writes it, for a value ``dump_cookie`` never
    quotes (hexadecimal): the attributes are written once a second, not once a request."""
    return f"{name}={value}{_cookie_attributes(name, max_age, int(time.time()), secure)}"


def set_client_cookie(
    response, name: str, value: str, max_age: int, secure: bool, speedups: bool
) -> None:
    """Give the client an HttpOnly, SameSite=Lax cookie for ``max_age`` seconds: through
    :func:`cookie_header`, or werkzeug's ``set_cookie`` with ``SPEEDUPS=off``."""
    if speedups:
        response.headers.add("Set-Cookie", cookie_header(name, value, max_age, secure))
    else:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            expires=int(time.time()) + max_age,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
