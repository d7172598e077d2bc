"""JWS compact serialization (RFC 7515), Ed25519 only.

Every token is signed with ``alg`` = ``Ed25519``, the fully-specified name of
RFC 9864 (which deprecates the polymorphic ``EdDSA`` of RFC 8037), and
carries the signer's ``kid``. For one release ``EdDSA`` is still accepted
from peers that have not upgraded: our keys are Ed25519 by construction, so
both names mean the same signature. Verification is a pipeline of cheap
structural checks done here, before any cryptography, followed by the
signature check in joserfc with a registry that knows no other algorithm:

1. size at most ``max_size``; exactly three ``.``-separated segments;
2. the protected header is canonical base64url of a JSON object without
   duplicate members;
3. ``alg`` is exactly ``Ed25519`` (or, for now, ``EdDSA``); ``kid`` is present and in the caller's
   :class:`~crypto.keys.KeySet` (the key is chosen by the verifier, never
   taken from the token: ``jwk``, ``jku``, ``x5u``, ``x5c``, ``x5t`` and
   ``x5t#S256`` are refused);
4. no ``crit`` (we implement no extension, RFC 7515 §4.1.11) and no ``b64``
   (RFC 7797 unencoded payloads are not supported);
5. ``typ`` matches, when the caller expects one.

Any failure raises the opaque :class:`~crypto.errors.InvalidSignature`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from joserfc import jws as jose_jws
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jws import JWSRegistry

from crypto._encoding import b64url_decode, strict_json_loads
from crypto.errors import InvalidSignature
from crypto.keys import KeySet, SigningKey, VerifyKey

__all__ = [
    "ACCEPTED_ALGORITHMS",
    "ALGORITHM",
    "FORBIDDEN_HEADERS",
    "Verified",
    "VerifiedCache",
    "sign_compact",
    "sign_detached",
    "verify_compact",
    "verify_detached",
]

#: The JWS algorithm this module signs with (RFC 9864 §2.2).
ALGORITHM = "Ed25519"

#: What it accepts: ``Ed25519``, and until the next release the deprecated
#: polymorphic ``EdDSA`` (RFC 8037 §3.1) that older peers still send.
ACCEPTED_ALGORITHMS = (ALGORITHM, "EdDSA")

#: Header parameters that would let a token name its own verification key.
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"})

# Never produced nor accepted: extensions we do not implement (RFC 7515
# §4.1.11) and RFC 7797 unencoded payloads.
_UNSUPPORTED_HEADERS = frozenset({"crit", "b64"})

_DEFAULT_MAX_SIZE = 65536  # bytes of the serialized JWS
_ED25519_SIGNATURE_SIZE = 64  # bytes, RFC 8032 §5.1.6


@dataclass(frozen=True)
class Verified:
    """The result of a successful verification.

    :ivar header: the protected header, as decoded.
    :ivar payload: the verified payload bytes.
    :ivar kid: id of the key that verified the signature.
    """

    header: dict[str, Any]
    payload: bytes
    kid: str


class VerifiedCache:
    """The last ``size`` compact JWS that verified, by their exact text (least recently used
    out first): a bearer token presented again skips parsing and the signature check.

    Only successes are kept, so a flood of forged tokens costs what it always
    did and cannot push good entries out faster than new tokens would. A hit
    counts only if the key that verified it is still in the caller's keys
    (a key id is the key's thumbprint, so the same id is the same key) and
    the expected ``typ`` is the same; everything else about the token (its
    claims, its times) the caller checks again every time.
    """

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._entries: OrderedDict[tuple[str, str | None, int], Verified] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, keys: KeySet, expected_typ: str | None,
            max_size: int) -> Verified | None:
        """The earlier verification of ``token`` under the same ``expected_typ`` and
        ``max_size``, if the key that verified it is still one of ``keys``."""
        entry = (token, expected_typ, max_size)
        with self._lock:
            verified = self._entries.get(entry)
            if verified is None:
                return None
            self._entries.move_to_end(entry)
        return verified if verified.kid in keys else None

    def put(self, token: str, expected_typ: str | None, max_size: int,
            verified: Verified) -> None:
        """Remember that ``token`` verified as ``verified``."""
        entry = (token, expected_typ, max_size)
        with self._lock:
            self._entries[entry] = verified
            self._entries.move_to_end(entry)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        """How many verifications are remembered."""
        return len(self._entries)


class _PinnedEdDSA(EdDSAAlgorithm):
    # joserfc warns on every use of "EdDSA" that RFC 9864 deprecates the
    # polymorphic name. We only verify it (never sign with it), with keys
    # that are Ed25519 by construction (crypto.keys loads nothing else), so
    # the warning would be noise. joserfc tests the attribute for truth.
    security_warning = ""


_ALGORITHMS = {ALGORITHM: JWSRegistry.algorithms[ALGORITHM], "EdDSA": _PinnedEdDSA()}


def _registry(max_size: int = _DEFAULT_MAX_SIZE) -> jose_jws.JWSRegistry:
    """A joserfc registry that can resolve no algorithm but Ed25519 (and ``EdDSA``).

    ``algorithms=[...]`` is joserfc's allow-list; replacing the instance's
    ``algorithms`` table as well means even a bug in that allow-list could
    not reach another algorithm: none is registered here. Unregistered header
    names are allowed (``strict_check_header=False``) so callers can add
    their own protected headers; registered ones are still type-checked.
    """
    registry = jose_jws.JWSRegistry(algorithms=list(ACCEPTED_ALGORITHMS),
                                    strict_check_header=False)
    registry.algorithms = dict(_ALGORITHMS)
    registry.recommended = [ALGORITHM]
    # Our own max_size is the bound; keep joserfc's per-segment limits from
    # being stricter than what the caller asked for.
    registry.max_header_length = max_size
    registry.max_payload_length = max_size
    registry.max_signature_length = max_size
    return registry


def sign_compact(
    payload: bytes,
    key: SigningKey,
    *,
    typ: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` and return the JWS compact serialization.

    The protected header is ``alg`` = ``Ed25519``, ``kid`` = ``key.kid``, then
    ``typ`` if given, then ``headers``.

    :raises ValueError: if ``headers`` tries to set ``alg`` or ``kid`` (or
        ``typ`` twice), or holds a header this module would refuse to verify.
    """
    header = _protected_header(key, typ, headers)
    return jose_jws.serialize_compact(
        header, bytes(payload), key._to_okp_key(), registry=_registry()
    )


def sign_detached(
    payload: bytes,
    key: SigningKey,
    *,
    typ: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` and return the detached form ``header..signature``.

    RFC 7515 Appendix F: the signing input still contains the base64url
    payload; only the middle segment is left out. The verifier must be given
    the payload separately (:func:`verify_detached`).

    :raises ValueError: as :func:`sign_compact`.
    """
    return jose_jws.detach_content(sign_compact(payload, key, typ=typ, headers=headers))


def verify_compact(
    token: str | bytes,
    keys: KeySet,
    *,
    max_size: int = _DEFAULT_MAX_SIZE,
    expected_typ: str | None = None,
    cache: VerifiedCache | None = None,
) -> Verified:
    """Verify a JWS compact serialization with one of ``keys``.

    :param token: the compact JWS.
    :param keys: the trusted keys; the header's ``kid`` selects one.
    :param max_size: largest accepted token, in bytes.
    :param expected_typ: if given, the header's ``typ`` must match it
        (case-insensitively, ``application/`` optional: RFC 7515 §4.1.9).
    :param cache: earlier successes to answer from, and to add this one to
        (:class:`VerifiedCache`; only ``str`` tokens are remembered).
    :raises InvalidSignature: whatever is wrong with the token.
    """
    if cache is not None and isinstance(token, str):
        known = cache.get(token, keys, expected_typ, max_size)
        if known is not None:
            return known
        verified = verify_compact(token, keys, max_size=max_size, expected_typ=expected_typ)
        cache.put(token, expected_typ, max_size, verified)
        return verified
    raw, (header_segment, payload_segment, signature_segment) = _split(token, max_size)
    header = _decode_header(header_segment)
    key = _check_header(header, keys, expected_typ)
    _check_signature_segment(signature_segment)
    try:
        payload = b64url_decode(payload_segment)
    except ValueError as e:
        raise InvalidSignature("payload is not base64url") from e
    _joserfc_verify(raw, key, header, payload, detached_payload=None, max_size=max_size)
    return Verified(header=header, payload=payload, kid=key.kid)


def verify_detached(
    jws: str | bytes,
    payload: bytes,
    keys: KeySet,
    *,
    max_size: int = _DEFAULT_MAX_SIZE,
    expected_typ: str | None = None,
) -> Verified:
    """Verify a detached JWS ``header..signature`` over ``payload``.

    The header rules are those of :func:`verify_compact`. A JWS that embeds
    a payload is refused, even one that would verify: it signs its embedded
    payload, not necessarily the one given here.

    :raises InvalidSignature: whatever is wrong with the JWS or the payload.
    """
    raw, (header_segment, payload_segment, signature_segment) = _split(jws, max_size)
    if payload_segment:
        _fail("detached JWS carries an embedded payload")
    header = _decode_header(header_segment)
    key = _check_header(header, keys, expected_typ)
    _check_signature_segment(signature_segment)
    payload = bytes(payload)
    _joserfc_verify(raw, key, header, payload, detached_payload=payload, max_size=max_size)
    return Verified(header=header, payload=payload, kid=key.kid)


def _protected_header(
    key: SigningKey, typ: str | None, headers: Mapping[str, Any] | None
) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": ALGORITHM, "kid": key.kid}
    if typ is not None:
        header["typ"] = typ
    for name, value in (headers or {}).items():
        if name in header:
            raise ValueError(f"header {name!r} is set by the signer, not by headers=")
        if name in FORBIDDEN_HEADERS or name in _UNSUPPORTED_HEADERS:
            raise ValueError(f"header {name!r} would be rejected by verification")
        header[name] = value
    if not isinstance(header.get("typ", ""), str):
        raise ValueError("typ must be a string")
    return header


def _fail(reason: str) -> NoReturn:
    raise InvalidSignature(reason)


def _split(token: str | bytes, max_size: int) -> tuple[bytes, list[bytes]]:
    if isinstance(token, str):
        if len(token) > max_size:  # before encoding an arbitrarily large string
            _fail(f"token larger than {max_size} bytes")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError as e:
            raise InvalidSignature("token is not ASCII") from e
    elif isinstance(token, bytes | bytearray | memoryview):
        raw = bytes(token)
    else:
        _fail(f"token must be str or bytes, not {type(token).__name__}")
    if len(raw) > max_size:
        _fail(f"token larger than {max_size} bytes")
    segments = raw.split(b".")
    if len(segments) != 3:
        _fail(f"compact JWS has {len(segments)} segments, expected 3")
    return raw, segments


def _decode_header(segment: bytes) -> dict[str, Any]:
    try:
        header = strict_json_loads(b64url_decode(segment))
    except ValueError as e:
        raise InvalidSignature("protected header is not base64url JSON") from e
    if not isinstance(header, dict):
        _fail("protected header is not a JSON object")
    return header


def _check_header(header: dict[str, Any], keys: KeySet, expected_typ: str | None) -> VerifyKey:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ACCEPTED_ALGORITHMS:
        _fail(f"alg {alg!r:.40} is not allowed")
    embedded = FORBIDDEN_HEADERS.intersection(header)
    if embedded:
        # Never trust a key, or a pointer to one, that the token brings along.
        _fail(f"forbidden key-bearing header(s) {sorted(embedded)}")
    unsupported = _UNSUPPORTED_HEADERS.intersection(header)
    if unsupported:
        _fail(f"unsupported header(s) {sorted(unsupported)}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        _fail("kid missing or not a string")
    key = keys.get(kid)
    if expected_typ is not None:
        typ = header.get("typ")
        if not isinstance(typ, str) or _normalize_typ(typ) != _normalize_typ(expected_typ):
            _fail(f"typ {typ!r:.40} does not match {expected_typ!r}")
    return key


def _normalize_typ(value: str) -> str:
    # RFC 7515 §4.1.9: media types compare case-insensitively, and
    # "application/" may be omitted when no other '/' appears in the value.
    lowered = value.lower()
    prefix = "application/"
    if lowered.startswith(prefix) and "/" not in lowered[len(prefix) :]:
        return lowered[len(prefix) :]
    return lowered


def _check_signature_segment(segment: bytes) -> None:
    try:
        signature = b64url_decode(segment)
    except ValueError as e:
        raise InvalidSignature("signature is not base64url") from e
    if len(signature) != _ED25519_SIGNATURE_SIZE:
        _fail(f"signature is {len(signature)} bytes, expected {_ED25519_SIGNATURE_SIZE}")


def _joserfc_verify(
    raw: bytes,
    key: VerifyKey,
    header: dict[str, Any],
    payload: bytes,
    *,
    detached_payload: bytes | None,
    max_size: int,
) -> None:
    try:
        obj = jose_jws.deserialize_compact(
            raw, key._to_okp_key(), registry=_registry(max_size), payload=detached_payload
        )
    except (JoseError, ValueError, TypeError) as e:
        raise InvalidSignature(f"joserfc rejected the JWS: {type(e).__name__}") from e
    # Defence in depth: joserfc must have verified exactly what we checked.
    if obj.headers() != header or obj.payload != payload:
        _fail("joserfc parsed a different header or payload")
