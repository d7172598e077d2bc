"""Who is calling? Access tokens checked at the node against its own trust list.

A token is accepted only if it is signed by a registry key from the node's
stored, unexpired trust list (itself pinned by the anchor), names this node
as its audience, has not expired, carries the needed scopes, and its subject
is an active member in that trust list (DESIGN.md §7). For reads of
metadata the node does not ask the registry whether a token is good: it keeps
working while the registry is down, until the stored trust list expires, and
then refuses everyone (503).

Where data leaves, a token that verifies is also confirmed with the registry
by RFC 7662 introspection, authenticated with the node's own key
(``private_key_jwt``, :meth:`node.exchange.oauth_client.TokenClient.introspect`), so a
token revoked at the registry (RFC 7009) stops working at once rather than
when it expires: ``authorize(scope, confirm_with_registry=True)``, or
:func:`confirm_active` once the caller's own checks have passed (the package
endpoint confirms after the agreement check, so that a refusal it can decide
alone never costs a round trip). The registry's answer must be about this
very token (``sub``, ``aud``, ``jti``, ``exp`` and any ``agreement`` equal to
the verified claims). The check fails closed: a registry that cannot be
reached within :data:`INTROSPECTION_TIMEOUT`, or answers an error or
nonsense, gets the caller a 503 (:class:`RegistryUnavailable`), never the data.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from flask import current_app, request

from corridor.clock import now
from corridor.errors import CorridorError, Forbidden, Unauthorized
from corridor.openapi_tokens import token_scopes
from crypto.errors import InvalidSignature
from crypto.jws import VerifiedCache
from crypto.tokens import AccessClaims, verify_access_token
from node.exchange.oauth_client import TokenClient, TokenError
from node.exchange.trust_store import current_trust_store
from node.settings import current_settings, current_signing_key

log = logging.getLogger(__name__)


class InvalidToken(Unauthorized):
    """Missing, malformed, forged, expired or misdirected token (one opaque reason)."""

    title = "Invalid access token"


#: Access tokens whose signature this process has verified: a partner's client presents
#: the same token for its whole lifetime (up to 300 s), and each request then pays for
#: its claims, scope and member checks only (:class:`crypto.jws.VerifiedCache`).
VERIFIED_TOKENS = VerifiedCache(1024)

#: Seconds the node waits for the registry's introspection answer.
INTROSPECTION_TIMEOUT = 5.0
_BAD_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class MissingScope(Forbidden):
    """A valid token without the scope the request needs; ``claims`` are the token's."""

    def __init__(self, detail: str, *, claims: AccessClaims, headers: dict[str, str]) -> None:
        super().__init__(detail, headers=headers)
        self.claims = claims


class RegistryUnavailable(CorridorError):
    """The registry could not confirm the token, so the node does not serve (fail closed)."""

    status = 503
    title = "Registry unavailable to confirm the token"


def _bearer() -> str:
    """The request's bearer token, or raise :class:`InvalidToken` with the challenge."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a Bearer access token from the registry is required",
                           headers={"WWW-Authenticate": 'Bearer realm="corridor"'})
    return token.strip()


def refuse_without_token() -> None:
    """``before_request``: a view that needs a token (:func:`corridor.openapi_tokens.needs_token`)
    answers 401 to a request with no bearer token at all before it reads the body, so a
    stranger learns nothing from its validation. The view checks the token itself.

    :raises InvalidToken: no ``Authorization: Bearer`` header.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), None) if view_class else view
    if token_scopes(handler) is not None:
        _bearer()


def authorize(*scopes: str, confirm_with_registry: bool = False) -> AccessClaims:
    """Verify the request's bearer token for this node and the given scopes.

    With ``confirm_with_registry``, a token that passes every local check is
    then confirmed with the registry (:func:`confirm_active`): revoked there
    means refused here.

    Raises:
        TrustUnavailable: no valid trust list (503).
        InvalidToken: the token does not verify, or the registry says it is
            no longer active (401).
        MissingScope: a valid token without the needed scope (403); the
            registry is not asked.
        RegistryUnavailable: ``confirm_with_registry`` and the registry could
            not confirm the token (503).
    """
    settings = current_settings()
    current = now()
    trust_list = current_trust_store().valid(current)
    token = _bearer()
    try:
        claims = verify_access_token(token, trust_list.registry_keys,
                                     audience=settings.member_id,
                                     issuer=trust_list.registry_url,
                                     now=int(current.timestamp()),
                                     cache=VERIFIED_TOKENS)
    except InvalidSignature as e:
        log.info("token refused: %s", e.reason)
        raise InvalidToken("the access token is not valid for this node",
                           headers=_BAD_TOKEN) from e
    if trust_list.member(claims.subject) is None:
        log.info("token refused: %s is not an active member in trust list v%s",
                 claims.subject, trust_list.version)
        raise InvalidToken("the access token is not valid for this node", headers=_BAD_TOKEN)
    missing = set(scopes) - claims.scope
    if missing:
        raise MissingScope(f"the token lacks scope {' '.join(sorted(missing))}", claims=claims,
                           headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    if confirm_with_registry:
        _confirm(token, claims)
    return claims


def confirm_active(claims: AccessClaims) -> None:
    """Check with the registry that the request's token, verified by :func:`authorize`
    as ``claims``, is still active (RFC 7662; module docstring).

    :raises InvalidToken: revoked, expired or unknown at the registry.
    :raises RegistryUnavailable: no registry configured, unreachable, or an
        answer that is not a usable RFC 7662 response about this token.
    """
    _confirm(_bearer(), claims)


def _expected(claims: AccessClaims, me: str) -> dict[str, Any]:
    """Members of the introspection answer that must equal the verified token's claims."""
    expected: dict[str, Any] = {"sub": claims.subject, "aud": me, "jti": claims.jti,
                                "exp": claims.expires_at}
    if "agreement" in claims.extra:
        expected["agreement"] = claims.extra["agreement"]
    return expected


def _confirm(token: str, claims: AccessClaims) -> None:
    """Ask the registry about ``token``, verified locally as ``claims`` (:func:`confirm_active`)."""
    settings = current_settings()
    if not settings.registry_url:
        raise RegistryUnavailable("this node has no registry to confirm tokens with")
    with httpx.Client(timeout=INTROSPECTION_TIMEOUT) as http:
        client = TokenClient(settings.registry_url, f"{settings.registry_url}/oauth/token",
                             settings.member_id, current_signing_key(),
                             http=http, clock=now)
        try:
            answer: dict[str, Any] = client.introspect(token)
        except TokenError as e:
            log.warning("token %s not confirmed: the registry said %s", claims.jti, e)
            raise RegistryUnavailable("the registry could not confirm the access token; "
                                      "try again later") from e
    active = answer.get("active")
    if active is False:
        log.info("token refused: %s was revoked (or is no longer active) at the registry",
                 claims.jti)
        raise InvalidToken("the access token is not valid for this node", headers=_BAD_TOKEN)
    expected = _expected(claims, settings.member_id)
    # ``is``/``type`` checks: True == 1 and 1 == 1.0 must not pass for the answer's members.
    if active is not True or any(type(answer.get(k)) is not type(v) or answer.get(k) != v
                                 for k, v in expected.items()):
        log.warning("token %s not confirmed: introspection answered about another token "
                    "(%s)", claims.jti, {k: answer.get(k) for k in expected})
        raise RegistryUnavailable("the registry's answer about the access token did not "
                                  "match it")
