"""OAuth2 JWTs: client assertions (RFC 7523) and access tokens (RFC 9068).

Two kinds of token, each with its own ``typ`` so that neither can be replayed
as the other, nor as any other document our keys sign (RFC 8725 §3.11):

* a **client assertion** (``typ`` = :data:`CLIENT_ASSERTION_TYP`, as in
  draft-ietf-oauth-rfc7523bis) is what a member signs with its own key to
  authenticate at the registry's token endpoint (``private_key_jwt``);
* an **access token** (``typ`` = :data:`ACCESS_TOKEN_TYP`, RFC 9068 §2.1) is
  what the registry signs for a member, for one audience: the registry
  itself or another member's node.

Both are checked by :func:`crypto.jwt.decode_jwt` (Ed25519 only, key chosen by
``kid`` from the verifier's key set, ``jwk``/``jku``/``x5u``/``crit`` refused)
plus the rules below. Every failure raises the opaque
:class:`~crypto.errors.InvalidSignature`; the cause is in its ``reason``.

Pure: no IO, no clock; ``now`` is an ``int`` of seconds since the epoch.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from crypto._encoding import b64url_decode, strict_json_loads
from crypto.errors import TOKEN_REJECTED, InvalidSignature
from crypto.jws import VerifiedCache
from crypto.jwt import decode_jwt, encode_jwt
from crypto.keys import KeySet, SigningKey

__all__ = [
    "ACCESS_TOKEN_TYP",
    "AGREEMENT_SCOPES",
    "ASSERTION_TYPE",
    "CLIENT_ASSERTION_TYP",
    "CLOCK_LEEWAY",
    "COUNTS_SCOPE",
    "FETCH_SCOPE",
    "LINKS_SCOPE",
    "MAX_ACCESS_TOKEN_TTL",
    "MAX_JTI_LENGTH",
    "MAX_TOKEN_SIZE",
    "OVERLAP_SCOPE",
    "REGISTRY_AUDIENCE",
    "WITNESS_SCOPE",
    "AccessClaims",
    "issue_access_token",
    "make_client_assertion",
    "new_jti",
    "unverified_claims",
    "verify_access_token",
    "verify_client_assertion",
]

#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2).
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: ``aud`` of access tokens for the registry's own API.
REGISTRY_AUDIENCE = "registry"
#: Scope of a token that fetches one agreement's package from its provider.
FETCH_SCOPE = "agreement:fetch"
#: Scope of a token that asks one agreement's provider for signed counts (DESIGN.md §9).
COUNTS_SCOPE = "agreement:counts"
#: Scope of a token that runs the private overlap count under one agreement.
OVERLAP_SCOPE = "agreement:overlap"
#: The scopes that act under one agreement: their tokens carry an ``agreement`` claim.
AGREEMENT_SCOPES = frozenset({FETCH_SCOPE, COUNTS_SCOPE, OVERLAP_SCOPE})
#: Scope of a token that delivers match-ledger messages to another member's node.
LINKS_SCOPE = "links:write"
#: Scope of a token that submits a member's own log checkpoints to the registry's witness.
WITNESS_SCOPE = "witness:submit"

#: ``typ`` of a client assertion (draft-ietf-oauth-rfc7523bis §5).
CLIENT_ASSERTION_TYP = "client-authentication+jwt"
#: ``typ`` of an access token (RFC 9068 §2.1).
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a secret

#: Longest lifetime (``exp - iat``), in seconds, of an access token.
MAX_ACCESS_TOKEN_TTL = 300
#: Largest accepted assertion or access token, in bytes.
MAX_TOKEN_SIZE = 8192
#: Longest accepted ``jti`` of a client assertion, in characters (the column
#: that remembers used ones is this wide).
MAX_JTI_LENGTH = 128
#: Clock skew, in seconds, tolerated on ``exp``, ``nbf`` and ``iat``. A
#: verifier that remembers used ``jti`` values must remember each one until
#: ``exp + CLOCK_LEEWAY``: until then the token still verifies.
CLOCK_LEEWAY = 30

# RFC 9068 §2.2 claims, plus "scope" (§2.2.3), all required in our tokens.
_ACCESS_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")
_ASSERTION_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")
_REGISTERED = frozenset({*_ACCESS_TOKEN_CLAIMS, "nbf"})
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims of an access token.

    :ivar subject: ``sub``: the member the token was issued to.
    :ivar client_id: ``client_id`` (RFC 9068 §2.2): equal to ``subject`` for
        our client-credentials tokens.
    :ivar audience: ``aud``: who the token is for (a member id or ``registry``).
    :ivar scope: the granted scopes.
    :ivar jti: the token's unique id (its row in the registry's records).
    :ivar issued_at: ``iat``, seconds since the epoch.
    :ivar expires_at: ``exp``, seconds since the epoch.
    :ivar extra: every other claim (e.g. an agreement id), as signed.
    """

    subject: str
    client_id: str
    audience: str
    scope: frozenset[str]
    jti: str
    issued_at: int
    expires_at: int
    extra: dict[str, Any] = field(default_factory=dict)


def new_jti() -> str:
    """A fresh random 128-bit token id, base64url (22 characters)."""
    return secrets.token_urlsafe(16)


def make_client_assertion(
    key: SigningKey,
    *,
    client_id: str,
    token_endpoint: str,
    now: int,
    lifetime: int = 60,
    jti: str | None = None,
) -> str:
    """Sign a ``private_key_jwt`` client assertion (RFC 7523 §3).

    ``iss`` = ``sub`` = ``client_id``, ``aud`` = ``token_endpoint`` (a single
    string), ``iat`` = ``now``, ``exp`` = ``now + lifetime``, ``jti`` random
    unless given.

    :raises ValueError: if ``lifetime`` is not positive, or the ids are empty.
    """
    if lifetime <= 0:
        raise ValueError("lifetime must be positive")
    if not client_id or not token_endpoint:
        raise ValueError("client_id and token_endpoint must be non-empty")
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "iat": now,
        "exp": now + lifetime,
        "jti": new_jti() if jti is None else jti,
    }
    return encode_jwt(claims, key, typ=CLIENT_ASSERTION_TYP)


def verify_client_assertion(
    assertion: str,
    keys: KeySet,
    *,
    client_id: str,
    token_endpoint: str,
    now: int,
    max_lifetime: int = 300,
) -> dict[str, Any]:
    """Verify a client assertion by ``client_id`` for our ``token_endpoint``.

    On top of :func:`crypto.jwt.decode_jwt` (signature by one of ``keys``,
    ``typ`` = :data:`CLIENT_ASSERTION_TYP`, ``exp``/``nbf``/``iat`` with
    :data:`CLOCK_LEEWAY`, ``exp - iat`` at most ``max_lifetime``), this
    requires ``iss`` = ``sub`` = ``client_id`` (RFC 7523 §3 items 1-2), ``aud``
    to be exactly the string ``token_endpoint`` (a list is refused:
    draft-ietf-oauth-rfc7523bis closes the audience-injection attack that way)
    and a ``jti`` of 1 to :data:`MAX_JTI_LENGTH` characters. Whether the
    ``jti`` was used before is for the caller to check.

    :returns: the claims.
    :raises InvalidSignature: whatever is wrong (the cause is in ``reason``).
    """
    claims = decode_jwt(
        assertion,
        keys,
        now=now,
        audience=token_endpoint,
        typ=CLIENT_ASSERTION_TYP,
        issuer=client_id,
        leeway=CLOCK_LEEWAY,
        max_lifetime=max_lifetime,
        required=_ASSERTION_CLAIMS,
        max_size=MAX_TOKEN_SIZE,
    )
    if claims["sub"] != client_id:
        _reject(f"sub {claims['sub']!r:.60} is not the client {client_id!r}")
    if claims["aud"] != token_endpoint:
        _reject("aud must be the token endpoint as a single string")
    if not 0 < len(claims["jti"]) <= MAX_JTI_LENGTH:
        _reject(f"jti must be 1..{MAX_JTI_LENGTH} characters")
    return claims


def issue_access_token(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    audience: str,
    scope: str,
    now: int,
    ttl: int,
    jti: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Sign an RFC 9068 access token.

    Claims: ``iss``, ``sub``, ``client_id`` (= ``subject``), ``aud`` (a single
    string), ``scope`` (space-separated), ``jti``, ``iat`` = ``now`` and
    ``exp`` = ``now + ttl``, plus ``extra``.

    :raises ValueError: if ``ttl`` is not in 1..:data:`MAX_ACCESS_TOKEN_TTL`,
        ``scope`` is not a valid non-empty RFC 6749 §3.3 scope string, or
        ``extra`` tries to set a registered claim.
    """
    if not 0 < ttl <= MAX_ACCESS_TOKEN_TTL:
        raise ValueError(f"ttl must be 1..{MAX_ACCESS_TOKEN_TTL} seconds")
    if not issuer or not subject or not audience or not jti:
        raise ValueError("issuer, subject, audience and jti must be non-empty")
    _parse_scope(scope, error=ValueError)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "client_id": subject,
        "aud": audience,
        "scope": scope,
        "jti": jti,
        "iat": now,
        "exp": now + ttl,
    }
    for name, value in (extra or {}).items():
        if name in _REGISTERED:
            raise ValueError(f"extra may not set the registered claim {name!r}")
        claims[name] = value
    return encode_jwt(claims, key, typ=ACCESS_TOKEN_TYP)


def verify_access_token(
    token: str,
    keys: KeySet,
    *,
    audience: str,
    issuer: str,
    now: int,
    leeway: int = CLOCK_LEEWAY,
    cache: VerifiedCache | None = None,
) -> AccessClaims:
    """Verify an access token presented to ``audience``.

    Requires (besides signature, ``typ`` = :data:`ACCESS_TOKEN_TYP` and the
    size limit :data:`MAX_TOKEN_SIZE`): every RFC 9068 §2.2 claim plus
    ``scope``; ``iss`` = ``issuer``; ``aud`` exactly the string ``audience``
    (RFC 9068 §4: a list is refused, so a token meant for several parties is
    never accepted by one); ``client_id`` = ``sub``; a lifetime of at most
    :data:`MAX_ACCESS_TOKEN_TTL`; a well-formed ``scope``. ``cache`` spares a token
    presented again its signature check, never its claim checks.

    :raises InvalidSignature: whatever is wrong (the cause is in ``reason``).
    """
    claims = decode_jwt(
        token,
        keys,
        now=now,
        audience=audience,
        typ=ACCESS_TOKEN_TYP,
        issuer=issuer,
        leeway=leeway,
        max_lifetime=MAX_ACCESS_TOKEN_TTL,
        required=_ACCESS_TOKEN_CLAIMS,
        max_size=MAX_TOKEN_SIZE,
        cache=cache,
    )
    if claims["aud"] != audience:
        _reject("aud must be exactly the audience, as a single string")
    if claims["client_id"] != claims["sub"]:
        _reject("client_id does not match sub")
    scope = _parse_scope(claims["scope"], error=None)
    return AccessClaims(
        subject=claims["sub"],
        client_id=claims["client_id"],
        audience=claims["aud"],
        scope=scope,
        jti=claims["jti"],
        issued_at=claims["iat"],
        expires_at=claims["exp"],
        extra={k: v for k, v in claims.items() if k not in _REGISTERED},
    )


def unverified_claims(token: str) -> dict[str, Any]:
    """Read a JWT's claims **without verifying anything**.

    Only for choosing which keys or audience to verify with (the ``sub`` of a
    client assertion, the ``aud`` of a token being introspected); the result
    must never be trusted before the token is verified with those.

    :raises InvalidSignature: if the token is larger than
        :data:`MAX_TOKEN_SIZE`, not three segments, or its payload is not a
        base64url JSON object.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_SIZE:
        _reject("token missing or too large")
    segments = token.split(".")
    if len(segments) != 3:
        _reject("not a compact JWS")
    try:
        claims = strict_json_loads(b64url_decode(segments[1]))
    except ValueError as e:
        raise InvalidSignature("payload is not base64url JSON", message=TOKEN_REJECTED) from e
    if not isinstance(claims, dict):
        _reject("payload is not a JSON object")
    return claims


def _parse_scope(scope: Any, *, error: type[ValueError] | None) -> frozenset[str]:
    """Split an RFC 6749 §3.3 scope string; refuse empty or malformed ones."""
    tokens = scope.split(" ") if isinstance(scope, str) else []
    if not tokens or not all(_SCOPE_TOKEN.fullmatch(t) for t in tokens):
        message = "scope must be space-separated RFC 6749 scope tokens"
        if error is not None:
            raise error(message)
        _reject(message)
    return frozenset(tokens)


def _reject(reason: str) -> NoReturn:
    raise InvalidSignature(reason, message=TOKEN_REJECTED)
