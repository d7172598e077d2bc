"""HTTP plumbing shared by the node and the registry: errors as RFC 9457 problem+json.

Each service defines its exceptions as subclasses of
:class:`corridor.errors.CorridorError` with the HTTP status on the class
(CONVENTIONS.md §4); :class:`ProblemApi` renders them, and every werkzeug ``HTTPException``, as
``application/problem+json``. Unexpected exceptions become an opaque 500 whose
detail goes to the log, never to the client.

Every JSON request body is checked for depth before anything parses it
(:func:`json_depth`, :data:`MAX_JSON_DEPTH`): Python's JSON parser recurses,
and a body of 50,000 nested brackets would otherwise end in a
``RecursionError`` deep inside it. Size is bounded by ``MAX_CONTENT_LENGTH``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from itertools import accumulate
from typing import Any

from flask import Flask, Response, current_app, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields
from prometheus_client.core import Metric
from sqlalchemy.exc import DataError as DBAPIDataError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from corridor.clock import install_clock
from corridor.errors import BadRequest, CorridorError
from corridor.metrics import ServiceMetrics, metrics_blueprint

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """Build an RFC 9457 problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


class ProblemSchema(Schema):
    """An RFC 9457 problem document, as every error of the services is sent."""

    class Meta:
        unknown = INCLUDE  # problem types may add members (RFC 9457 §3.2)

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"description": "What went wrong, in words."})
    status = fields.Integer(required=True)
    detail = fields.String(metadata={"description": "This occurrence, and what to do."})
    errors = fields.Dict(metadata={"description": "Per location and field, what is wrong "
                                                  "(422 and some 400)."})


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest ``Api`` whose errors are RFC 9457 problem documents, documented so."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        """Attach to ``app`` and register the problem handlers."""
        super().init_app(app, *args, **kwargs)
        app.register_error_handler(CorridorError, self.handle_corridor_error)
        app.register_error_handler(Exception, self.handle_unexpected)

    def _register_responses(self) -> None:
        """Every error response in the OpenAPI document as what it is: problem+json.

        flask-smorest would document them with its success content type; this
        is its own registration (one response per status, and ``default``)
        with :data:`PROBLEM_JSON`.
        """
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Render werkzeug errors (404 routes, 405, webargs 422) as problems."""
        code = error.code or 500
        extra: dict[str, Any] = {}
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        if errors:
            extra["errors"] = errors
        detail = data.get("message") or error.description
        response = problem(code, error.name, detail, **extra)
        for key, value in (data.get("headers") or {}).items():
            response.headers[key] = value
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            # RFC 9110 §15.5.6: a 405 names the methods the resource has.
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    def handle_corridor_error(self, error: CorridorError) -> Response:
        """Render a service error."""
        if not error.public:
            # An operator's message (it may name files): the log has it, the client does not.
            log.error("%s: %s", type(error).__name__, error.detail)
            return problem(error.status, error.title)
        response = problem(error.status, error.title, error.detail, **error.extra)
        for key, value in error.headers.items():
            response.headers[key] = value
        return response

    def handle_unexpected(self, error: Exception) -> Response:
        """Log the real exception; tell the client only that it failed.

        A value the database refuses to store or compare (PostgreSQL text
        cannot hold NUL, a number out of its column's range) came from the
        request, wherever it hid (a JWT claim, a Basic username): 400.
        """
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        if isinstance(error, DBAPIDataError):
            log.warning("request value refused by the database: %s", type(error.orig).__name__)
            return problem(400, "Bad Request", "the request holds a value that no field can "
                           "store (a NUL character, or a number out of range)")
        log.exception("unhandled error", exc_info=error)
        return self.handle_http_exception(InternalServerError())


#: Deepest nesting of arrays and objects a JSON request body may have. Corridor's
#: own documents (terms, events, catalog entries, checkpoints) stay under 8.
MAX_JSON_DEPTH = 32
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deeply ``body`` nests arrays and objects, counted without parsing it.

    Escapes and then strings are removed, so brackets inside strings do not
    count; what remains is only brackets, one pass over far fewer bytes than
    the body. Malformed JSON gets a depth too (the parser refuses it later).
    """
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", body)).translate(None, _NOT_A_BRACKET)
    return max(accumulate(1 if c in b"[{" else -1 for c in brackets), default=0)


class TooDeep(BadRequest):
    """A JSON body nested more deeply than any Corridor document."""

    title = "JSON nested too deeply"


def limit_body(blueprint: Any, max_bytes: int) -> None:
    """Cap the request bodies of ``blueprint``'s routes below the app's ``MAX_CONTENT_LENGTH``.

    Applied by :func:`check_body` before anything reads the body (413 above it).
    """
    def record(state: Any) -> None:
        state.app.extensions.setdefault("corridor_body_limits", {})[blueprint.name] = max_bytes

    blueprint.record_once(record)


def check_body() -> None:
    """``before_request``: apply the route's body cap, refuse NUL characters in the
    path, query or form (400: no name or value holds one, and PostgreSQL text
    cannot), then a JSON body deeper than :data:`MAX_JSON_DEPTH` (400), before
    any view or parser reads it.

    :raises TooDeep: rendered as problem+json.
    """
    limits = current_app.extensions.get("corridor_body_limits", {})
    if request.blueprint in limits:
        request.max_content_length = limits[request.blueprint]
    form = (request.get_data(cache=True)
            if request.mimetype == "application/x-www-form-urlencoded" else b"")
    if "\x00" in request.path or b"%00" in request.query_string or b"%00" in form \
            or b"\x00" in form:
        raise BadRequest("NUL characters are not allowed in a path, query or form")
    if request.method in ("GET", "HEAD", "OPTIONS") or not request.is_json:
        return
    depth = json_depth(request.get_data(cache=True))
    if depth > MAX_JSON_DEPTH:
        raise TooDeep(f"the request body nests {depth} levels deep; at most "
                      f"{MAX_JSON_DEPTH} are accepted")


def service_app(name: str, *, title: str, settings: Any, config: dict[str, Any],
                database: Any, blueprints: Any, max_body: int,
                metrics_facts: Callable[[], Iterable[Metric]], proxies: int = 0,
                **flask_config: Any) -> tuple[Flask, ProblemApi]:
    """The Flask app both services share: OpenAPI 3.1 at /openapi.json, problem+json
    errors, a clock (``CORRIDOR_CLOCK`` in ``config`` for tests), settings, database,
    blueprints and ``/metrics`` (:mod:`corridor.metrics`; ``metrics_facts`` yields the
    service's scrape-time figures). ``config`` is the caller's remaining Flask settings.

    ``proxies``: how many reverse proxies in front of the service to trust for
    ``X-Forwarded-For/Proto/Host`` (0: none, so a client cannot claim another
    address). Behind one TLS proxy it must be 1: the client address is what
    failed sign-ins are counted by, and every client would otherwise share
    the proxy's.
    """
    app = Flask(name)
    app.config.update(API_TITLE=title, API_VERSION="1", OPENAPI_VERSION="3.1.0",
                      OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
                      MAX_CONTENT_LENGTH=max_body, **flask_config)
    install_clock(app, config.pop("CORRIDOR_CLOCK", None))
    app.config.update(config)
    app.extensions["corridor_settings"] = settings
    database.init_app(app, settings.database_url)
    app.before_request(check_body)
    ServiceMetrics(name, metrics_facts, settings.metrics_from, proxies).init_app(app)
    api = ProblemApi(app)
    for blueprint in [*blueprints, metrics_blueprint()]:
        api.register_blueprint(blueprint)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies, x_host=proxies)
    return app, api
