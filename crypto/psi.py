"""Private set intersection cardinality: how many identifiers two parties share, and nothing else.

Diffie-Hellman PSI-CA (Huberman, Franklin and Hogg 1999; De Cristofaro, Gasti
and Tsudik 2012) on the prime-order subgroup of edwards25519, through
libsodium's core functions (PyNaCl). Each party hashes its identifiers to the
group (:func:`hash_to_group`: SHA-512 with a domain tag, then libsodium's
Elligator 2 map, which lands in the prime-order subgroup) and blinds them
with a secret scalar. Exponents commute, so ``a·(b·H(x)) = b·(a·H(x))``: a
party that holds both doubly blinded sets, each sorted so that no position
links a value to an identifier, learns how many values they share, and
nothing about which. Neither party ever sees the other's identifiers, their
hashes, or singly blinded values it could undo.

libsodium exposes ristretto255 only in builds that PyNaCl does not bind;
the edwards25519 subgroup with libsodium's checks gives the same guarantees
here: every received point must be a canonical encoding of a point in the
prime-order subgroup that is not of small order
(``crypto_core_ed25519_is_valid_point``), and blinding refuses the identity.

Pure: no IO, no clock; randomness from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Sequence

import nacl.bindings as sodium
from nacl.exceptions import RuntimeError as SodiumError

from crypto.errors import CryptoError

__all__ = [
    "MAX_SET",
    "PointInvalid",
    "Scalar",
    "blind",
    "decode_points",
    "encode_points",
    "hash_to_group",
    "intersection_size",
    "new_scalar",
]

#: Largest set accepted from the other party. Recognised animals of a rare species
#: number in the tens or hundreds; the bound keeps every protocol message (the last
#: one carries three lists) under the services' 1 MiB request limit.
MAX_SET = 3_000
POINT_BYTES = 32
_DOMAIN = b"corridor-psi-ca-v1\x00"


class PointInvalid(CryptoError):
    """A received value is not a canonical point of the prime-order subgroup, or a set is bad."""


class Scalar:
    """A secret blinding scalar; never serialized."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        """Hold a reduced 32-byte scalar."""
        self._value = value

    def __repr__(self) -> str:
        return "Scalar(<secret>)"


def new_scalar() -> Scalar:
    """A fresh uniformly random non-zero scalar."""
    while True:
        value = sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))
        if any(value):
            return Scalar(value)


def hash_to_group(identifier: str, *, context: str) -> bytes:
    """The group element of one identifier (``context``: e.g. the session, so that
    values from two sessions cannot be compared)."""
    digest = hashlib.sha512(_DOMAIN + context.encode("utf-8") + b"\x00"
                            + identifier.encode("utf-8")).digest()
    point: bytes = sodium.crypto_core_ed25519_from_uniform(digest[:32])
    return point


def blind(points: Iterable[bytes], scalar: Scalar) -> list[bytes]:
    """Each point times ``scalar``, sorted (no position says which input it came from).

    :raises PointInvalid: a point is not valid (:func:`decode_points` checks
        received ones first) or the product is the identity.
    """
    out: list[bytes] = []
    for point in points:
        try:
            out.append(sodium.crypto_scalarmult_ed25519_noclamp(scalar._value, point))
        except SodiumError as e:
            raise PointInvalid("a point multiplied to the identity") from e
    return sorted(out)


def encode_points(points: Sequence[bytes]) -> list[str]:
    """Points as unpadded base64url strings (43 characters each)."""
    return [base64.urlsafe_b64encode(p).rstrip(b"=").decode("ascii") for p in points]


def decode_points(values: object, *, limit: int = MAX_SET) -> list[bytes]:
    """Received points, each checked; sorted, without duplicates.

    :raises PointInvalid: not a list of strings, more than ``limit``, a value
        that is not canonical base64url of 32 bytes, not a canonical encoding
        of a point of the prime-order subgroup, of small order, a duplicate,
        or a list that is not sorted (a sorted list hides the inputs' order).
    """
    if not isinstance(values, list):
        raise PointInvalid("the points must be a list")
    if len(values) > limit:
        raise PointInvalid(f"{len(values):,} points: more than the {limit:,} accepted")
    points: list[bytes] = []
    for i, value in enumerate(values):
        if not isinstance(value, str) or len(value) != 43 or not value.isascii():
            raise PointInvalid(f"point {i} is not 43 characters of base64url")
        try:
            raw = base64.urlsafe_b64decode(value + "=")
        except ValueError as e:
            raise PointInvalid(f"point {i} is not base64url") from e
        if len(raw) != POINT_BYTES or encode_points([raw])[0] != value:
            raise PointInvalid(f"point {i} is not the canonical base64url of 32 bytes")
        if not sodium.crypto_core_ed25519_is_valid_point(raw):
            raise PointInvalid(f"point {i} is not a canonical point of the prime-order group")
        points.append(raw)
    if points != sorted(points):
        raise PointInvalid("the points are not sorted")
    if len(set(points)) != len(points):
        raise PointInvalid("the points hold duplicates")
    return points


def intersection_size(mine: Iterable[bytes], theirs: Iterable[bytes]) -> int:
    """How many doubly blinded values the two sets share."""
    return len(set(mine) & set(theirs))
