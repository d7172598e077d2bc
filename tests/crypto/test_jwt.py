"""JWT encoding and explicit claim validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import TOKEN_REJECTED, InvalidSignature
from crypto.jws import sign_compact
from crypto.jwt import decode_jwt, encode_jwt
from crypto.keys import KeySet, SigningKey

NOW = 1_700_000_000
AUDIENCE = "corridor-node"
ISSUER = "https://registry.example"

_HYPOTHESIS_KEY = SigningKey.generate()
_HYPOTHESIS_KEYS = KeySet([_HYPOTHESIS_KEY.public_key])


def claims(**changes: Any) -> dict[str, Any]:
    """A valid claims set, with changes (None deletes a claim)."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": NOW + 300,
        "iat": NOW,
        "jti": "5f0c1a",
    }
    for name, value in changes.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def decode(token: str | bytes, keys: KeySet, **options: Any) -> dict[str, Any]:
    """decode_jwt with this module's defaults."""
    options.setdefault("now", NOW)
    options.setdefault("audience", AUDIENCE)
    options.setdefault("typ", "JWT")
    return decode_jwt(token, keys, **options)


# --- positive -------------------------------------------------------------


def test_round_trip(key: SigningKey, keyset: KeySet) -> None:
    original = claims(scope=["read"], name="Zoë")
    token = encode_jwt(original, key)
    assert decode(token, keyset, issuer=ISSUER, typ="JWT", max_lifetime=300) == original


def test_header_has_typ_jwt(key: SigningKey) -> None:
    header_segment = encode_jwt(claims(), key).split(".")[0]
    header = json.loads(_unb64(header_segment))
    assert header == {"alg": "Ed25519", "kid": key.kid, "typ": "JWT"}


@pytest.mark.parametrize("typ", ["jwt", "application/jwt"])
def test_typ_check_is_case_insensitive(key: SigningKey, keyset: KeySet, typ: str) -> None:
    assert decode(encode_jwt(claims(), key), keyset, typ=typ)["sub"] == "alice"


def test_aud_list_containing_us(key: SigningKey, keyset: KeySet) -> None:
    token = encode_jwt(claims(aud=["other", AUDIENCE]), key)
    assert decode(token, keyset)["aud"] == ["other", AUDIENCE]


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": NOW - 29, "iat": NOW - 300},  # expired 29s ago, within the 30s leeway
        {"nbf": NOW + 30},
        {"iat": NOW + 30, "exp": NOW + 330},
        {"nbf": NOW - 100},
    ],
)
def test_times_within_leeway(key: SigningKey, keyset: KeySet, changes: dict[str, int]) -> None:
    assert decode(encode_jwt(claims(**changes), key), keyset)["sub"] == "alice"


def test_lifetime_exactly_at_limit(key: SigningKey, keyset: KeySet) -> None:
    token = encode_jwt(claims(exp=NOW + 60), key)
    assert decode(token, keyset, max_lifetime=60)["exp"] == NOW + 60


def test_custom_required_claims(key: SigningKey, keyset: KeySet) -> None:
    token = encode_jwt({"aud": AUDIENCE, "exp": NOW + 10}, key)
    assert decode(token, keyset, required=("aud", "exp")) == {"aud": AUDIENCE, "exp": NOW + 10}


def test_key_rotation(key: SigningKey, other_key: SigningKey) -> None:
    keys = KeySet([key.public_key, other_key.public_key])
    assert decode(encode_jwt(claims(sub="a"), key), keys)["sub"] == "a"
    assert decode(encode_jwt(claims(sub="b"), other_key), keys)["sub"] == "b"


@given(st.text(), st.dictionaries(st.text(min_size=4), st.integers() | st.text(), max_size=4))
def test_arbitrary_claims_round_trip(subject: str, extra: dict[str, Any]) -> None:
    original = {**extra, **claims(sub=subject)}
    token = encode_jwt(original, _HYPOTHESIS_KEY)
    assert decode(token, _HYPOTHESIS_KEYS) == original


# --- negative: claims ---------------------------------------------------------

BAD_CLAIMS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # name: (claims, decode options, reason fragment)
    "expired": (claims(exp=NOW - 31, iat=NOW - 300), {}, "expired"),
    "expired-at-leeway-boundary": (claims(exp=NOW - 30, iat=NOW - 300), {}, "expired"),
    "expired-no-leeway": (claims(exp=NOW, iat=NOW - 300), {"leeway": 0}, "expired"),
    "not-yet-valid": (claims(nbf=NOW + 31), {}, "not yet valid"),
    "iat-in-future": (claims(iat=NOW + 31, exp=NOW + 400), {}, "issued in the future"),
    "exp-before-iat": (claims(iat=NOW, exp=NOW - 1), {"leeway": 60}, "before iat"),
    "wrong-aud": (claims(aud="someone-else"), {}, "does not include"),
    "aud-list-without-us": (claims(aud=["a", "b"]), {}, "does not include"),
    "aud-prefix-of-us": (claims(aud="corridor"), {}, "does not include"),
    "aud-empty-list": (claims(aud=[]), {}, "aud list"),
    "aud-list-non-string": (claims(aud=[AUDIENCE, 1]), {}, "aud list"),
    "aud-int": (claims(aud=7), {}, "aud must be"),
    "aud-object": (claims(aud={AUDIENCE: True}), {}, "aud must be"),
    "aud-missing-not-required": (claims(aud=None), {"required": ()}, "aud missing"),
    "exp-string": (claims(exp=str(NOW + 300)), {}, "exp must be an integer"),
    "exp-float": (claims(exp=NOW + 300.5), {}, "exp must be an integer"),
    "exp-bool": (claims(exp=True), {}, "exp must be an integer"),
    "exp-null": (claims() | {"exp": None}, {}, "exp must be an integer"),
    "iat-string": (claims(iat=str(NOW)), {}, "iat must be an integer"),
    "nbf-string": (claims(nbf="0"), {}, "nbf must be an integer"),
    "iss-int": (claims(iss=1), {}, "iss must be a string"),
    "sub-list": (claims(sub=["alice"]), {}, "sub must be a string"),
    "jti-int": (claims(jti=5), {}, "jti must be a string"),
    "wrong-issuer": (claims(iss="https://evil.example"), {"issuer": ISSUER}, "iss"),
    "issuer-missing": (claims(iss=None), {"issuer": ISSUER, "required": ()}, "iss"),
    "lifetime-too-long": (claims(exp=NOW + 301), {"max_lifetime": 300}, "lifetime"),
    "lifetime-without-iat": (
        claims(iat=None),
        {"max_lifetime": 300, "required": ("exp",)},
        "needed to bound",
    ),
    "missing-iss": (claims(iss=None), {}, "missing required"),
    "missing-sub": (claims(sub=None), {}, "missing required"),
    "missing-aud": (claims(aud=None), {}, "missing required"),
    "missing-exp": (claims(exp=None), {}, "missing required"),
    "missing-iat": (claims(iat=None), {}, "missing required"),
    "missing-jti": (claims(jti=None), {}, "missing required"),
    "missing-custom-required": (claims(), {"required": ("scope",)}, "missing required"),
    "wrong-typ": (claims(), {"typ": "at+jwt"}, "typ"),
}


def _sign_claims_unchecked(value: dict[str, Any], key: SigningKey) -> str:
    # encode_jwt refuses mistyped claims, so sign the JSON directly.
    return sign_compact(json.dumps(value).encode(), key, typ="JWT")


@pytest.mark.parametrize("case", BAD_CLAIMS)
def test_rejects_bad_claims(case: str, key: SigningKey, keyset: KeySet) -> None:
    value, options, reason = BAD_CLAIMS[case]
    token = _sign_claims_unchecked(value, key)
    with pytest.raises(InvalidSignature) as excinfo:
        decode(token, keyset, **options)
    assert str(excinfo.value) == TOKEN_REJECTED
    assert reason in excinfo.value.reason


# --- negative: token ------------------------------------------------------------


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


BAD_TOKENS: dict[str, Callable[[SigningKey, SigningKey, Any], str]] = {
    "payload-not-json": lambda k, a, f: sign_compact(b"not json", k, typ="JWT"),
    "payload-not-utf8": lambda k, a, f: sign_compact(b'{"sub":"\xff"}', k, typ="JWT"),
    "payload-json-array": lambda k, a, f: sign_compact(b"[1,2]", k, typ="JWT"),
    "payload-json-string": lambda k, a, f: sign_compact(b'"claims"', k, typ="JWT"),
    "payload-json-null": lambda k, a, f: sign_compact(b"null", k, typ="JWT"),
    "payload-empty": lambda k, a, f: sign_compact(b"", k, typ="JWT"),
    "payload-nan": lambda k, a, f: sign_compact(
        json.dumps(claims(exp=NOW + 300)).replace(str(NOW + 300), "NaN").encode(), k, typ="JWT"
    ),
    "payload-duplicate-exp": lambda k, a, f: sign_compact(
        json.dumps(claims())[:-1].encode() + b',"exp":9999999999}', k, typ="JWT"
    ),
    "tampered-payload": lambda k, a, f: ".".join(
        [
            encode_jwt(claims(), k).split(".")[0],
            _b64(json.dumps(claims(exp=NOW + 10**6)).encode()),
            encode_jwt(claims(), k).split(".")[2],
        ]
    ),
    "tampered-header": lambda k, a, f: ".".join(
        [
            f.header({"alg": "EdDSA", "kid": k.kid, "typ": "JWT", "cty": "x"}),
            *encode_jwt(claims(), k).split(".")[1:],
        ]
    ),
    "wrong-key": lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": "JWT"}, json.dumps(claims()).encode(), a
    ),
    "alg-none": lambda k, a, f: f.unsigned(
        {"alg": "none", "typ": "JWT"}, json.dumps(claims()).encode()
    ),
    "hs256-public-key-secret": lambda k, a, f: f.hs256(
        {"alg": "HS256", "kid": k.kid, "typ": "JWT"},
        json.dumps(claims()).encode(),
        k.public_key.raw,
    ),
    "hs256-jwk-secret": lambda k, a, f: f.hs256(
        {"alg": "HS256", "kid": k.kid, "typ": "JWT"},
        json.dumps(claims()).encode(),
        json.dumps(k.public_key.to_jwk()).encode(),
    ),
    "rs256": lambda k, a, f: f.ed25519(
        {"alg": "RS256", "kid": k.kid}, json.dumps(claims()).encode(), k
    ),
    "unknown-kid": lambda k, a, f: encode_jwt(claims(), a),
    "injected-jwk": lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "jwk": a.public_key.to_jwk()},
        json.dumps(claims()).encode(),
        a,
    ),
    "oversize": lambda k, a, f: encode_jwt(claims(pad="x" * 9000), k),
    "malformed": lambda k, a, f: "e30.e30",
}


# The check that must catch each BAD_TOKENS case (fragment of the logged reason).
TOKEN_REASONS = {
    "payload-not-json": "payload is not JSON",
    "payload-not-utf8": "payload is not JSON",
    "payload-json-array": "not a JSON object",
    "payload-json-string": "not a JSON object",
    "payload-json-null": "not a JSON object",
    "payload-empty": "payload is not JSON",
    "payload-nan": "payload is not JSON",
    "payload-duplicate-exp": "payload is not JSON",
    "tampered-payload": "BadSignatureError",
    "tampered-header": "BadSignatureError",
    "wrong-key": "BadSignatureError",
    "alg-none": "alg 'none' is not allowed",
    "hs256-public-key-secret": "alg 'HS256' is not allowed",
    "hs256-jwk-secret": "alg 'HS256' is not allowed",
    "rs256": "alg 'RS256' is not allowed",
    "unknown-kid": "unknown kid",
    "injected-jwk": "forbidden key-bearing header",
    "oversize": "larger than 8192 bytes",
    "malformed": "2 segments",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_rejects_bad_token(
    case: str, key: SigningKey, attacker_key: SigningKey, forge: Any, keyset: KeySet
) -> None:
    token = BAD_TOKENS[case](key, attacker_key, forge)
    with pytest.raises(InvalidSignature) as excinfo:
        decode(token, keyset)
    assert str(excinfo.value) == TOKEN_REJECTED
    assert excinfo.value.args == (TOKEN_REJECTED,)
    assert TOKEN_REASONS[case] in excinfo.value.reason


def test_rejection_message_is_identical_across_failure_kinds(
    key: SigningKey, attacker_key: SigningKey, forge: Any, keyset: KeySet
) -> None:
    errors: list[InvalidSignature] = []
    for recipe in BAD_TOKENS.values():
        with pytest.raises(InvalidSignature) as excinfo:
            decode(recipe(key, attacker_key, forge), keyset)
        errors.append(excinfo.value)
    for value, options, _ in BAD_CLAIMS.values():
        with pytest.raises(InvalidSignature) as excinfo:
            decode(_sign_claims_unchecked(value, key), keyset, **options)
        errors.append(excinfo.value)
    # Signature failures and claim failures look the same from outside...
    assert {str(error) for error in errors} == {TOKEN_REJECTED}
    assert {repr(error) for error in errors} == {f"InvalidSignature({TOKEN_REJECTED!r})"}
    # ...while the log still learns what happened.
    assert len({error.reason for error in errors}) > 30


def test_signature_failure_keeps_its_reason(
    key: SigningKey, attacker_key: SigningKey, keyset: KeySet
) -> None:
    with pytest.raises(InvalidSignature) as excinfo:
        decode(encode_jwt(claims(), attacker_key), keyset)
    assert "unknown kid" in excinfo.value.reason
    assert isinstance(excinfo.value.__cause__, InvalidSignature)


def test_default_max_size_is_8k(key: SigningKey, keyset: KeySet) -> None:
    token = encode_jwt(claims(pad="x" * 5000), key)
    assert len(token) > 6000
    with pytest.raises(InvalidSignature):
        decode(token, keyset, max_size=6000)


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "soon"},
        {"iat": 1.5},
        {"nbf": False},
        {"aud": 3},
        {"aud": []},
        {"iss": None, "sub": 1},
        {"jti": ["x"]},
    ],
)
def test_encode_refuses_mistyped_claims(key: SigningKey, changes: dict[str, Any]) -> None:
    value = {**claims(), **changes}
    with pytest.raises(ValueError):
        encode_jwt(value, key)


def test_encode_refuses_nan(key: SigningKey) -> None:
    with pytest.raises(ValueError):
        encode_jwt(claims(score=float("nan")), key)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"leeway": -1}, ValueError),
        ({"audience": ""}, ValueError),
        ({"now": True}, TypeError),
        ({"now": float(NOW)}, TypeError),
    ],
)
def test_decode_refuses_bad_arguments(
    key: SigningKey, keyset: KeySet, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode(encode_jwt(claims(), key), keyset, **options)


@pytest.mark.parametrize("typ", ["at+jwt", "corridor-trust-list+jwt"])
def test_a_token_of_another_type_is_refused_even_with_valid_signature(
    key: SigningKey, keyset: KeySet, typ: str
) -> None:
    token = encode_jwt(claims(), key, typ=typ)
    with pytest.raises(InvalidSignature) as excinfo:
        decode(token, keyset, typ="JWT")
    assert "does not match" in excinfo.value.reason
