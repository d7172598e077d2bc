"""JSON Web Tokens (RFC 7519) signed with :mod:`crypto.jws`, with explicit claim checks.

joserfc's own ``jwt.decode`` verifies the signature but leaves claim
validation to the caller; here every rule is spelled out in
:func:`decode_jwt` and every failure, signature or claims, raises the same
opaque :class:`~crypto.errors.InvalidSignature` with the message
:data:`~crypto.errors.TOKEN_REJECTED`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from crypto._encoding import strict_json_loads
from crypto.errors import TOKEN_REJECTED, InvalidSignature
from crypto.jws import VerifiedCache, sign_compact, verify_compact
from crypto.keys import KeySet, SigningKey

__all__ = ["DEFAULT_REQUIRED_CLAIMS", "decode_jwt", "encode_jwt"]

#: Claims :func:`decode_jwt` requires unless told otherwise.
DEFAULT_REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "sub", "aud", "exp", "iat", "jti")

_TIME_CLAIMS = ("exp", "nbf", "iat")  # RFC 7519 §4.1.4-6 NumericDate
_STRING_CLAIMS = ("iss", "sub", "jti")  # RFC 7519 §4.1.1, 4.1.2, 4.1.7


def encode_jwt(claims: Mapping[str, Any], key: SigningKey, *, typ: str = "JWT") -> str:
    """Sign ``claims`` as a compact JWT (payload: compact UTF-8 JSON).

    The registered claims are type-checked first, so this never issues a
    token that :func:`decode_jwt` would reject for its types: ``exp``,
    ``nbf`` and ``iat`` must be ``int`` (seconds since the epoch); ``iss``,
    ``sub`` and ``jti`` must be ``str``; ``aud`` a ``str`` or a list of them.

    :raises ValueError: on a mistyped registered claim or a value JSON
        cannot carry (NaN, infinity).
    :raises TypeError: on a value that is not JSON serializable.
    """
    problem = _claim_type_problem(claims)
    if problem is not None:
        raise ValueError(problem)
    payload = json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return sign_compact(payload.encode("utf-8"), key, typ=typ)


def decode_jwt(
    token: str | bytes,
    keys: KeySet,
    *,
    now: int,
    audience: str,
    typ: str,
    issuer: str | None = None,
    leeway: int = 30,
    max_lifetime: int | None = None,
    required: Iterable[str] = DEFAULT_REQUIRED_CLAIMS,
    max_size: int = 8192,
    cache: VerifiedCache | None = None,
) -> dict[str, Any]:
    """Verify a JWT and its claims, and return the claims.

    :param token: the compact JWT.
    :param keys: trusted keys; the header's ``kid`` selects one.
    :param now: current time, seconds since the epoch.
    :param audience: who we are; ``aud`` must equal it or be a list holding it.
    :param issuer: if given, ``iss`` must equal it.
    :param typ: the header's ``typ`` must match it (RFC 7515 §4.1.9). It is
        required: the same keys sign trust lists, agreements and tokens, and
        only ``typ`` keeps one kind from being replayed as another (RFC 8725 §3.11).
    :param leeway: allowed clock skew, in seconds, for ``exp``, ``nbf``, ``iat``.
    :param max_lifetime: if given, ``exp - iat`` may be at most this many
        seconds (both claims then become mandatory).
    :param required: claims that must be present.
    :param max_size: largest accepted token, in bytes.
    :param cache: signatures already verified (:class:`crypto.jws.VerifiedCache`); the
        claims are checked again on every call all the same.
    :raises InvalidSignature: on any failure, with ``str()`` equal to
        :data:`~crypto.errors.TOKEN_REJECTED` and the cause in ``.reason``.
    """
    if isinstance(now, bool) or not isinstance(now, int):
        raise TypeError("now must be an int (seconds since the epoch)")
    if leeway < 0:
        raise ValueError("leeway must not be negative")
    if not audience:
        raise ValueError("audience must be a non-empty string")
    required = tuple(required)

    try:
        verified = verify_compact(token, keys, max_size=max_size, expected_typ=typ, cache=cache)
    except InvalidSignature as e:
        raise InvalidSignature(e.reason, message=TOKEN_REJECTED) from e
    try:
        claims = strict_json_loads(verified.payload)
    except ValueError as e:
        raise InvalidSignature("payload is not JSON", message=TOKEN_REJECTED) from e
    if not isinstance(claims, dict):
        _reject("payload is not a JSON object")

    missing = [name for name in required if name not in claims]
    if missing:
        _reject(f"missing required claim(s) {missing}")
    problem = _claim_type_problem(claims)
    if problem is not None:
        _reject(problem)
    _check_times(claims, now=now, leeway=leeway, max_lifetime=max_lifetime)
    _check_audience(claims, audience)
    if issuer is not None and claims.get("iss") != issuer:
        _reject(f"iss {claims.get('iss')!r:.80} is not {issuer!r}")
    return claims


def _reject(reason: str) -> NoReturn:
    raise InvalidSignature(reason, message=TOKEN_REJECTED)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claim_type_problem(claims: Mapping[str, Any]) -> str | None:
    """Describe the first mistyped registered claim, or return None."""
    for name in _TIME_CLAIMS:
        if name in claims and not _is_int(claims[name]):
            return f"{name} must be an integer NumericDate"
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            return f"{name} must be a string"
    if "aud" in claims:
        aud = claims["aud"]
        if isinstance(aud, list):
            if not aud or not all(isinstance(item, str) for item in aud):
                return "aud list must be non-empty and hold strings only"
        elif not isinstance(aud, str):
            return "aud must be a string or a list of strings"
    return None


def _check_times(
    claims: Mapping[str, Any], *, now: int, leeway: int, max_lifetime: int | None
) -> None:
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    # RFC 7519 §4.1.4: the token MUST NOT be accepted on or after exp.
    if exp is not None and not exp > now - leeway:
        _reject(f"expired: exp={exp} now={now} leeway={leeway}")
    # RFC 7519 §4.1.5: the token MUST NOT be accepted before nbf.
    if nbf is not None and nbf > now + leeway:
        _reject(f"not yet valid: nbf={nbf} now={now} leeway={leeway}")
    if iat is not None and iat > now + leeway:
        _reject(f"issued in the future: iat={iat} now={now} leeway={leeway}")
    if exp is not None and iat is not None and exp < iat:
        _reject(f"exp={exp} is before iat={iat}")
    if max_lifetime is not None:
        if exp is None or iat is None:
            _reject("exp and iat are needed to bound the token lifetime")
        if exp - iat > max_lifetime:
            _reject(f"lifetime {exp - iat}s exceeds {max_lifetime}s")


def _check_audience(claims: Mapping[str, Any], audience: str) -> None:
    # RFC 7519 §4.1.3: reject unless we identify with a value in aud.
    aud = claims.get("aud")
    if aud is None:
        _reject("aud missing")
    accepted = aud == audience if isinstance(aud, str) else audience in aud
    if not accepted:
        _reject(f"aud {aud!r:.120} does not include {audience!r}")
