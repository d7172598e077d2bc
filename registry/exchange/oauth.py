"""The registry's OAuth2 authorization server (DESIGN.md §7), built on authlib.

Members get short-lived access tokens with the ``client_credentials`` grant
(RFC 6749 §4.4), authenticating with ``private_key_jwt`` (RFC 7523 §2.2): a
client assertion signed by one of their registered keys. No client secret
exists anywhere; ``client_secret_basic``, ``client_secret_post`` and ``none``
are refused. Endpoints:

* ``POST /oauth/token``: token request; parameters ``grant_type``,
  ``audience`` (``registry`` or the member id of another active member),
  ``scope`` (from :data:`SCOPES`) and, with scope :data:`FETCH_SCOPE` or
  :data:`COUNTS_SCOPE` only, ``agreement`` (an active agreement of which the
  client is the requester and the audience the provider; the token then
  carries an ``agreement`` claim); answers RFC 6749 §5.1 / §5.2 JSON.
* ``POST /oauth/introspect``: RFC 7662, for the token's audience or client.
* ``POST /oauth/revoke``: RFC 7009, a client revokes its own tokens.
* ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata.

Access tokens are RFC 9068 JWTs signed by the registry key
(:func:`crypto.tokens.issue_access_token`); each one issued is recorded in
``issued_tokens`` and logged as ``token.issued`` in the registry's exchange
log, in the same transaction that consumes the client assertion's ``jti``
(``used_assertions``). A revocation is logged as ``token.revoked`` with the
``revoked_at`` it sets, and an authenticated client's attempt to revoke a
token that is not its own as ``token.revoke_refused`` (with the reason), each
in that same transaction; never the token itself. RFC 7009 §2.2 answers 200
for a token that is unknown, invalid, expired or already revoked: that leaves
no entry (there was nothing to revoke; the server log names the caller), and
neither does a request whose client authentication fails (an unauthenticated
caller must not be able to write to the log; it gets ``invalid_client`` and a
line in the server log).

Errors: the token endpoint answers in the RFC 6749 §5.2 format, as OAuth
clients expect. Introspection and revocation errors are RFC 9457
problem+json documents that also carry the RFC 6749 ``error`` and
``error_description`` members, so they read as either.

Wiring: ``create_app`` calls :func:`init_oauth` once the ``ProblemApi`` is
attached (its problem+json handlers then cover these routes too)::

    from registry.exchange.oauth import init_oauth
    ...
    init_oauth(app)

:func:`init_oauth` registers :data:`oauth_blueprint` itself (a plain Flask
blueprint: these endpoints speak form-encoded OAuth, not the API's
marshmallow schemas); do not add it to ``registry.api.BLUEPRINTS``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientCredentialsGrant,
    ClientMixin,
    InsecureTransportError,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Blueprint, Flask, Response, current_app, json, request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corridor.web import problem
from crypto.errors import InvalidSignature
from crypto.jws import ACCEPTED_ALGORITHMS
from crypto.keys import KeySet
from crypto.tokens import (
    AGREEMENT_SCOPES,
    ASSERTION_TYPE,
    CLOCK_LEEWAY,
    COUNTS_SCOPE,
    FETCH_SCOPE,
    LINKS_SCOPE,
    OVERLAP_SCOPE,
    REGISTRY_AUDIENCE,
    WITNESS_SCOPE,
    AccessClaims,
    issue_access_token,
    new_jti,
    unverified_claims,
    verify_access_token,
    verify_client_assertion,
)
from registry import context
from registry.db import db
from registry.exchange.agreements import fetchable
from registry.log.exchange_log import LOG, append_refusal
from registry.membership.members import active_keys
from registry.models import MEMBER_ACTIVE, IssuedToken, Member, UsedAssertion

__all__ = [
    "GRANT_TYPE",
    "MEMBER_AUDIENCE",
    "PRIVATE_KEY_JWT",
    "SCOPES",
    "InvalidTargetError",
    "MemberClient",
    "allowed_scopes",
    "authenticate_private_key_jwt",
    "init_oauth",
    "metadata",
    "oauth_blueprint",
]

log = logging.getLogger(__name__)

#: The only client authentication method (RFC 7591 §2 name).
PRIVATE_KEY_JWT = "private_key_jwt"
#: The only grant type.
GRANT_TYPE = "client_credentials"

#: Key of :data:`SCOPES` standing for "another active member's node".
MEMBER_AUDIENCE = "<member>"


#: The scope table: which scopes a token may carry, by kind of audience.
#: ``registry`` is the registry's own API; :data:`MEMBER_AUDIENCE` is any other
#: active member.
SCOPES: Mapping[str, frozenset[str]] = MappingProxyType({
    REGISTRY_AUDIENCE: frozenset({"catalog:read", "catalog:write", "keys:write",
                                  "agreements:read", "agreements:write", WITNESS_SCOPE}),
    MEMBER_AUDIENCE: frozenset({"node:read", FETCH_SCOPE, COUNTS_SCOPE, OVERLAP_SCOPE,
                                LINKS_SCOPE}),
})

_EXTENSION = "corridor_oauth"
_FORM = "application/x-www-form-urlencoded"
_MAX_AUDIENCE = 40  # the width of issued_tokens.audience and members.member_id


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]  # authlib is untyped
    """The requested audience is missing, unknown or not allowed (RFC 8707 §2)."""

    error = "invalid_target"


def allowed_scopes(audience: str) -> frozenset[str]:
    """The scopes a token for ``audience`` may carry (``audience`` a member id or ``registry``)."""
    return SCOPES[REGISTRY_AUDIENCE if audience == REGISTRY_AUDIENCE else MEMBER_AUDIENCE]


@dataclass(frozen=True)
class MemberClient(ClientMixin):  # type: ignore[misc]  # authlib is untyped
    """A member seen as an OAuth2 client (authlib's ``ClientMixin``).

    Confidential, ``client_credentials`` only, ``private_key_jwt`` only; no
    secret, no redirect URI, no response type.
    """

    member_id: str

    def get_client_id(self) -> str:
        """The client id is the member id."""
        return self.member_id

    def get_default_redirect_uri(self) -> None:
        """No redirect URI: no grant here uses the authorization endpoint."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The known scopes among ``scope`` (audience-specific checks happen at the grant)."""
        known = frozenset().union(*SCOPES.values())
        return " ".join(sorted(s for s in (scope or "").split(" ") if s in known))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """No redirect URI is ever valid."""
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        """There are no client secrets: always false."""
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """``private_key_jwt`` at every endpoint, nothing else."""
        return method == PRIVATE_KEY_JWT

    def check_response_type(self, response_type: str) -> bool:
        """No response types (no authorization endpoint)."""
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        """Only ``client_credentials``."""
        return grant_type == GRANT_TYPE


@dataclass(frozen=True)
class TokenTarget:
    """A validated token request: for whom, with what scope (canonical string)."""

    audience: str
    scope: str
    agreement: str | None = None


# --- client authentication -------------------------------------------------


def query_client(client_id: str) -> MemberClient | None:
    """authlib's client lookup: an active member, or None."""
    if not isinstance(client_id, str) or len(client_id) > _MAX_AUDIENCE:
        return None
    member = db.session().get(Member, client_id)
    if member is None or member.status != MEMBER_ACTIVE:
        return None
    return MemberClient(member.member_id)


def authenticate_private_key_jwt(_query_client: Any, oauth_request: OAuth2Request
                                 ) -> MemberClient:
    """authlib client-auth method ``private_key_jwt`` (RFC 7523 §2.2, §3).

    Reads ``client_assertion_type`` and ``client_assertion`` from the form;
    the assertion's ``sub`` is read unverified only to choose whose keys to
    verify it with. The member must exist, the assertion must verify
    (:func:`crypto.tokens.verify_client_assertion`, ``aud`` = the token
    endpoint), the member must be active, and the ``jti`` must be new: it is
    recorded in ``used_assertions`` (flushed, committed by the view).

    :raises InvalidClientError: on any failure. Failures before the signature
        is verified all read "client authentication failed"; the reason goes
        to the log.
    """
    form = oauth_request.form
    headers = oauth_request.headers
    if headers.get("Authorization"):
        # RFC 6749 §5.2: a client that tried HTTP authentication gets a 401.
        raise InvalidClientError(
            status_code=401,
            description="HTTP authentication is not accepted; use private_key_jwt")
    if "client_secret" in form:
        raise InvalidClientError(description="client secrets are not accepted; use private_key_jwt")
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type is None and assertion is None:
        raise InvalidClientError(description="client authentication with private_key_jwt required")
    if assertion_type != ASSERTION_TYPE or not assertion:
        raise InvalidClientError(description=f"client_assertion_type must be {ASSERTION_TYPE}")

    session = db.session()
    settings = context.settings()
    now = context.now()
    claimed: Any = None
    try:
        claimed = unverified_claims(assertion).get("sub")
        if not isinstance(claimed, str) or not 0 < len(claimed) <= _MAX_AUDIENCE:
            raise InvalidSignature("sub missing, not a string, or too long")
        if form.get("client_id", claimed) != claimed:
            # RFC 7523 §3 item 2 via RFC 7521 §4.2: client_id, if sent, names the same client.
            raise InvalidSignature("client_id parameter does not match sub")
        member = session.get(Member, claimed)
        if member is None:
            raise InvalidSignature("no such member")
        claims = verify_client_assertion(
            assertion, active_keys(session, member.member_id), client_id=member.member_id,
            token_endpoint=settings.token_endpoint, now=int(now.timestamp()),
            max_lifetime=settings.assertion_max_age)
    except InvalidSignature as e:
        log.warning("client authentication refused (claimed client %.60r): %s", claimed, e.reason)
        raise InvalidClientError(description="client authentication failed") from e
    if member.status != MEMBER_ACTIVE:
        # Safe to say: the caller just proved it holds this member's key.
        log.warning("client authentication refused for %s: member is %s",
                    member.member_id, member.status)
        raise InvalidClientError(description=f"member {member.member_id} is {member.status}, "
                                             "not active")
    _consume_assertion(session, member.member_id, claims, now)
    return MemberClient(member.member_id)


def _consume_assertion(session: Session, client_id: str, claims: Mapping[str, Any],
                       now: datetime) -> None:
    """Record the assertion's ``jti``; refuse a replay (RFC 7523 §3 item 7)."""
    # An assertion verifies until exp + leeway; its jti is kept at least that long.
    keep_until = datetime.fromtimestamp(claims["exp"] + CLOCK_LEEWAY, UTC)
    session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < now))
    session.add(UsedAssertion(jti=claims["jti"], client_id=client_id, expires_at=keep_until))
    try:
        session.flush()
    except IntegrityError as e:
        session.rollback()
        log.warning("client authentication refused for %s: replayed assertion jti %.40r",
                    client_id, claims["jti"])
        raise InvalidClientError(description="client assertion already used") from e


# --- the token endpoint ----------------------------------------------------


def resolve_target(session: Session, client_id: str, *, audience: str | None,
                   scope: str | None, agreement: str | None = None,
                   now: datetime | None = None) -> TokenTarget:
    """Check a token request's ``audience``, ``scope`` and ``agreement`` against :data:`SCOPES`.

    :raises InvalidTargetError: audience missing, unknown, not active, or the
        client itself; or the agreement is not an active one of the client's
        at that audience.
    :raises InvalidScopeError: scope missing, malformed, or not allowed for
        the audience.
    :raises InvalidRequestError: ``agreement`` given without an agreement scope
        (:data:`FETCH_SCOPE`, :data:`COUNTS_SCOPE`) or the other way round.
    """
    if not audience:
        raise InvalidTargetError(description="audience is required ('registry' or a member id)")
    if audience != REGISTRY_AUDIENCE:
        if audience == client_id:
            raise InvalidTargetError(description="a member cannot request a token for itself")
        member = session.get(Member, audience) if len(audience) <= _MAX_AUDIENCE else None
        if member is None or member.status != MEMBER_ACTIVE:
            raise InvalidTargetError(description="audience is not 'registry' or an active member")
    if not scope:
        raise InvalidScopeError(description="scope is required")
    requested = scope.split(" ")
    allowed = allowed_scopes(audience)
    if not all(requested) or not allowed.issuperset(requested):
        raise InvalidScopeError(
            description=f"allowed scopes for this audience: {' '.join(sorted(allowed))}")
    bound = AGREEMENT_SCOPES.intersection(requested)
    if bool(bound) != bool(agreement):
        raise InvalidRequestError(description="scopes " + " and ".join(sorted(AGREEMENT_SCOPES))
                                  + " go with an agreement parameter, and only they")
    if agreement:
        if len(set(requested)) != 1:
            raise InvalidScopeError(description=f"a {' '.join(sorted(bound))} token carries no "
                                                "other scope")
        why_not = fetchable(session, agreement, client=client_id, provider=audience,
                            now=now or datetime.now(UTC))
        if why_not is not None:
            raise InvalidTargetError(description=why_not)
    return TokenTarget(audience=audience, scope=" ".join(sorted(set(requested))),
                       agreement=agreement or None)


class MemberCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]  # authlib is untyped
    """``client_credentials`` for members: ``private_key_jwt`` only, audience-bound JWTs."""

    TOKEN_ENDPOINT_AUTH_METHODS = [PRIVATE_KEY_JWT]  # noqa: RUF012 - authlib's class attribute

    target: TokenTarget | None = None

    def validate_requested_scope(self) -> None:
        """Check ``audience`` and ``scope`` (called by authlib once the client is authenticated)."""
        form = self.request.form
        try:
            self.target = resolve_target(db.session(), self.client.get_client_id(),
                                         audience=form.get("audience"), scope=form.get("scope"),
                                         agreement=form.get("agreement"), now=context.now())
        except OAuth2Error as e:
            # The client is authenticated: its refused request is on the record (the
            # view commits it with the spent assertion jti).
            append_refusal(db.session(), "token.refused", context.now(),
                           member=self.client.get_client_id(), error=e.error,
                           reason=str(e.description or ""),
                           audience=str(form.get("audience") or ""),
                           scope=str(form.get("scope") or ""),
                           agreement=form.get("agreement") or None)
            raise

    def generate_token(self, user: Any = None, scope: str | None = None,
                       grant_type: str | None = None, expires_in: int | None = None,
                       include_refresh_token: bool = True) -> dict[str, Any]:
        """Mint the access token (RFC 9068 JWT) for the validated target.

        authlib's pluggable token generators only see the client and the
        scope; the audience checked in :meth:`validate_requested_scope` lives
        here, so the grant mints the token itself.
        """
        if self.target is None:  # authlib always validates before generating
            raise RuntimeError("token generated before the request was validated")
        settings = context.settings()
        ttl = settings.token_ttl
        token = issue_access_token(
            context.signing_key(), issuer=settings.issuer, subject=self.client.get_client_id(),
            audience=self.target.audience, scope=self.target.scope,
            now=int(context.now().timestamp()), ttl=ttl, jti=new_jti(),
            extra={"agreement": self.target.agreement} if self.target.agreement else None)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                "scope": self.target.scope}


def save_token(token: Mapping[str, Any], _request: OAuth2Request) -> None:
    """authlib's ``save_token``: record the token just minted (claims only, never the token).

    Also logs ``token.issued`` (``member`` = the client, ``jti``, ``audience``,
    ``scope``, ``agreement`` for a fetch token only, ``expires_at``) in the same
    transaction, which the token endpoint commits.
    """
    claims = unverified_claims(token["access_token"])  # minted by this process a moment ago
    session = db.session()
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    session.add(IssuedToken(
        jti=claims["jti"], client_id=claims["client_id"], audience=claims["aud"],
        scope=claims["scope"], issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=expires_at, agreement=claims.get("agreement")))
    session.flush()
    LOG.append(session, "token.issued", context.now(), member=claims["client_id"],
               agreement=claims.get("agreement"), jti=claims["jti"], audience=claims["aud"],
               scope=claims["scope"],
               expires_at=expires_at.isoformat().replace("+00:00", "Z"))


def _no_generic_tokens(**_kwargs: Any) -> dict[str, Any]:
    # Replaces authlib's default opaque bearer generator: every grant here mints a JWT.
    raise RuntimeError("no generic token generator: grants mint their own access tokens")


# --- introspection and revocation ------------------------------------------


@dataclass(frozen=True)
class RecordedToken(TokenMixin):  # type: ignore[misc]  # authlib is untyped
    """A verified access token together with its ``issued_tokens`` row state."""

    claims: AccessClaims
    revoked: bool
    now: int

    def check_client(self, client: MemberClient) -> bool:
        """Whether ``client`` is the one the token was issued to."""
        return bool(client.get_client_id() == self.claims.client_id)

    def get_scope(self) -> str:
        """The granted scopes."""
        return " ".join(sorted(self.claims.scope))

    def get_expires_in(self) -> int:
        """The lifetime the token was issued with, in seconds."""
        return self.claims.expires_at - self.claims.issued_at

    def is_expired(self) -> bool:
        """Expired at ``exp`` exactly (no leeway: the registry is the clock of record)."""
        return self.claims.expires_at <= self.now

    def is_revoked(self) -> bool:
        """Whether ``revoked_at`` is set."""
        return self.revoked


def lookup_token(session: Session, token: str) -> RecordedToken | None:
    """Verify one of our access tokens and find its record; None if anything is off.

    The token's ``aud`` is read unverified to know which audience to verify
    it for; the signature then vouches for it. None when the token does not
    verify, was never recorded, or its client is no longer an active member.
    """
    settings = context.settings()
    now = int(context.now().timestamp())
    try:
        audience = unverified_claims(token).get("aud")
        if not isinstance(audience, str) or not audience:
            raise InvalidSignature("aud is not a single string")
        claims = verify_access_token(token, KeySet([context.signing_key().public_key]),
                                     audience=audience, issuer=settings.issuer, now=now)
    except InvalidSignature as e:
        log.info("token lookup: not a valid access token: %s", e.reason)
        return None
    row = session.get(IssuedToken, claims.jti)
    if row is None or row.client_id != claims.client_id or row.audience != claims.audience:
        log.warning("token lookup: verified token %s has no matching record", claims.jti)
        return None
    member = session.get(Member, claims.client_id)
    if member is None or member.status != MEMBER_ACTIVE:
        return None
    return RecordedToken(claims=claims, revoked=row.revoked_at is not None, now=now)


class MemberIntrospectionEndpoint(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 introspection, for the token's audience or the client it was issued to."""

    CLIENT_AUTH_METHODS = [PRIVATE_KEY_JWT]  # noqa: RUF012 - authlib's class attribute

    def check_params(self, request: OAuth2Request, client: MemberClient) -> None:
        """``token`` is required; ``token_type_hint`` is ignored (RFC 7662 §2.1 allows it)."""
        if not request.form.get("token"):
            raise InvalidRequestError(description="token is required")

    def query_token(self, token_string: str, token_type_hint: str | None) -> RecordedToken | None:
        """Verify and look up the token."""
        return lookup_token(db.session(), token_string)

    def check_permission(self, token: RecordedToken, client: MemberClient,
                         request: OAuth2Request) -> bool:
        """Only the token's audience and its client may learn about it."""
        caller = client.get_client_id()
        return caller in (token.claims.audience, token.claims.client_id)

    def introspect_token(self, token: RecordedToken) -> dict[str, Any]:
        """RFC 7662 §2.2 members (``active`` is added by authlib)."""
        c = token.claims
        return {**c.extra, "active": True, "token_type": "Bearer", "iss": context.settings().issuer,
                "sub": c.subject, "client_id": c.client_id, "aud": c.audience,
                "scope": token.get_scope(), "jti": c.jti, "iat": c.issued_at, "exp": c.expires_at}


class MemberRevocationEndpoint(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 revocation: a client revokes its own tokens; always 200 once authenticated."""

    CLIENT_AUTH_METHODS = [PRIVATE_KEY_JWT]  # noqa: RUF012 - authlib's class attribute

    def check_params(self, request: OAuth2Request, client: MemberClient) -> None:
        """``token`` is required; ``token_type_hint`` is ignored (RFC 7009 §2.1 allows it)."""
        if not request.form.get("token"):
            raise InvalidRequestError(description="token is required")

    def authenticate_token(self, request: OAuth2Request,
                           client: MemberClient) -> RecordedToken | None:
        """The token, if it is valid and the caller's own; otherwise None (still a 200).

        authlib answers ``invalid_grant`` for another client's token; RFC 7009
        §2.2 answers 200 for invalid tokens, and doing the same for others'
        tokens tells a caller nothing about tokens it does not hold.
        """
        self.check_params(request, client)
        token = self.query_token(request.form["token"], None)
        if token is None:
            # Unknown, forged, expired or already revoked: nothing to revoke and nothing for
            # the exchange log, but an operator watching for probing sees it.
            log.info("revocation by %s of a token that is not a valid recorded one",
                     client.get_client_id())
            return None
        if not token.check_client(client):
            log.warning("revocation refused: %s tried to revoke %s's token %s",
                        client.get_client_id(), token.claims.client_id, token.claims.jti)
            # The caller is authenticated: its attempt is on the record (the view commits).
            LOG.append(db.session(), "token.revoke_refused", context.now(),
                       member=client.get_client_id(), jti=token.claims.jti,
                       reason=f"the token is {token.claims.client_id}'s, not the caller's")
            return None
        return token

    def query_token(self, token_string: str, token_type_hint: str | None) -> RecordedToken | None:
        """Verify and look up the token."""
        return lookup_token(db.session(), token_string)

    def revoke_token(self, token: RecordedToken, request: OAuth2Request) -> None:
        """Set ``revoked_at`` and log ``token.revoked`` (the view commits both).

        The entry: ``member`` = the client (also the token's subject: our
        client-credentials tokens have ``sub`` = ``client_id``), ``jti``,
        ``audience``, and ``agreement`` for a fetch token. Revoking a revoked
        token again changes nothing and logs nothing.
        """
        row = db.session().get(IssuedToken, token.claims.jti)
        if row is not None and row.revoked_at is None:
            row.revoked_at = context.now()
            log.info("token %s of %s revoked", token.claims.jti, token.claims.client_id)
            LOG.append(db.session(), "token.revoked", row.revoked_at,
                       member=token.claims.client_id,
                       agreement=token.claims.extra.get("agreement"), jti=token.claims.jti,
                       audience=token.claims.audience)


# --- wiring and views ------------------------------------------------------


oauth_blueprint = Blueprint("oauth", __name__)


def init_oauth(app: Flask) -> AuthorizationServer:
    """Attach the authorization server to ``app`` and register :data:`oauth_blueprint`.

    Idempotent. Call from ``create_app`` after the ``ProblemApi`` is attached.
    """
    if _EXTENSION in app.extensions:
        existing: AuthorizationServer = app.extensions[_EXTENSION]
        return existing
    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", _no_generic_tokens)
    server.register_client_auth_method(PRIVATE_KEY_JWT, authenticate_private_key_jwt)
    server.register_grant(MemberCredentialsGrant)
    server.register_endpoint(MemberIntrospectionEndpoint)
    server.register_endpoint(MemberRevocationEndpoint)
    app.extensions[_EXTENSION] = server
    if oauth_blueprint.name not in app.blueprints:
        app.register_blueprint(oauth_blueprint)
    return server


def _server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions[_EXTENSION]
    return server


def metadata() -> dict[str, Any]:
    """The RFC 8414 authorization server metadata of the running registry."""
    issuer = context.settings().issuer
    methods = [PRIVATE_KEY_JWT]
    algs = list(ACCEPTED_ALGORITHMS)
    return {
        "issuer": issuer,
        "token_endpoint": context.settings().token_endpoint,
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": [GRANT_TYPE],
        # RFC 8414 §2 requires the member; there is no authorization endpoint.
        "response_types_supported": [],
        "scopes_supported": sorted(frozenset().union(*SCOPES.values())),
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
    }


def _form_problem() -> OAuth2Error | None:
    """RFC 6749 §3.2 request hygiene shared by the three POST endpoints."""
    if request.args:
        # Credentials and tokens in a URL end up in logs (RFC 6749 §3.2: POST body only).
        return InvalidRequestError(description="parameters belong in the request body, not the URL")
    if request.mimetype != _FORM:
        return InvalidRequestError(description=f"the request body must be {_FORM}")
    repeated = [name for name in request.form if len(request.form.getlist(name)) > 1]
    if repeated:
        return InvalidRequestError(description="request parameters must not be repeated")
    return None


def _oauth_response(error: OAuth2Error) -> Response:
    """An RFC 6749 §5.2 error response."""
    response: Response = _server().handle_error_response(None, error)
    return response


def _as_problem(response: Response) -> Response:
    """Turn an RFC 6749 error response into problem+json keeping its ``error`` members."""
    if response.status_code < 400:
        return response
    body = json.loads(response.get_data())
    out = problem(response.status_code, "OAuth request refused",
                  body.get("error_description") or body.get("error"),
                  error=body.get("error"), error_description=body.get("error_description"))
    for name in ("WWW-Authenticate", "Cache-Control", "Pragma"):
        if name in response.headers:
            out.headers[name] = response.headers[name]
    return out


def _handle(endpoint: Callable[[], Response]) -> Response:
    """Run an authlib endpoint, then commit what it did.

    The consumed assertion ``jti`` and, on success, the issued token or the
    revocation commit together; after an error that followed authentication
    the ``jti`` is still spent (an assertion is single-use, RFC 7523 §3 item 7).
    """
    try:
        response = endpoint()
    except InsecureTransportError as e:
        # authlib refuses any request whose URL is not https:// or loopback
        # http:// (and raises outside its own error handling). Behind a TLS
        # proxy, the app must see the original scheme and host (ProxyFix).
        log.warning("OAuth request refused: %s://%s is not a secure transport",
                    request.scheme, request.host)
        return _oauth_response(e)
    db.session().commit()
    return response


@oauth_blueprint.post("/oauth/token")
def token_endpoint() -> Response:
    """RFC 6749 §4.4.2 access token request (``client_credentials`` + ``private_key_jwt``)."""
    error = _form_problem()
    grant_type = request.form.get("grant_type")
    if error is None and not grant_type:
        error = InvalidRequestError(description="grant_type is required")
    if error is None and grant_type != GRANT_TYPE:
        # authlib's UnsupportedGrantTypeError echoes the caller's value; say what is supported.
        error = OAuth2Error(error="unsupported_grant_type",
                            description=f"only grant_type={GRANT_TYPE} is supported")
    if error is not None:
        return _oauth_response(error)
    return _handle(_server().create_token_response)


@oauth_blueprint.post("/oauth/introspect")
def introspection_endpoint() -> Response:
    """RFC 7662 token introspection."""
    error = _form_problem()
    if error is not None:
        return _as_problem(_oauth_response(error))
    return _as_problem(_handle(lambda: _server().create_endpoint_response(
        MemberIntrospectionEndpoint.ENDPOINT_NAME)))


@oauth_blueprint.post("/oauth/revoke")
def revocation_endpoint() -> Response:
    """RFC 7009 token revocation."""
    error = _form_problem()
    if error is not None:
        return _as_problem(_oauth_response(error))
    return _as_problem(_handle(lambda: _server().create_endpoint_response(
        MemberRevocationEndpoint.ENDPOINT_NAME)))


@oauth_blueprint.get("/.well-known/oauth-authorization-server")
def metadata_endpoint() -> Response:
    """RFC 8414 authorization server metadata."""
    response = Response(json.dumps(metadata()), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

