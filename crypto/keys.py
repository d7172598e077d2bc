"""Ed25519 signing keys, verify keys and key sets (JWK / JWKS).

Only Ed25519 exists here: every loader refuses other key types outright
instead of carrying them around until some verifier has to refuse them.
A key's ``kid`` is always its RFC 7638 JWK thumbprint, so a key id can be
recomputed from the key and never has to be trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from joserfc.jwk import OKPKey

from crypto._encoding import b64url_decode, b64url_encode
from crypto.canonical import canonical_json
from crypto.errors import InvalidKey, InvalidSignature

__all__ = ["MAX_JWKS_KEYS", "KeySet", "SigningKey", "VerifyKey", "jwk_thumbprint"]

#: Upper bound on the number of keys accepted from one JWKS document.
MAX_JWKS_KEYS = 64

_ED25519_KEY_SIZE = 32  # bytes, RFC 8032 §5.1.5
_PRIVATE_JWK_MEMBERS = frozenset({"d"})  # RFC 8037 §2


def jwk_thumbprint(x: str) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of the Ed25519 public JWK with this ``x``.

    RFC 7638 §3.2 / RFC 8037 §2: the hash input is the JSON object of the
    required members ``crv``, ``kty`` and ``x`` only, in canonical form.
    """
    members = {"crv": "Ed25519", "kty": "OKP", "x": x}
    return b64url_encode(hashlib.sha256(canonical_json(members)).digest())


# Curve25519 field prime and the y-coordinates of the small-order points of
# edwards25519 (orders 1, 2, 4 and 8). A public key on one of them makes
# "universal" signatures possible (R = identity, s = 0 verifies any message),
# so the signer could later deny anything; libsodium refuses the same set.
_P = 2**255 - 19
_SMALL_ORDER_Y = frozenset({
    0,
    1,
    _P - 1,
    0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
    0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
})


def _refuse_weak_point(raw: bytes) -> None:
    """Refuse non-canonical and small-order Ed25519 public keys (RFC 8032 §5.1.3)."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise InvalidKey("non-canonical Ed25519 public key encoding")
    if y in _SMALL_ORDER_Y:
        raise InvalidKey("weak (small-order) Ed25519 public key")


class VerifyKey:
    """An Ed25519 public key, used to verify signatures."""

    __slots__ = ("_key", "_kid", "_raw")

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        """Wrap a ``cryptography`` Ed25519 public key.

        :raises InvalidKey: if ``public_key`` is not an Ed25519 public key.
        """
        if not isinstance(public_key, Ed25519PublicKey):
            raise InvalidKey("not an Ed25519 public key")
        self._key = public_key
        self._raw = public_key.public_bytes_raw()
        _refuse_weak_point(self._raw)
        self._kid = jwk_thumbprint(b64url_encode(self._raw))

    @classmethod
    def from_bytes(cls, data: bytes) -> VerifyKey:
        """Load a raw 32-byte Ed25519 public key (RFC 8032 encoding).

        :raises InvalidKey: if ``data`` is not 32 bytes or not a valid key.
        """
        if len(data) != _ED25519_KEY_SIZE:
            raise InvalidKey("an Ed25519 public key is 32 bytes")
        try:
            return cls(Ed25519PublicKey.from_public_bytes(bytes(data)))
        except ValueError as e:
            raise InvalidKey("invalid Ed25519 public key") from e

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerifyKey:
        """Load a public Ed25519 JWK (RFC 8037 §2), strictly.

        Requires ``kty`` = ``OKP``, ``crv`` = ``Ed25519`` and an ``x`` of 32
        bytes. An optional ``kid`` must equal the key's thumbprint, an
        optional ``alg`` must be ``Ed25519`` (or the deprecated ``EdDSA``), an
        optional ``use`` must be ``sig`` and optional ``key_ops`` may only
        contain ``verify``.

        :raises InvalidKey: on any deviation, and whenever private key
            material (``d``) is present.
        """
        if not isinstance(jwk, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        if _PRIVATE_JWK_MEMBERS & set(jwk):
            # Private material where a public key is expected means the
            # publisher leaked its secret; never accept or propagate it.
            raise InvalidKey("a public JWK must not contain private key members")
        if jwk.get("kty") != "OKP":
            raise InvalidKey("JWK kty must be 'OKP'")
        if jwk.get("crv") != "Ed25519":
            raise InvalidKey("JWK crv must be 'Ed25519'")
        x = jwk.get("x")
        if not isinstance(x, str):
            raise InvalidKey("JWK x must be a string")
        try:
            raw = b64url_decode(x)
        except ValueError as e:
            raise InvalidKey("JWK x is not base64url") from e
        key = cls.from_bytes(raw)
        if "kid" in jwk and jwk["kid"] != key.kid:
            raise InvalidKey("JWK kid does not match the key's RFC 7638 thumbprint")
        if "alg" in jwk and jwk["alg"] not in ("Ed25519", "EdDSA"):
            raise InvalidKey("JWK alg must be 'Ed25519' (or the deprecated 'EdDSA')")
        if "use" in jwk and jwk["use"] != "sig":
            raise InvalidKey("JWK use must be 'sig'")
        if "key_ops" in jwk:
            key_ops = jwk["key_ops"]
            if not isinstance(key_ops, list) or any(op != "verify" for op in key_ops):
                raise InvalidKey("JWK key_ops may only contain 'verify'")
        return key

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of this key, used as its key id."""
        return self._kid

    @property
    def raw(self) -> bytes:
        """The raw 32-byte public key."""
        return self._raw

    def to_jwk(self) -> dict[str, str]:
        """Return the public JWK, with ``kid``, ``alg`` and ``use``."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(self._raw),
            "kid": self._kid,
            "alg": "Ed25519",
            "use": "sig",
        }

    def verify(self, signature: bytes, data: bytes) -> None:
        """Check a raw Ed25519 ``signature`` over ``data``.

        :raises InvalidSignature: if the signature does not verify.
        """
        try:
            self._key.verify(bytes(signature), bytes(data))
        except _CryptographyInvalidSignature as e:
            raise InvalidSignature("Ed25519 signature does not verify") from e

    def _to_okp_key(self) -> OKPKey:
        # Package-internal: the joserfc view of this key, for crypto.jws.
        return OKPKey.import_key(self._key)

    def __eq__(self, other: object) -> bool:
        """Keys are equal when their public key bytes are."""
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        """Hash of the public key bytes."""
        return hash(self._raw)

    def __repr__(self) -> str:
        """Show the key id."""
        return f"VerifyKey(kid={self._kid!r})"


class SigningKey:
    """An Ed25519 private key, used to sign."""

    __slots__ = ("_key", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        """Wrap a ``cryptography`` Ed25519 private key.

        :raises InvalidKey: if ``private_key`` is not an Ed25519 private key.
        """
        if not isinstance(private_key, Ed25519PrivateKey):
            raise InvalidKey("not an Ed25519 private key")
        self._key = private_key
        self._public = VerifyKey(private_key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        """Generate a fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Load a key from its raw 32-byte RFC 8032 private key (the JWK ``d``).

        :raises InvalidKey: if ``seed`` is not 32 bytes.
        """
        if len(seed) != _ED25519_KEY_SIZE:
            raise InvalidKey("an Ed25519 private key is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM Ed25519 private key.

        :raises InvalidKey: if ``data`` is malformed, encrypted, or holds any
            other kind of key.
        """
        try:
            key = serialization.load_pem_private_key(bytes(data), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise InvalidKey("not a loadable unencrypted PEM private key") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidKey(f"expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    def private_pem(self) -> bytes:
        """Return the key as unencrypted PKCS#8 PEM. Handle as a secret."""
        return self._key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> VerifyKey:
        """The matching public key."""
        return self._public

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key, used as key id."""
        return self._public.kid

    def sign(self, data: bytes) -> bytes:
        """Return the raw 64-byte Ed25519 signature of ``data``."""
        return self._key.sign(bytes(data))

    def _to_okp_key(self) -> OKPKey:
        # Package-internal: the joserfc view of this key, for crypto.jws.
        return OKPKey.import_key(self._key)

    def __repr__(self) -> str:
        """Show the key id, never the secret."""
        return f"SigningKey(kid={self.kid!r})"


class KeySet:
    """An immutable set of verify keys indexed by ``kid`` (a JWKS, RFC 7517 §5).

    Iterating yields key ids. :meth:`get` raises the opaque
    :class:`~crypto.errors.InvalidSignature` for an unknown ``kid``, because
    looking a key up is part of verifying a token.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[VerifyKey] = ()) -> None:
        """Build a key set.

        :raises InvalidKey: if two keys have the same ``kid``, or there are
            more than :data:`MAX_JWKS_KEYS`.
        """
        by_kid: dict[str, VerifyKey] = {}
        for key in keys:
            if not isinstance(key, VerifyKey):
                raise InvalidKey("a KeySet holds VerifyKey instances only")
            if key.kid in by_kid:
                raise InvalidKey(f"duplicate key id {key.kid!r}")
            by_kid[key.kid] = key
            if len(by_kid) > MAX_JWKS_KEYS:
                raise InvalidKey(f"a key set holds at most {MAX_JWKS_KEYS} keys")
        self._keys: Mapping[str, VerifyKey] = MappingProxyType(by_kid)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> KeySet:
        """Load a JWKS document ``{"keys": [...]}``, strictly.

        The document must have exactly the one member ``keys``, a list of at
        most :data:`MAX_JWKS_KEYS` JWKs, each accepted by
        :meth:`VerifyKey.from_jwk`, with no two sharing a key.

        :raises InvalidKey: on any deviation.
        """
        if not isinstance(jwks, Mapping) or set(jwks) != {"keys"}:
            raise InvalidKey('a JWKS must be a JSON object with the single member "keys"')
        entries = jwks["keys"]
        if not isinstance(entries, list):
            raise InvalidKey('JWKS "keys" must be a list')
        if len(entries) > MAX_JWKS_KEYS:
            raise InvalidKey(f"a JWKS holds at most {MAX_JWKS_KEYS} keys")
        return cls(VerifyKey.from_jwk(entry) for entry in entries)

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the JWKS document for this key set."""
        return {"keys": [key.to_jwk() for key in self._keys.values()]}

    def get(self, kid: str) -> VerifyKey:
        """Return the key with this ``kid``.

        :raises InvalidSignature: if there is none (opaque, like any other
            verification failure).
        """
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            # The kid comes from an untrusted token: cap what reaches the log.
            raise InvalidSignature(f"unknown kid {kid!r:.80}")
        return key

    def verify_keys(self) -> list[VerifyKey]:
        """The keys themselves, in insertion order (iterating the set yields kids)."""
        return [self.get(kid) for kid in self]

    def __contains__(self, kid: object) -> bool:
        """Whether a key with this ``kid`` is in the set."""
        return isinstance(kid, str) and kid in self._keys

    def __len__(self) -> int:
        """Number of keys."""
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the key ids."""
        return iter(self._keys)

    def __repr__(self) -> str:
        """Show the key ids."""
        return f"KeySet({list(self._keys)!r})"
