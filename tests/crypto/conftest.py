"""Shared fixtures for the crypto tests: real Ed25519 keys and a token forger.

The forger builds compact JWS tokens byte by byte, without going through
:mod:`crypto.jws`, the way an attacker would: any header, any payload, any
signature, signed by any key or HMAC secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from crypto.keys import KeySet, SigningKey


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Forge:
    """Hand-crafts compact JWS serializations."""

    @staticmethod
    def b64(data: bytes) -> str:
        """Unpadded base64url."""
        return b64(data)

    @staticmethod
    def header(header: dict[str, Any] | bytes) -> str:
        """Encode a header given as a dict (compact JSON) or as raw bytes."""
        raw = header if isinstance(header, bytes) else json.dumps(header).encode()
        return b64(raw)

    def ed25519(self, header: dict[str, Any] | bytes, payload: bytes, key: SigningKey) -> str:
        """A token whose signature is a genuine Ed25519 signature by ``key``."""
        signing_input = f"{self.header(header)}.{b64(payload)}"
        return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"

    def hs256(self, header: dict[str, Any], payload: bytes, secret: bytes) -> str:
        """A token MACed with HMAC-SHA256 under ``secret``."""
        signing_input = f"{self.header(header)}.{b64(payload)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    def unsigned(self, header: dict[str, Any], payload: bytes) -> str:
        """A token with an empty signature (RFC 7519 §6 unsecured JWT)."""
        return f"{self.header(header)}.{b64(payload)}."


@pytest.fixture
def forge() -> Forge:
    """The token forger."""
    return Forge()


@pytest.fixture(scope="session")
def key() -> SigningKey:
    """Our signing key (trusted)."""
    return SigningKey.generate()


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    """A second trusted key, for rotation tests."""
    return SigningKey.generate()


@pytest.fixture(scope="session")
def attacker_key() -> SigningKey:
    """A perfectly valid Ed25519 key that nobody trusts."""
    return SigningKey.generate()


@pytest.fixture(scope="session")
def keyset(key: SigningKey) -> KeySet:
    """The trusted key set: only ``key``."""
    return KeySet([key.public_key])
