"""Ed25519 keys, RFC 7638 thumbprints, JWK and JWKS loading."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from crypto.errors import SIGNATURE_REJECTED, InvalidKey, InvalidSignature
from crypto.keys import MAX_JWKS_KEYS, KeySet, SigningKey, VerifyKey, jwk_thumbprint

# RFC 8037 Appendix A.1 key, A.3 thumbprint, A.4 signature.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def unb64(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkcs8(private_key: Any, password: bytes | None = None) -> bytes:
    """PEM PKCS#8 of any cryptography private key."""
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if password:
        encryption = serialization.BestAvailableEncryption(password)
    pem: bytes = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return pem


# --- positive -------------------------------------------------------------


def test_rfc8037_a3_thumbprint() -> None:
    assert jwk_thumbprint(RFC8037_X) == RFC8037_THUMBPRINT
    key = VerifyKey.from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    assert key.kid == RFC8037_THUMBPRINT


def test_rfc8037_a4_signature_known_answer() -> None:
    key = SigningKey.from_seed(unb64(RFC8037_D))
    assert key.kid == RFC8037_THUMBPRINT
    assert b64(key.sign(RFC8037_SIGNING_INPUT)) == RFC8037_SIGNATURE
    key.public_key.verify(unb64(RFC8037_SIGNATURE), RFC8037_SIGNING_INPUT)


def test_sign_verify_round_trip(key: SigningKey) -> None:
    signature = key.sign(b"message")
    assert len(signature) == 64
    key.public_key.verify(signature, b"message")


def test_kid_is_thumbprint_of_public_jwk(key: SigningKey) -> None:
    jwk = key.public_key.to_jwk()
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": jwk["x"],
        "kid": key.kid,
        "alg": "Ed25519",
        "use": "sig",
    }
    assert len(unb64(jwk["x"])) == 32
    assert key.kid == jwk_thumbprint(jwk["x"]) == key.public_key.kid


def test_pem_round_trip(key: SigningKey) -> None:
    pem = key.private_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.from_pem(pem)
    assert loaded.kid == key.kid
    loaded.public_key.verify(key.sign(b"x"), b"x")


def test_jwk_round_trip(key: SigningKey) -> None:
    assert VerifyKey.from_jwk(key.public_key.to_jwk()) == key.public_key


def test_minimal_jwk_is_accepted(key: SigningKey) -> None:
    jwk = key.public_key.to_jwk()
    minimal = {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "key_ops": ["verify"]}
    assert VerifyKey.from_jwk(minimal).kid == key.kid


def test_keys_compare_and_hash_by_public_bytes(key: SigningKey, other_key: SigningKey) -> None:
    same = VerifyKey.from_bytes(key.public_key.raw)
    assert same == key.public_key
    assert hash(same) == hash(key.public_key)
    assert same != other_key.public_key


def test_repr_does_not_leak_the_private_key(key: SigningKey) -> None:
    pem_body = b"".join(key.private_pem().splitlines()[1:-1]).decode()
    assert key.kid in repr(key)
    assert pem_body not in repr(key)


def test_jwks_round_trip(key: SigningKey, other_key: SigningKey) -> None:
    keyset = KeySet([key.public_key, other_key.public_key])
    loaded = KeySet.from_jwks(keyset.to_jwks())
    assert len(loaded) == 2
    assert set(loaded) == {key.kid, other_key.kid}
    assert key.kid in loaded
    assert loaded.get(other_key.kid) == other_key.public_key


def test_jwks_accepts_the_maximum_number_of_keys() -> None:
    jwks = {"keys": [SigningKey.generate().public_key.to_jwk() for _ in range(MAX_JWKS_KEYS)]}
    assert len(KeySet.from_jwks(jwks)) == MAX_JWKS_KEYS


# --- negative ---------------------------------------------------------------


def test_rejects_wrong_signature(key: SigningKey) -> None:
    signature = bytearray(key.sign(b"message"))
    signature[0] ^= 1
    with pytest.raises(InvalidSignature) as excinfo:
        key.public_key.verify(bytes(signature), b"message")
    assert str(excinfo.value) == SIGNATURE_REJECTED


def test_rejects_signature_over_other_data(key: SigningKey) -> None:
    with pytest.raises(InvalidSignature):
        key.public_key.verify(key.sign(b"message"), b"messagE")


def test_rejects_signature_by_other_key(key: SigningKey, attacker_key: SigningKey) -> None:
    with pytest.raises(InvalidSignature):
        key.public_key.verify(attacker_key.sign(b"message"), b"message")


def test_rejects_truncated_signature(key: SigningKey) -> None:
    with pytest.raises(InvalidSignature):
        key.public_key.verify(key.sign(b"message")[:63], b"message")


PEM_FACTORIES: dict[str, Callable[[], bytes]] = {
    "garbage": lambda: b"not a key",
    "empty": lambda: b"",
    "truncated": lambda: SigningKey.generate().private_pem()[:60],
    "rsa": lambda: pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    "ec-p256": lambda: pkcs8(ec.generate_private_key(ec.SECP256R1())),
    "x25519": lambda: pkcs8(x25519.X25519PrivateKey.generate()),
    "ed448": lambda: pkcs8(ed448.Ed448PrivateKey.generate()),
    "encrypted-ed25519": lambda: pkcs8(ed25519.Ed25519PrivateKey.generate(), b"pw"),
    "public-key": lambda: (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ),
}


@pytest.mark.parametrize("kind", PEM_FACTORIES)
def test_from_pem_rejects(kind: str) -> None:
    with pytest.raises(InvalidKey):
        SigningKey.from_pem(PEM_FACTORIES[kind]())


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_from_seed_rejects_wrong_length(size: int) -> None:
    with pytest.raises(InvalidKey):
        SigningKey.from_seed(b"\x01" * size)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_from_bytes_rejects_wrong_length(size: int) -> None:
    with pytest.raises(InvalidKey):
        VerifyKey.from_bytes(b"\x01" * size)


def test_constructors_reject_foreign_key_objects() -> None:
    with pytest.raises(InvalidKey):
        SigningKey(x25519.X25519PrivateKey.generate())  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        VerifyKey(x25519.X25519PrivateKey.generate().public_key())  # type: ignore[arg-type]


def _jwk(**changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    for name, value in changes.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return jwk


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_a_jwk_may_name_the_new_or_the_deprecated_algorithm(alg: str) -> None:
    # RFC 9864's Ed25519, and RFC 8037's EdDSA that older members still publish.
    assert VerifyKey.from_jwk(_jwk(alg=alg)).kid == RFC8037_THUMBPRINT


BAD_JWKS: dict[str, Any] = {
    "private-d": _jwk(d=RFC8037_D),
    "private-d-with-kid": _jwk(d=RFC8037_D, kid=RFC8037_THUMBPRINT),
    "kty-missing": _jwk(kty=None),
    "kty-rsa": _jwk(kty="RSA"),
    "kty-ec": _jwk(kty="EC"),
    "kty-oct": _jwk(kty="oct", k=RFC8037_X),
    "kty-lowercase": _jwk(kty="okp"),
    "crv-missing": _jwk(crv=None),
    "crv-x25519": _jwk(crv="X25519"),
    "crv-ed448": _jwk(crv="Ed448"),
    "x-missing": _jwk(x=None),
    "x-not-string": _jwk(x=12345),
    "x-31-bytes": _jwk(x=b64(b"\x01" * 31)),
    "x-33-bytes": _jwk(x=b64(b"\x01" * 33)),
    "x-padded": _jwk(x=RFC8037_X + "="),
    "x-standard-base64": _jwk(x=base64.b64encode(unb64(RFC8037_X)).decode()),
    "x-noncanonical-bits": _jwk(x=RFC8037_X[:-1] + "p"),
    "kid-mismatch": _jwk(kid="some-other-kid"),
    "kid-not-string": _jwk(kid=7),
    "alg-rs256": _jwk(alg="RS256"),
    "alg-hs256": _jwk(alg="HS256"),
    "alg-ed448": _jwk(alg="Ed448"),
    "use-enc": _jwk(use="enc"),
    "key-ops-sign": _jwk(key_ops=["sign"]),
    "key-ops-not-list": _jwk(key_ops="verify"),
    "not-a-dict": [RFC8037_X],
}


@pytest.mark.parametrize("case", BAD_JWKS)
def test_from_jwk_rejects(case: str) -> None:
    with pytest.raises(InvalidKey):
        VerifyKey.from_jwk(BAD_JWKS[case])


def test_from_jwk_rejects_private_jwk_exported_by_joserfc() -> None:
    # A realistic mistake: publishing the full private JWK instead of the public one.
    from joserfc.jwk import OKPKey

    private_jwk = OKPKey.generate_key("Ed25519").as_dict(private=True)
    assert "d" in private_jwk
    with pytest.raises(InvalidKey, match="private"):
        VerifyKey.from_jwk(private_jwk)


def _good_jwk() -> dict[str, str]:
    return SigningKey.generate().public_key.to_jwk()


BAD_JWKS_DOCUMENTS: dict[str, Callable[[], Any]] = {
    "not-a-dict": lambda: [_good_jwk()],
    "keys-missing": lambda: {},
    "extra-member": lambda: {"keys": [_good_jwk()], "extra": 1},
    "keys-not-list": lambda: {"keys": _good_jwk()},
    "too-many-keys": lambda: {"keys": [_good_jwk() for _ in range(MAX_JWKS_KEYS + 1)]},
    "duplicate-key": lambda: {"keys": [_jwk(), _jwk()]},
    "duplicate-key-with-and-without-kid": lambda: {"keys": [_jwk(), _jwk(kid=RFC8037_THUMBPRINT)]},
    "one-bad-key": lambda: {"keys": [_good_jwk(), _jwk(crv="X25519")]},
    "one-private-key": lambda: {"keys": [_good_jwk(), _jwk(d=RFC8037_D)]},
}


@pytest.mark.parametrize("case", BAD_JWKS_DOCUMENTS)
def test_from_jwks_rejects(case: str) -> None:
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(BAD_JWKS_DOCUMENTS[case]())


def test_keyset_constructor_rejects_duplicates(key: SigningKey) -> None:
    with pytest.raises(InvalidKey):
        KeySet([key.public_key, VerifyKey.from_bytes(key.public_key.raw)])


def test_keyset_get_rejects_unknown_kid_opaquely(keyset: KeySet, other_key: SigningKey) -> None:
    with pytest.raises(InvalidSignature) as excinfo:
        keyset.get(other_key.kid)
    assert str(excinfo.value) == SIGNATURE_REJECTED
    assert "unknown kid" in excinfo.value.reason


@pytest.mark.parametrize("kid", [None, 1, ["kid"], ""])
def test_keyset_rejects_non_string_or_empty_kid(keyset: KeySet, kid: Any) -> None:
    assert kid not in keyset
    with pytest.raises(InvalidSignature):
        keyset.get(kid)


# --- weak keys (security review M1) ------------------------------------------------

_P = 2**255 - 19
_SMALL_ORDER_Y = [
    0, 1, _P - 1,
    0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
    0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
]


@pytest.mark.parametrize("sign", [0, 1])
@pytest.mark.parametrize("y", _SMALL_ORDER_Y)
def test_small_order_public_keys_are_refused(y: int, sign: int) -> None:
    raw = (y | (sign << 255)).to_bytes(32, "little")
    with pytest.raises(InvalidKey):
        VerifyKey.from_bytes(raw)


def test_identity_key_cannot_carry_a_universal_signature_through_jwks() -> None:
    import base64

    identity = (1).to_bytes(32, "little")
    x = base64.urlsafe_b64encode(identity).rstrip(b"=").decode()
    with pytest.raises(InvalidKey):
        KeySet.from_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]})


@pytest.mark.parametrize("y", [_P, _P + 1, 2**255 - 1])
def test_non_canonical_encodings_are_refused(y: int) -> None:
    with pytest.raises(InvalidKey):
        VerifyKey.from_bytes(y.to_bytes(32, "little"))
