"""JWS compact and detached serialization, Ed25519 only (alg Ed25519; EdDSA still accepted)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto._encoding import b64url_decode
from crypto.errors import SIGNATURE_REJECTED, InvalidSignature
from crypto.jws import (
    Verified,
    _registry,
    sign_compact,
    sign_detached,
    verify_compact,
    verify_detached,
)
from crypto.keys import KeySet, SigningKey

# Hypothesis builds its own keys: function-scoped fixtures don't mix with @given.
_HYPOTHESIS_KEY = SigningKey.generate()
_HYPOTHESIS_KEYS = KeySet([_HYPOTHESIS_KEY.public_key])


# --- positive -------------------------------------------------------------


def test_compact_round_trip(key: SigningKey, keyset: KeySet) -> None:
    token = sign_compact(b'{"hello":"world"}', key)
    result = verify_compact(token, keyset)
    assert result == Verified(
        header={"alg": "Ed25519", "kid": key.kid}, payload=b'{"hello":"world"}', kid=key.kid
    )


def test_bytes_token_is_accepted(key: SigningKey, keyset: KeySet) -> None:
    token = sign_compact(b"payload", key).encode()
    assert verify_compact(token, keyset).payload == b"payload"


def test_empty_payload_round_trip(key: SigningKey, keyset: KeySet) -> None:
    assert verify_compact(sign_compact(b"", key), keyset).payload == b""


def test_typ_and_extra_headers_are_protected(key: SigningKey, keyset: KeySet) -> None:
    token = sign_compact(b"x", key, typ="example+jwt", headers={"cty": "text/plain", "n": 1})
    header = verify_compact(token, keyset, expected_typ="example+jwt").header
    assert header == {
        "alg": "Ed25519",
        "kid": key.kid,
        "typ": "example+jwt",
        "cty": "text/plain",
        "n": 1,
    }


@pytest.mark.parametrize("expected", ["JWT", "jwt", "application/jwt", "Application/JWT"])
def test_typ_comparison_follows_rfc7515(key: SigningKey, keyset: KeySet, expected: str) -> None:
    # RFC 7515 §4.1.9: case-insensitive, "application/" may be omitted.
    token = sign_compact(b"x", key, typ="JWT")
    assert verify_compact(token, keyset, expected_typ=expected).kid == key.kid


def test_key_rotation(key: SigningKey, other_key: SigningKey) -> None:
    keys = KeySet([key.public_key, other_key.public_key])
    old = sign_compact(b"old", key)
    new = sign_compact(b"new", other_key)
    assert verify_compact(old, keys) == Verified({"alg": "Ed25519", "kid": key.kid}, b"old",
                                                 key.kid)
    assert verify_compact(new, keys).kid == other_key.kid
    # Retiring the old key stops its tokens, keeps the new ones.
    rotated = KeySet([other_key.public_key])
    assert verify_compact(new, rotated).payload == b"new"
    with pytest.raises(InvalidSignature):
        verify_compact(old, rotated)


def test_detached_round_trip(key: SigningKey, keyset: KeySet) -> None:
    jws = sign_detached(b"big document", key, headers={"cty": "doc"})
    assert jws.split(".")[1] == ""
    result = verify_detached(jws, b"big document", keyset)
    assert result.payload == b"big document"
    assert result.header == {"alg": "Ed25519", "kid": key.kid, "cty": "doc"}


def test_detached_signs_the_base64url_payload(key: SigningKey, keyset: KeySet, forge: Any) -> None:
    # RFC 7515 Appendix F (not RFC 7797): re-attaching the payload gives a valid compact JWS.
    payload = b"\x00\xffdata"
    jws = sign_detached(payload, key)
    header_segment, _, signature_segment = jws.split(".")
    attached = f"{header_segment}.{forge.b64(payload)}.{signature_segment}"
    assert verify_compact(attached, keyset).payload == payload


def test_token_of_exactly_max_size_is_accepted(key: SigningKey, keyset: KeySet) -> None:
    token = sign_compact(b"x" * 100, key)
    assert verify_compact(token, keyset, max_size=len(token)).payload == b"x" * 100


def test_no_security_warning_is_emitted(ctx: Ctx, key: SigningKey, keyset: KeySet) -> None:
    # joserfc warns that "EdDSA" is deprecated (RFC 9864): we sign with Ed25519, and
    # verifying a legacy EdDSA token must not warn either.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verify_compact(sign_compact(b"x", key), keyset)
        verify_detached(sign_detached(b"x", key), b"x", keyset)
        verify_compact(ctx.forge.ed25519(ctx.header(alg="EdDSA"), b"{}", ctx.key), keyset)


def test_tokens_are_signed_with_the_fully_specified_name(key: SigningKey) -> None:
    header = json.loads(b64url_decode(sign_compact(b"x", key).split(".")[0]))
    assert header["alg"] == "Ed25519"


def test_a_peer_still_sending_eddsa_is_accepted_for_one_release(ctx: Ctx, keyset: KeySet) -> None:
    # RFC 8037's polymorphic name, from a peer that has not upgraded: same key, same signature.
    legacy = ctx.forge.ed25519(ctx.header(alg="EdDSA"), b'{"v":1}', ctx.key)
    assert verify_compact(legacy, keyset).header["alg"] == "EdDSA"
    assert verify_compact(legacy, keyset).payload == b'{"v":1}'


@given(st.binary(max_size=2048))
def test_compact_round_trips_arbitrary_bytes(payload: bytes) -> None:
    token = sign_compact(payload, _HYPOTHESIS_KEY)
    assert verify_compact(token, _HYPOTHESIS_KEYS).payload == payload


@given(st.binary(max_size=2048))
def test_detached_round_trips_arbitrary_bytes(payload: bytes) -> None:
    jws = sign_detached(payload, _HYPOTHESIS_KEY)
    assert verify_detached(jws, payload, _HYPOTHESIS_KEYS).payload == payload


# --- negative: a catalogue of bad tokens -----------------------------------


@dataclass(frozen=True)
class Ctx:
    """What a bad-token recipe may use."""

    key: SigningKey
    attacker: SigningKey
    forge: Any  # conftest.Forge

    def header(self, **extra: Any) -> dict[str, Any]:
        """A valid header for ``key``, with changes (None deletes)."""
        header: dict[str, Any] = {"alg": "Ed25519", "kid": self.key.kid}
        for name, value in extra.items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        return header

    def good(self) -> str:
        """A valid token."""
        return sign_compact(b'{"sub":"alice"}', self.key)


def _swap_segment(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def _public_key_bytes(c: Ctx) -> bytes:
    return c.key.public_key.raw


BAD_TOKENS: dict[str, Callable[[Ctx], str | bytes]] = {
    # Integrity
    "tampered-payload": lambda c: _swap_segment(c.good(), 1, c.forge.b64(b'{"sub":"admin"}')),
    "tampered-header": lambda c: _swap_segment(c.good(), 0, c.forge.header(c.header(typ="JWT"))),
    "tampered-signature": lambda c: _swap_segment(c.good(), 2, c.forge.b64(bytes(64))),
    "signature-by-other-key": lambda c: c.forge.ed25519(c.header(), b"{}", c.attacker),
    "signature-stripped": lambda c: c.good().rsplit(".", 1)[0] + ".",
    # Algorithm confusion
    "alg-none": lambda c: c.forge.unsigned({"alg": "none"}, b"{}"),
    "alg-none-with-kid": lambda c: c.forge.unsigned(c.header(alg="none"), b"{}"),
    "alg-None-case": lambda c: c.forge.unsigned(c.header(alg="None"), b"{}"),
    "alg-missing": lambda c: c.forge.ed25519(c.header(alg=None), b"{}", c.key),
    "alg-null": lambda c: c.forge.ed25519(c.header(alg=False), b"{}", c.key),
    "alg-eddsa-lowercase": lambda c: c.forge.ed25519(c.header(alg="eddsa"), b"{}", c.key),
    "alg-Ed448": lambda c: c.forge.ed25519(c.header(alg="Ed448"), b"{}", c.key),
    "alg-eddsa-lower-case": lambda c: c.forge.ed25519(c.header(alg="eddsa"), b"{}", c.key),
    "alg-list": lambda c: c.forge.ed25519(c.header(alg=["EdDSA"]), b"{}", c.key),
    "alg-RS256": lambda c: c.forge.ed25519(c.header(alg="RS256"), b"{}", c.key),
    "alg-ES256": lambda c: c.forge.ed25519(c.header(alg="ES256"), b"{}", c.key),
    "hs256-secret-public-key-bytes": lambda c: c.forge.hs256(
        c.header(alg="HS256"), b"{}", _public_key_bytes(c)
    ),
    "hs256-secret-jwk-json": lambda c: c.forge.hs256(
        c.header(alg="HS256"), b"{}", json.dumps(c.key.public_key.to_jwk()).encode()
    ),
    "hs256-secret-x-string": lambda c: c.forge.hs256(
        c.header(alg="HS256"), b"{}", c.key.public_key.to_jwk()["x"].encode()
    ),
    # Key selection
    "kid-unknown": lambda c: c.forge.ed25519(c.header(kid=c.attacker.kid), b"{}", c.attacker),
    "kid-missing": lambda c: c.forge.ed25519(c.header(kid=None), b"{}", c.key),
    "kid-not-string": lambda c: c.forge.ed25519(c.header(kid=1), b"{}", c.key),
    "kid-empty": lambda c: c.forge.ed25519(c.header(kid=""), b"{}", c.key),
    # Unsupported extensions
    "crit-unknown": lambda c: c.forge.ed25519(c.header(crit=["exp"], exp=1), b"{}", c.key),
    "crit-empty": lambda c: c.forge.ed25519(c.header(crit=[]), b"{}", c.key),
    "crit-b64-unencoded": lambda c: c.forge.ed25519(
        c.header(b64=False, crit=["b64"]), b"{}", c.key
    ),
    "b64-true": lambda c: c.forge.ed25519(c.header(b64=True), b"{}", c.key),
    # Structure
    "oversize": lambda c: sign_compact(b"x" * 70000, c.key),
    "oversize-bytes": lambda c: sign_compact(b"x" * 70000, c.key).encode(),
    "non-ascii": lambda c: c.good() + "é",
    "two-segments": lambda c: c.good().rsplit(".", 1)[0],
    "four-segments": lambda c: c.good() + ".e30",
    "five-segments-jwe-shape": lambda c: "e30.e30.e30.e30.e30",
    "empty": lambda c: "",
    "dots-only": lambda c: "..",
    "header-bad-base64": lambda c: _swap_segment(c.good(), 0, "e30*"),
    "header-padded": lambda c: _swap_segment(c.good(), 0, c.good().split(".")[0] + "=="),
    "header-standard-base64": lambda c: _swap_segment(c.good(), 0, "e+/="),
    "header-noncanonical-bits": lambda c: _swap_segment(c.good(), 0, "e31"),
    "header-impossible-length": lambda c: _swap_segment(c.good(), 0, "e30ab"),
    "header-not-json": lambda c: c.forge.ed25519(b"{alg: EdDSA}", b"{}", c.key),
    "header-not-utf8": lambda c: c.forge.ed25519(b'{"alg":"EdDSA\xff"}', b"{}", c.key),
    "header-json-array": lambda c: c.forge.ed25519(b'["EdDSA"]', b"{}", c.key),
    "header-json-string": lambda c: c.forge.ed25519(b'"EdDSA"', b"{}", c.key),
    "header-json-null": lambda c: c.forge.ed25519(b"null", b"{}", c.key),
    "header-duplicate-alg": lambda c: c.forge.ed25519(
        f'{{"alg":"none","alg":"EdDSA","kid":"{c.key.kid}"}}'.encode(), b"{}", c.key
    ),
    "header-nan": lambda c: c.forge.ed25519(
        f'{{"alg":"EdDSA","kid":"{c.key.kid}","n":NaN}}'.encode(), b"{}", c.key
    ),
    "header-deeply-nested": lambda c: c.forge.ed25519(
        f'{{"alg":"EdDSA","kid":"{c.key.kid}","n":{"[" * 5000}{"]" * 5000}}}'.encode(),
        b"{}",
        c.key,
    ),
    "payload-bad-base64": lambda c: _swap_segment(c.good(), 1, "e30!"),
    "signature-bad-base64": lambda c: _swap_segment(c.good(), 2, "AAAA*"),
    "signature-wrong-length": lambda c: _swap_segment(c.good(), 2, c.forge.b64(bytes(65))),
    "rfc8037-a4-token-without-kid": lambda c: (
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    ),
}

# A token must never bring its own key: each of these is signed by the
# attacker and embeds (or points to) the attacker's key, so a verifier that
# trusted the header would accept it.
KEY_BEARING_HEADERS: dict[str, Callable[[Ctx], Any]] = {
    "jwk": lambda c: c.attacker.public_key.to_jwk(),
    "jku": lambda c: "https://attacker.example/jwks.json",
    "x5u": lambda c: "https://attacker.example/cert.pem",
    "x5c": lambda c: ["MIIBszCCAVmgAwIBAgIU"],
    "x5t": lambda c: "aGVsbG8",
    "x5t#S256": lambda c: "aGVsbG8",
}


def _injected(name: str, kid: str) -> Callable[[Ctx], str]:
    """Recipe: attacker-signed token carrying header ``name``; ``kid`` is victim/attacker/none."""

    def recipe(c: Ctx) -> str:
        kid_value = {"victim": c.key.kid, "attacker": c.attacker.kid, "no": None}[kid]
        extra = {name: KEY_BEARING_HEADERS[name](c), "kid": kid_value}
        return c.forge.ed25519(c.header(**extra), b"{}", c.attacker)  # type: ignore[no-any-return]

    return recipe


for _name in KEY_BEARING_HEADERS:
    for _kid in ("victim", "attacker", "no"):
        BAD_TOKENS[f"injected-{_name}-{_kid}-kid"] = _injected(_name, _kid)


# Which check must catch each case (longest matching name prefix -> fragment of
# the logged reason), so that a check removed or reordered cannot hide behind
# a later one that happens to reject the token too.
EXPECTED_REASON = {
    "tampered-": "BadSignatureError",
    "signature-by-other-key": "BadSignatureError",
    "signature-stripped": "signature is 0 bytes",
    "signature-bad-base64": "signature is not base64url",
    "signature-wrong-length": "signature is 65 bytes",
    "alg-": "is not allowed",
    "hs256-": "alg 'HS256' is not allowed",
    "kid-unknown": "unknown kid",
    "kid-empty": "unknown kid",
    "kid-": "kid missing or not a string",
    "crit-": "unsupported header",
    "b64-": "unsupported header",
    "oversize": "larger than",
    "non-ascii": "not ASCII",
    "two-segments": "has 2 segments",
    "four-segments": "has 4 segments",
    "five-segments": "has 5 segments",
    "empty": "has 1 segments",
    "dots-only": "protected header is not base64url JSON",
    "header-json-": "protected header is not a JSON object",
    "header-": "protected header is not base64url JSON",
    "payload-": "payload is not base64url",
    "rfc8037-": "kid missing",
    "injected-": "forbidden key-bearing header",
}


def expected_reason(case: str) -> str:
    """The reason fragment for a BAD_TOKENS case."""
    prefix = max((p for p in EXPECTED_REASON if case.startswith(p)), key=len)
    return EXPECTED_REASON[prefix]


@pytest.fixture
def ctx(key: SigningKey, attacker_key: SigningKey, forge: Any) -> Ctx:
    """Recipe context."""
    return Ctx(key=key, attacker=attacker_key, forge=forge)


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_rejects_bad_token(case: str, ctx: Ctx, keyset: KeySet) -> None:
    token = BAD_TOKENS[case](ctx)
    with pytest.raises(InvalidSignature) as excinfo:
        verify_compact(token, keyset)
    assert str(excinfo.value) == SIGNATURE_REJECTED
    assert excinfo.value.args == (SIGNATURE_REJECTED,)
    assert expected_reason(case) in excinfo.value.reason


def test_rejection_message_is_identical_across_failure_kinds(ctx: Ctx, keyset: KeySet) -> None:
    messages, reasons = set(), set()
    for recipe in BAD_TOKENS.values():
        with pytest.raises(InvalidSignature) as excinfo:
            verify_compact(recipe(ctx), keyset)
        messages.add(str(excinfo.value))
        messages.add(repr(excinfo.value))
        reasons.add(excinfo.value.reason)
    assert messages == {SIGNATURE_REJECTED, f"InvalidSignature({SIGNATURE_REJECTED!r})"}
    assert len(reasons) > 20  # the detail is there, for the log


def test_rejects_injected_jwk_that_would_verify(ctx: Ctx, keyset: KeySet) -> None:
    # The embedded key really does verify this token; that must not matter.
    token = BAD_TOKENS["injected-jwk-victim-kid"](ctx)
    assert isinstance(token, str)
    attacker_keys = KeySet([ctx.attacker.public_key])
    header_segment, payload_segment, signature_segment = token.split(".")
    ctx.attacker.public_key.verify(
        _unb64(signature_segment), f"{header_segment}.{payload_segment}".encode()
    )
    with pytest.raises(InvalidSignature, match=SIGNATURE_REJECTED) as excinfo:
        verify_compact(token, keyset)
    assert "jwk" in excinfo.value.reason
    with pytest.raises(InvalidSignature):
        verify_compact(token, attacker_keys)


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_rejects_oversize_before_parsing(key: SigningKey, keyset: KeySet) -> None:
    token = sign_compact(b"x" * 100, key)
    with pytest.raises(InvalidSignature) as excinfo:
        verify_compact(token, keyset, max_size=len(token) - 1)
    assert "larger than" in excinfo.value.reason


@pytest.mark.parametrize("expected", ["JOSE", "at+jwt", "application/jwt/x"])
def test_rejects_wrong_typ(key: SigningKey, keyset: KeySet, expected: str) -> None:
    token = sign_compact(b"x", key, typ="JWT")
    with pytest.raises(InvalidSignature, match=SIGNATURE_REJECTED):
        verify_compact(token, keyset, expected_typ=expected)


def test_rejects_missing_typ_when_expected(key: SigningKey, keyset: KeySet) -> None:
    with pytest.raises(InvalidSignature):
        verify_compact(sign_compact(b"x", key), keyset, expected_typ="JWT")


def test_rejects_non_string_typ(ctx: Ctx, keyset: KeySet) -> None:
    token = ctx.forge.ed25519(ctx.header(typ=["JWT"]), b"{}", ctx.key)
    with pytest.raises(InvalidSignature):
        verify_compact(token, keyset, expected_typ="JWT")


@pytest.mark.parametrize("token", [None, 12, ["a.b.c"]])
def test_rejects_non_string_token(keyset: KeySet, token: Any) -> None:
    with pytest.raises(InvalidSignature):
        verify_compact(token, keyset)


def test_rejects_valid_token_with_empty_keyset(key: SigningKey) -> None:
    with pytest.raises(InvalidSignature):
        verify_compact(sign_compact(b"x", key), KeySet())


def test_detached_rejects_mismatched_payload(key: SigningKey, keyset: KeySet) -> None:
    jws = sign_detached(b"the real document", key)
    with pytest.raises(InvalidSignature, match=SIGNATURE_REJECTED):
        verify_detached(jws, b"the forged document", keyset)


def test_detached_rejects_embedded_payload(key: SigningKey, keyset: KeySet) -> None:
    # A full compact JWS signs its own payload. Accepting it in verify_detached
    # would "verify" whatever payload the caller passes alongside.
    attached = sign_compact(b"attacker's document", key)
    for payload in (b"victim document", b"attacker's document"):
        with pytest.raises(InvalidSignature) as excinfo:
            verify_detached(attached, payload, keyset)
        assert "embedded payload" in excinfo.value.reason


def test_detached_jws_is_not_a_compact_jws(key: SigningKey, keyset: KeySet) -> None:
    # Read as compact, the empty middle segment means an empty payload,
    # which the detached signature does not cover.
    with pytest.raises(InvalidSignature):
        verify_compact(sign_detached(b"document", key), keyset)


@pytest.mark.parametrize(
    "case", ["alg-RS256", "kid-unknown", "injected-jwk-victim-kid", "crit-unknown"]
)
def test_detached_applies_the_header_rules(case: str, ctx: Ctx, keyset: KeySet) -> None:
    token = BAD_TOKENS[case](ctx)
    assert isinstance(token, str)
    header_segment, _, signature_segment = token.split(".")
    with pytest.raises(InvalidSignature, match=SIGNATURE_REJECTED):
        verify_detached(f"{header_segment}..{signature_segment}", b"{}", keyset)


def test_detached_rejects_wrong_key(ctx: Ctx, keyset: KeySet) -> None:
    token = ctx.forge.ed25519(ctx.header(), b"document", ctx.attacker)
    header_segment, _, signature_segment = token.split(".")
    with pytest.raises(InvalidSignature):
        verify_detached(f"{header_segment}..{signature_segment}", b"document", keyset)


def test_detached_rejects_oversize(key: SigningKey, keyset: KeySet) -> None:
    jws = sign_detached(b"x", key)
    with pytest.raises(InvalidSignature):
        verify_detached(jws, b"x", keyset, max_size=len(jws) - 1)


@pytest.mark.parametrize(
    "headers",
    [
        {"alg": "HS256"},
        {"kid": "other"},
        {"jwk": {}},
        {"jku": "https://x"},
        {"x5c": []},
        {"crit": ["exp"]},
        {"b64": False},
    ],
)
def test_sign_refuses_headers_we_would_reject(key: SigningKey, headers: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sign_compact(b"x", key, headers=headers)


def test_sign_refuses_typ_twice(key: SigningKey) -> None:
    with pytest.raises(ValueError):
        sign_compact(b"x", key, typ="JWT", headers={"typ": "JOSE"})


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES256", "PS256", "Ed448", "ES256K"])
def test_joserfc_registry_rejects_other_algorithms(alg: str) -> None:
    # Defence in depth: even past our own alg check, joserfc cannot resolve
    # anything but Ed25519 (and EdDSA).
    from joserfc.errors import UnsupportedAlgorithmError

    with pytest.raises(UnsupportedAlgorithmError):
        _registry().get_alg(alg)
