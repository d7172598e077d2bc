"""Client assertions (RFC 7523) and access tokens (RFC 9068): every check, both ways."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from crypto.errors import TOKEN_REJECTED, InvalidSignature
from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from crypto.tokens import (
    ACCESS_TOKEN_TYP,
    CLIENT_ASSERTION_TYP,
    MAX_ACCESS_TOKEN_TTL,
    AccessClaims,
    issue_access_token,
    make_client_assertion,
    new_jti,
    unverified_claims,
    verify_access_token,
    verify_client_assertion,
)

NOW = 1_700_000_000
CLIENT = "ru-lotl"
ENDPOINT = "https://registry.example/oauth/token"
ISSUER = "https://registry.example"
AUDIENCE = "cn-ntlnp"


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(token: str) -> dict[str, Any]:
    import base64

    segment = token.split(".")[0]
    padded = segment + "=" * (-len(segment) % 4)
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return value


def verify_assertion(token: str, keys: KeySet, **options: Any) -> dict[str, Any]:
    """verify_client_assertion with this module's defaults."""
    options = {"client_id": CLIENT, "token_endpoint": ENDPOINT, "now": NOW, **options}
    return verify_client_assertion(token, keys, **options)


def verify_token(token: str, keys: KeySet, **options: Any) -> AccessClaims:
    """verify_access_token with this module's defaults."""
    options = {"audience": AUDIENCE, "issuer": ISSUER, "now": NOW, **options}
    return verify_access_token(token, keys, **options)


def assertion_claims(**changes: Any) -> dict[str, Any]:
    """Valid assertion claims; a change to None deletes the claim."""
    base: dict[str, Any] = {"iss": CLIENT, "sub": CLIENT, "aud": ENDPOINT, "iat": NOW,
                            "exp": NOW + 60, "jti": "a6Yt0-PgYq1cQ2ia8g3ZbA"}
    return _apply(base, changes)


def token_claims(**changes: Any) -> dict[str, Any]:
    """Valid access-token claims; a change to None deletes the claim."""
    base: dict[str, Any] = {"iss": ISSUER, "sub": CLIENT, "client_id": CLIENT, "aud": AUDIENCE,
                            "scope": "node:read", "jti": "t1", "iat": NOW, "exp": NOW + 300}
    return _apply(base, changes)


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for name, value in changes.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def sign(claims: dict[str, Any], key: SigningKey, typ: str) -> str:
    """Sign claims as they are (encode_jwt would refuse some of the bad ones)."""
    return sign_compact(json.dumps(claims).encode(), key, typ=typ)


# --- client assertions: positive ---------------------------------------------


def test_assertion_round_trip(key: SigningKey, keyset: KeySet) -> None:
    token = make_client_assertion(key, client_id=CLIENT, token_endpoint=ENDPOINT, now=NOW)
    claims = verify_assertion(token, keyset)
    assert {k: claims[k] for k in ("iss", "sub", "aud", "iat", "exp")} == {
        "iss": CLIENT, "sub": CLIENT, "aud": ENDPOINT, "iat": NOW, "exp": NOW + 60}
    assert len(claims["jti"]) == 22  # 128 random bits, base64url
    assert _header(token) == {"alg": "Ed25519", "kid": key.kid, "typ": CLIENT_ASSERTION_TYP}


def test_assertion_jti_is_fresh_each_time(key: SigningKey, keyset: KeySet) -> None:
    jtis = {verify_assertion(make_client_assertion(key, client_id=CLIENT, token_endpoint=ENDPOINT,
                                                   now=NOW), keyset)["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_assertion_with_given_jti_and_lifetime(key: SigningKey, keyset: KeySet) -> None:
    token = make_client_assertion(key, client_id=CLIENT, token_endpoint=ENDPOINT, now=NOW,
                                  lifetime=300, jti="mine")
    claims = verify_assertion(token, keyset)
    assert (claims["jti"], claims["exp"]) == ("mine", NOW + 300)


def test_assertion_with_nbf_in_the_past(key: SigningKey, keyset: KeySet) -> None:
    token = sign(assertion_claims(nbf=NOW - 5), key, CLIENT_ASSERTION_TYP)
    assert verify_assertion(token, keyset)["nbf"] == NOW - 5


def test_assertion_rotation_overlap(key: SigningKey, other_key: SigningKey) -> None:
    keys = KeySet([key.public_key, other_key.public_key])
    for signer in (key, other_key):
        token = make_client_assertion(signer, client_id=CLIENT, token_endpoint=ENDPOINT, now=NOW)
        assert verify_assertion(token, keys)["sub"] == CLIENT


@pytest.mark.parametrize(("options", "error"), [
    ({"lifetime": 0}, ValueError), ({"lifetime": -5}, ValueError),
    ({"client_id": ""}, ValueError), ({"token_endpoint": ""}, ValueError),
])
def test_make_assertion_refuses_bad_arguments(key: SigningKey, options: dict[str, Any],
                                              error: type[Exception]) -> None:
    arguments: dict[str, Any] = {"client_id": CLIENT, "token_endpoint": ENDPOINT, "now": NOW,
                                 **options}
    with pytest.raises(error):
        make_client_assertion(key, **arguments)


# --- client assertions: negative -------------------------------------------------

Recipe = Callable[[SigningKey, SigningKey, Any], str]

BAD_ASSERTIONS: dict[str, tuple[Recipe, dict[str, Any], str]] = {
    # name: (token recipe (key, attacker key, forge), verify options, reason fragment)
    "alg-none": (lambda k, a, f: f.unsigned(
        {"alg": "none", "typ": CLIENT_ASSERTION_TYP}, json.dumps(assertion_claims()).encode()),
        {}, "alg 'none' is not allowed"),
    "hs256-with-public-key-bytes": (lambda k, a, f: f.hs256(
        {"alg": "HS256", "kid": k.kid, "typ": CLIENT_ASSERTION_TYP},
        json.dumps(assertion_claims()).encode(), k.public_key.raw),
        {}, "alg 'HS256' is not allowed"),
    "signed-by-another-key-same-kid": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": CLIENT_ASSERTION_TYP},
        json.dumps(assertion_claims()).encode(), a), {}, "BadSignatureError"),
    "signed-by-untrusted-key": (lambda k, a, f: sign(assertion_claims(), a, CLIENT_ASSERTION_TYP),
                                {}, "unknown kid"),
    "kid-path-traversal": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": "../../etc/passwd", "typ": CLIENT_ASSERTION_TYP},
        json.dumps(assertion_claims()).encode(), k), {}, "unknown kid"),
    "kid-sql": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": "' OR 1=1 --", "typ": CLIENT_ASSERTION_TYP},
        json.dumps(assertion_claims()).encode(), k), {}, "unknown kid"),
    "kid-missing": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "typ": CLIENT_ASSERTION_TYP},
        json.dumps(assertion_claims()).encode(), k), {}, "kid missing"),
    "injected-jwk": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": a.kid, "typ": CLIENT_ASSERTION_TYP, "jwk": a.public_key.to_jwk()},
        json.dumps(assertion_claims()).encode(), a), {}, "forbidden key-bearing header"),
    "injected-jku": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": CLIENT_ASSERTION_TYP,
         "jku": "https://evil.example/jwks.json"},
        json.dumps(assertion_claims()).encode(), k), {}, "forbidden key-bearing header"),
    "injected-x5u": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": CLIENT_ASSERTION_TYP,
         "x5u": "https://evil.example/cert.pem"},
        json.dumps(assertion_claims()).encode(), k), {}, "forbidden key-bearing header"),
    "unknown-crit": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": CLIENT_ASSERTION_TYP, "crit": ["exp-ext"],
         "exp-ext": 1}, json.dumps(assertion_claims()).encode(), k), {}, "unsupported header"),
    "oversize": (lambda k, a, f: sign(assertion_claims(pad="x" * 9000), k, CLIENT_ASSERTION_TYP),
                 {}, "larger than 8192 bytes"),
    "typ-jwt": (lambda k, a, f: sign(assertion_claims(), k, "JWT"), {}, "typ"),
    "typ-missing": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid}, json.dumps(assertion_claims()).encode(), k), {}, "typ"),
    "access-token-as-assertion": (lambda k, a, f: sign(assertion_claims(), k, ACCESS_TOKEN_TYP),
                                  {}, "typ"),
    "wrong-aud": (lambda k, a, f: sign(assertion_claims(aud="https://other.example/oauth/token"),
                                       k, CLIENT_ASSERTION_TYP), {}, "does not include"),
    "aud-is-issuer-not-endpoint": (lambda k, a, f: sign(assertion_claims(aud=ISSUER), k,
                                                        CLIENT_ASSERTION_TYP),
                                   {}, "does not include"),
    "aud-list-with-endpoint": (lambda k, a, f: sign(
        assertion_claims(aud=[ENDPOINT, "https://other.example"]), k, CLIENT_ASSERTION_TYP),
        {}, "single string"),
    "missing-aud": (lambda k, a, f: sign(assertion_claims(aud=None), k, CLIENT_ASSERTION_TYP),
                    {}, "missing required claim(s) ['aud']"),
    "expired": (lambda k, a, f: sign(assertion_claims(iat=NOW - 120, exp=NOW - 31), k,
                                     CLIENT_ASSERTION_TYP), {}, "expired"),
    "not-yet-valid": (lambda k, a, f: sign(assertion_claims(nbf=NOW + 31), k,
                                           CLIENT_ASSERTION_TYP), {}, "not yet valid"),
    "iat-in-future": (lambda k, a, f: sign(assertion_claims(iat=NOW + 31, exp=NOW + 90), k,
                                           CLIENT_ASSERTION_TYP), {}, "issued in the future"),
    "lifetime-too-long": (lambda k, a, f: sign(assertion_claims(exp=NOW + 301), k,
                                               CLIENT_ASSERTION_TYP), {}, "lifetime"),
    "lifetime-over-custom-max": (lambda k, a, f: sign(assertion_claims(exp=NOW + 61), k,
                                                      CLIENT_ASSERTION_TYP),
                                 {"max_lifetime": 60}, "lifetime"),
    "missing-exp": (lambda k, a, f: sign(assertion_claims(exp=None), k, CLIENT_ASSERTION_TYP),
                    {}, "missing required"),
    "missing-iat": (lambda k, a, f: sign(assertion_claims(iat=None), k, CLIENT_ASSERTION_TYP),
                    {}, "missing required"),
    "missing-jti": (lambda k, a, f: sign(assertion_claims(jti=None), k, CLIENT_ASSERTION_TYP),
                    {}, "missing required"),
    "empty-jti": (lambda k, a, f: sign(assertion_claims(jti=""), k, CLIENT_ASSERTION_TYP),
                  {}, "jti must be 1..128"),
    "jti-too-long": (lambda k, a, f: sign(assertion_claims(jti="j" * 129), k,
                                          CLIENT_ASSERTION_TYP), {}, "jti must be 1..128"),
    "jti-not-string": (lambda k, a, f: sign(assertion_claims(jti=7), k, CLIENT_ASSERTION_TYP),
                       {}, "jti must be a string"),
    "iss-other-client": (lambda k, a, f: sign(assertion_claims(iss="cn-ntlnp"), k,
                                              CLIENT_ASSERTION_TYP), {}, "iss"),
    "sub-other-client": (lambda k, a, f: sign(assertion_claims(sub="cn-ntlnp"), k,
                                              CLIENT_ASSERTION_TYP), {}, "sub"),
    "missing-sub": (lambda k, a, f: sign(assertion_claims(sub=None), k, CLIENT_ASSERTION_TYP),
                    {}, "missing required"),
    "for-another-client": (lambda k, a, f: make_client_assertion(
        k, client_id="cn-ntlnp", token_endpoint=ENDPOINT, now=NOW), {}, "iss"),
    "tampered-payload": (lambda k, a, f: ".".join([
        make_client_assertion(k, client_id=CLIENT, token_endpoint=ENDPOINT, now=NOW).split(".")[0],
        _b64(json.dumps(assertion_claims(exp=NOW + 10**6)).encode()),
        make_client_assertion(k, client_id=CLIENT, token_endpoint=ENDPOINT, now=NOW).split(".")[2],
    ]), {}, "BadSignatureError"),
}


@pytest.mark.parametrize("case", BAD_ASSERTIONS)
def test_rejects_bad_assertion(case: str, key: SigningKey, attacker_key: SigningKey,
                               forge: Any, keyset: KeySet) -> None:
    recipe, options, reason = BAD_ASSERTIONS[case]
    with pytest.raises(InvalidSignature) as excinfo:
        verify_assertion(recipe(key, attacker_key, forge), keyset, **options)
    assert str(excinfo.value) == TOKEN_REJECTED
    assert reason in excinfo.value.reason


def test_assertion_verified_for_another_endpoint_is_refused(key: SigningKey,
                                                            keyset: KeySet) -> None:
    token = make_client_assertion(key, client_id=CLIENT, token_endpoint=ENDPOINT, now=NOW)
    with pytest.raises(InvalidSignature) as excinfo:
        verify_assertion(token, keyset, token_endpoint="https://other.example/oauth/token")
    assert "does not include" in excinfo.value.reason


# --- access tokens: positive ---------------------------------------------------


def issue(key: SigningKey, **options: Any) -> str:
    """issue_access_token with this module's defaults."""
    options = {"issuer": ISSUER, "subject": CLIENT, "audience": AUDIENCE, "scope": "node:read",
               "now": NOW, "ttl": 300, "jti": "t1", **options}
    return issue_access_token(key, **options)


def test_access_token_round_trip(key: SigningKey, keyset: KeySet) -> None:
    token = issue(key, scope="node:read agreement:42", extra={"agreement": "ag-42"})
    assert _header(token) == {"alg": "Ed25519", "kid": key.kid, "typ": ACCESS_TOKEN_TYP}
    assert verify_token(token, keyset) == AccessClaims(
        subject=CLIENT, client_id=CLIENT, audience=AUDIENCE,
        scope=frozenset({"node:read", "agreement:42"}), jti="t1", issued_at=NOW,
        expires_at=NOW + 300, extra={"agreement": "ag-42"})


def test_access_token_claims_are_rfc_9068(key: SigningKey) -> None:
    claims = unverified_claims(issue(key))
    assert claims == {"iss": ISSUER, "sub": CLIENT, "client_id": CLIENT, "aud": AUDIENCE,
                      "scope": "node:read", "jti": "t1", "iat": NOW, "exp": NOW + 300}


def test_access_token_within_leeway_after_expiry(key: SigningKey, keyset: KeySet) -> None:
    token = issue(key, ttl=60)
    assert verify_token(token, keyset, now=NOW + 60 + 29).jti == "t1"
    with pytest.raises(InvalidSignature):
        verify_token(token, keyset, now=NOW + 60 + 29, leeway=0)


@pytest.mark.parametrize("options", [
    {"ttl": MAX_ACCESS_TOKEN_TTL + 1}, {"ttl": 0}, {"ttl": -1},
    {"scope": ""}, {"scope": "a  b"}, {"scope": 'say"hi'}, {"scope": "back\\slash"},
    {"scope": " node:read"}, {"extra": {"aud": "registry"}}, {"extra": {"exp": NOW + 10**6}},
    {"extra": {"client_id": "x"}}, {"extra": {"nbf": 0}},
    {"issuer": ""}, {"subject": ""}, {"audience": ""}, {"jti": ""},
])
def test_issue_refuses_bad_arguments(key: SigningKey, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        issue(key, **options)


# --- access tokens: negative -----------------------------------------------------

BAD_ACCESS_TOKENS: dict[str, tuple[Recipe, dict[str, Any], str]] = {
    "alg-none": (lambda k, a, f: f.unsigned(
        {"alg": "none", "typ": ACCESS_TOKEN_TYP}, json.dumps(token_claims()).encode()),
        {}, "alg 'none' is not allowed"),
    "hs256-with-public-key-bytes": (lambda k, a, f: f.hs256(
        {"alg": "HS256", "kid": k.kid, "typ": ACCESS_TOKEN_TYP},
        json.dumps(token_claims()).encode(), k.public_key.raw), {}, "alg 'HS256' is not allowed"),
    "forged-by-member-key": (lambda k, a, f: issue(a), {}, "unknown kid"),
    "signed-by-another-key-same-kid": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": ACCESS_TOKEN_TYP},
        json.dumps(token_claims()).encode(), a), {}, "BadSignatureError"),
    "injected-jwk": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": a.kid, "typ": ACCESS_TOKEN_TYP, "jwk": a.public_key.to_jwk()},
        json.dumps(token_claims()).encode(), a), {}, "forbidden key-bearing header"),
    "injected-jku": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": ACCESS_TOKEN_TYP, "jku": "https://evil.example/k"},
        json.dumps(token_claims()).encode(), k), {}, "forbidden key-bearing header"),
    "injected-x5u": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": ACCESS_TOKEN_TYP, "x5u": "https://evil.example/c"},
        json.dumps(token_claims()).encode(), k), {}, "forbidden key-bearing header"),
    "unknown-crit": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": k.kid, "typ": ACCESS_TOKEN_TYP, "crit": ["x"], "x": 1},
        json.dumps(token_claims()).encode(), k), {}, "unsupported header"),
    "kid-path-traversal": (lambda k, a, f: f.ed25519(
        {"alg": "EdDSA", "kid": "../../etc/passwd", "typ": ACCESS_TOKEN_TYP},
        json.dumps(token_claims()).encode(), k), {}, "unknown kid"),
    "oversize": (lambda k, a, f: issue(k, extra={"pad": "x" * 9000}), {},
                 "larger than 8192 bytes"),
    "typ-jwt": (lambda k, a, f: sign(token_claims(), k, "JWT"), {}, "typ"),
    "assertion-as-access-token": (lambda k, a, f: sign(token_claims(), k, CLIENT_ASSERTION_TYP),
                                  {}, "typ"),
    "wrong-audience": (lambda k, a, f: issue(k, audience="jp-kushiro"), {}, "does not include"),
    "presented-at-another-member": (lambda k, a, f: issue(k), {"audience": "mn-dornod"},
                                    "does not include"),
    "aud-list-with-us": (lambda k, a, f: sign(token_claims(aud=[AUDIENCE, "registry"]), k,
                                              ACCESS_TOKEN_TYP), {}, "single string"),
    "wrong-issuer": (lambda k, a, f: issue(k, issuer="https://evil.example"), {}, "iss"),
    "expired": (lambda k, a, f: issue(k, now=NOW - 400), {}, "expired"),
    "not-yet-valid": (lambda k, a, f: sign(token_claims(nbf=NOW + 31), k, ACCESS_TOKEN_TYP),
                      {}, "not yet valid"),
    "iat-in-future": (lambda k, a, f: issue(k, now=NOW + 31), {}, "issued in the future"),
    "lifetime-too-long": (lambda k, a, f: sign(token_claims(exp=NOW + 301), k, ACCESS_TOKEN_TYP),
                          {}, "lifetime"),
    "missing-client-id": (lambda k, a, f: sign(token_claims(client_id=None), k,
                                               ACCESS_TOKEN_TYP), {}, "missing required"),
    "missing-scope": (lambda k, a, f: sign(token_claims(scope=None), k, ACCESS_TOKEN_TYP),
                      {}, "missing required"),
    "missing-jti": (lambda k, a, f: sign(token_claims(jti=None), k, ACCESS_TOKEN_TYP),
                    {}, "missing required"),
    "missing-sub": (lambda k, a, f: sign(token_claims(sub=None), k, ACCESS_TOKEN_TYP),
                    {}, "missing required"),
    "client-id-not-sub": (lambda k, a, f: sign(token_claims(client_id="cn-ntlnp"), k,
                                               ACCESS_TOKEN_TYP), {}, "client_id"),
    "scope-not-string": (lambda k, a, f: sign(token_claims(scope=["node:read"]), k,
                                              ACCESS_TOKEN_TYP), {}, "scope"),
    "scope-empty": (lambda k, a, f: sign(token_claims(scope=""), k, ACCESS_TOKEN_TYP),
                    {}, "scope"),
    "scope-double-space": (lambda k, a, f: sign(token_claims(scope="a  b"), k, ACCESS_TOKEN_TYP),
                           {}, "scope"),
    "scope-with-quote": (lambda k, a, f: sign(token_claims(scope='a"b'), k, ACCESS_TOKEN_TYP),
                         {}, "scope"),
}


@pytest.mark.parametrize("case", BAD_ACCESS_TOKENS)
def test_rejects_bad_access_token(case: str, key: SigningKey, attacker_key: SigningKey,
                                  forge: Any, keyset: KeySet) -> None:
    recipe, options, reason = BAD_ACCESS_TOKENS[case]
    with pytest.raises(InvalidSignature) as excinfo:
        verify_token(recipe(key, attacker_key, forge), keyset, **options)
    assert str(excinfo.value) == TOKEN_REJECTED
    assert reason in excinfo.value.reason


def test_token_for_one_member_is_refused_by_another(key: SigningKey, keyset: KeySet) -> None:
    token = issue(key, audience="ru-lotl")
    assert verify_token(token, keyset, audience="ru-lotl").audience == "ru-lotl"
    with pytest.raises(InvalidSignature):
        verify_token(token, keyset, audience="cn-ntlnp")
    with pytest.raises(InvalidSignature):
        verify_token(token, keyset, audience="registry")


# --- unverified_claims -------------------------------------------------------------


def test_unverified_claims_reads_without_checking(attacker_key: SigningKey) -> None:
    token = make_client_assertion(attacker_key, client_id=CLIENT, token_endpoint=ENDPOINT, now=0)
    assert unverified_claims(token)["sub"] == CLIENT


@pytest.mark.parametrize("token", [
    "a.b", "a.b.c.d", "e30." + "x" * 9000 + ".sig", "e30.bm90IGpzb24.x", "e30.WzEsMl0.x",
    "e30.e30=.x", "",
])
def test_unverified_claims_refuses_malformed(token: str) -> None:
    with pytest.raises(InvalidSignature) as excinfo:
        unverified_claims(token)
    assert str(excinfo.value) == TOKEN_REJECTED


def test_unverified_claims_refuses_non_string() -> None:
    with pytest.raises(InvalidSignature):
        unverified_claims(b"e30.e30.x")  # type: ignore[arg-type]


def test_new_jti_is_128_random_bits() -> None:
    values = {new_jti() for _ in range(1000)}
    assert len(values) == 1000
    assert all(len(v) == 22 for v in values)
