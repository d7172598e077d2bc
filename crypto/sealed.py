"""Sealed tokens: small JSON documents a service hands out and must get back unaltered.

An incremental export's cursor goes to the partner and comes back in the next
request; whatever comes back must be exactly what this node issued, for this
purpose. :func:`seal` serializes the payload as RFC 8785 canonical JSON and
appends an HMAC-SHA256 (RFC 2104) keyed by a secret only the issuer holds;
:func:`unseal` checks the MAC in constant time *before* it parses anything, so
a forged, altered or oversize token never reaches the JSON parser and gets
one opaque :class:`~crypto.errors.InvalidSignature`.

The MAC covers a domain-separation label and the ``purpose`` (for example
``"corridor-cursor/v1"``), so a token sealed for one use is refused for
another even under the same key. Sealed tokens are authenticated, not
encrypted: the payload is readable by whoever holds the token, so it must
hold nothing the holder may not know.

Format: ``<base64url(payload)>.<base64url(mac)>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from crypto._encoding import b64url_decode, b64url_encode
from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature

__all__ = ["MAX_SEALED_LENGTH", "MIN_KEY_BYTES", "seal", "unseal"]

#: Longest sealed token accepted, in characters (refused before any work).
MAX_SEALED_LENGTH = 4096
#: Shortest MAC key accepted (bytes).
MIN_KEY_BYTES = 32
_LABEL = b"corridor-sealed\x00"


def _mac(key: bytes, purpose: str, payload: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a sealing key needs at least {MIN_KEY_BYTES} bytes")
    message = _LABEL + purpose.encode("utf-8") + b"\x00" + payload
    return hmac.new(key, message, hashlib.sha256).digest()


def seal(key: bytes, purpose: str, payload: Mapping[str, Any]) -> str:
    """``payload`` as a sealed token for ``purpose``.

    :raises ValueError: the key is too short, the payload is not canonical-JSON
        serializable, or the token would be longer than :data:`MAX_SEALED_LENGTH`.
    """
    body = canonical_json(dict(payload))
    token = b64url_encode(body) + "." + b64url_encode(_mac(key, purpose, body))
    if len(token) > MAX_SEALED_LENGTH:
        raise ValueError(f"sealed token of {len(token)} characters exceeds {MAX_SEALED_LENGTH}")
    return token


def unseal(key: bytes, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token :func:`seal` made with ``key`` for ``purpose``.

    The MAC is checked before the payload is parsed. The payload is then
    parsed as JSON and must be an object; checking its fields is the caller's
    job.

    :raises InvalidSignature: too long, malformed, wrong MAC (forged,
        altered, another key or another purpose), or not a JSON object. The
        reason is in ``.reason``, for logs only.
    """
    if not isinstance(token, str) or len(token) > MAX_SEALED_LENGTH:
        raise InvalidSignature("sealed token missing or too long")
    body_text, dot, mac_text = token.partition(".")
    if not dot or "." in mac_text:
        raise InvalidSignature("sealed token is not two base64url parts")
    try:
        body, mac = b64url_decode(body_text), b64url_decode(mac_text)
    except ValueError as e:
        raise InvalidSignature("sealed token is not base64url") from e
    if not hmac.compare_digest(mac, _mac(key, purpose, body)):
        raise InvalidSignature("sealed token MAC does not match")
    try:
        value = json.loads(body)
    except ValueError as e:  # cannot happen for a token we sealed
        raise InvalidSignature("sealed payload is not JSON") from e
    if not isinstance(value, dict):
        raise InvalidSignature("sealed payload is not an object")
    return value
