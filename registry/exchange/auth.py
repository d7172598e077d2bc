"""Protecting the registry's own API with the access tokens it issues (RFC 6750).

A view decorated with :func:`require_token` runs only for a request bearing
``Authorization: Bearer <token>`` where the token

* verifies as an RFC 9068 access token signed by the registry's key, for
  ``aud`` = ``registry`` and ``iss`` = the registry's issuer
  (:func:`crypto.tokens.verify_access_token`);
* is recorded in ``issued_tokens`` and not revoked;
* belongs to a member that is still active (a suspension takes effect on the
  next request, not when the token expires);
* carries every scope the view requires.

Refusals are problem+json: 401 with ``WWW-Authenticate: Bearer
error="invalid_token"`` (or no error code when no token was sent, RFC 6750
§3.1), 403 with ``error="insufficient_scope"``. The reason goes to the log.
Usage, on a function view or a ``MethodView`` method::

    @catalog.route("")
    class Entries(MethodView):
        @require_token("catalog:write")
        @catalog.arguments(EntrySchema)
        def post(self, body): ...
            member_id = current_client()
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Response, g, request

from corridor.openapi_tokens import needs_token
from corridor.web import problem
from crypto.errors import InvalidSignature
from crypto.keys import KeySet
from crypto.tokens import REGISTRY_AUDIENCE, AccessClaims, verify_access_token
from registry import context
from registry.db import db
from registry.models import MEMBER_ACTIVE, IssuedToken, Member

__all__ = ["current_claims", "current_client", "require_token"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def require_token(*scopes: str) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Decorate a view so it runs only with a valid registry token holding all ``scopes``.

    Sets ``flask.g.client_id`` (see :func:`current_client`) and
    ``flask.g.access_claims`` before calling the view.
    """
    required = frozenset(scopes)

    def decorator(view: Callable[P, R]) -> Callable[P, R | Response]:
        @needs_token(*sorted(required))  # for the OpenAPI document (corridor.openapi_tokens)
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            refusal = _authorize(required)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_client() -> str:
    """The member id of the caller of a view protected by :func:`require_token`.

    :raises RuntimeError: outside such a view.
    """
    client_id = g.get("client_id")
    if not isinstance(client_id, str):
        raise RuntimeError("current_client() called outside a view protected by require_token")
    return client_id


def current_claims() -> AccessClaims:
    """The verified claims of the caller's token (inside a :func:`require_token` view).

    :raises RuntimeError: outside such a view.
    """
    claims = g.get("access_claims")
    if not isinstance(claims, AccessClaims):
        raise RuntimeError("current_claims() called outside a view protected by require_token")
    return claims


def _authorize(required: frozenset[str]) -> Response | None:
    """Check the request's bearer token; return the refusal, or None when it may proceed."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(401, None, "a Bearer access token for the registry is required")
    settings = context.settings()
    try:
        claims = verify_access_token(
            token.strip(), KeySet([context.signing_key().public_key]), audience=REGISTRY_AUDIENCE,
            issuer=settings.issuer, now=int(context.now().timestamp()))
    except InvalidSignature as e:
        log.warning("bearer token refused: %s", e.reason)
        return _refuse(401, "invalid_token", "the access token is invalid or expired")
    session = db.session()
    row = session.get(IssuedToken, claims.jti)
    if row is None or row.client_id != claims.client_id or row.audience != claims.audience:
        log.warning("bearer token refused: %s was never issued by this registry", claims.jti)
        return _refuse(401, "invalid_token", "the access token is unknown")
    if row.revoked_at is not None:
        log.warning("bearer token refused: %s was revoked", claims.jti)
        return _refuse(401, "invalid_token", "the access token was revoked")
    member = session.get(Member, claims.client_id)
    if member is None or member.status != MEMBER_ACTIVE:
        log.warning("bearer token refused: member %s is not active", claims.client_id)
        return _refuse(401, "invalid_token", f"member {claims.client_id} is not active")
    missing = required - claims.scope
    if missing:
        log.warning("bearer token refused: %s lacks scope %s", claims.client_id, sorted(missing))
        return _refuse(403, "insufficient_scope", "the access token lacks a required scope",
                       scope=" ".join(sorted(required)))
    g.client_id = claims.client_id
    g.access_claims = claims
    return None


def _refuse(status: int, error: str | None, detail: str, *, scope: str | None = None
            ) -> Response:
    """A problem+json refusal with the RFC 6750 §3 challenge."""
    params = ['realm="registry"']
    if error is not None:
        params += [f'error="{error}"', f'error_description="{detail}"']
    if scope is not None:
        params.append(f'scope="{scope}"')
    extra = {"error": error} if error is not None else {}
    response = problem(status, "Unauthorized" if status == 401 else "Forbidden", detail, **extra)
    response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(params)
    return response
