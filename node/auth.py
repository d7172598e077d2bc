"""Who is calling? Access tokens checked at the node against its own trust list.

A token is accepted only if it is signed by a registry key from the node's
stored, unexpired trust list (itself pinned by the anchor), names this node
as its audience, has not expired, carries the needed scopes, and its subject
is an active member in that trust list (DESIGN.md §7). The node never asks
the registry whether a token is good: it keeps working while the registry is
down, until the stored trust list expires, and then refuses everyone (503).
"""

from __future__ import annotations

import logging

from flask import request

from corridor.clock import now
from corridor.web import Forbidden, Unauthorized
from crypto.errors import InvalidSignature
from crypto.tokens import AccessClaims, verify_access_token
from node.settings import current_settings
from node.trust_store import TrustStore

log = logging.getLogger(__name__)


class InvalidToken(Unauthorized):
    """Missing, malformed, forged, expired or misdirected token (one opaque reason)."""

    title = "Invalid access token"


def authorize(*scopes: str) -> AccessClaims:
    """Verify the request's bearer token for this node and the given scopes.

    Raises:
        TrustUnavailable: no valid trust list (503).
        InvalidToken: the token does not verify (401).
        Forbidden: a valid token without the needed scope (403).
    """
    settings = current_settings()
    current = now()
    trust_list = TrustStore(settings.directory).valid(current)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a Bearer access token from the registry is required",
                           headers={"WWW-Authenticate": 'Bearer realm="corridor"'})
    try:
        claims = verify_access_token(token.strip(), trust_list.registry_keys,
                                     audience=settings.member_id,
                                     issuer=trust_list.registry_url,
                                     now=int(current.timestamp()))
    except InvalidSignature as e:
        log.info("token refused: %s", e.reason)
        raise InvalidToken("the access token is not valid for this node",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from e
    if trust_list.member(claims.subject) is None:
        log.info("token refused: %s is not an active member in trust list v%s",
                 claims.subject, trust_list.version)
        raise InvalidToken("the access token is not valid for this node",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    missing = set(scopes) - claims.scope
    if missing:
        raise Forbidden(f"the token lacks scope {' '.join(sorted(missing))}",
                        headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
    return claims
