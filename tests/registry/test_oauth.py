"""The registry's OAuth2 authorization server, over real HTTP with real keys.

Client-authentication failures all answer the same opaque ``invalid_client``
("client authentication failed"); each test also reads the registry's log to
check the refusal happened for the precise reason it provokes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from flask import Response, jsonify
from sqlalchemy import select

from crypto.errors import InvalidSignature
from crypto.keys import KeySet, SigningKey
from crypto.tokens import (
    ASSERTION_TYPE,
    make_client_assertion,
    unverified_claims,
    verify_access_token,
)
from node.exchange.oauth_client import TokenClient, TokenError
from registry.exchange.auth import current_client, require_token
from registry.models import (
    MEMBER_ACTIVE,
    MEMBER_PENDING,
    MEMBER_SUSPENDED,
    IssuedToken,
    UsedAssertion,
)

if TYPE_CHECKING:
    from tests.registry.conftest import Institution, RegistryHarness

pytestmark = pytest.mark.storage

AUTH_FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}


@pytest.fixture
def reg(registry: RegistryHarness) -> RegistryHarness:
    """The registry with test-only routes protected by require_token, and three members."""

    @require_token("catalog:read")
    def read() -> Response:
        return jsonify(client=current_client())

    @require_token("catalog:read", "catalog:write")
    def write() -> Response:
        return jsonify(client=current_client())

    # Routes must exist before the app serves its first request.
    registry.app.add_url_rule("/_test/read", "test_read", read)
    registry.app.add_url_rule("/_test/write", "test_write", write, methods=["POST"])
    for member_id in ("ru-lotl", "cn-ntlnp", "jp-kushiro"):
        registry.add_member(member_id)
    return registry


@pytest.fixture
def oauth_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The registry's OAuth and auth log records (the live server shares this process)."""
    caplog.set_level(logging.INFO, logger="registry")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, fragment: str) -> bool:
    """Whether a registry log record contains ``fragment``."""
    return any(fragment in r.getMessage() for r in caplog.records
               if r.name.startswith("registry."))


def get(reg: RegistryHarness, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return reg.http.get(path, headers=headers)


def members(reg: RegistryHarness) -> tuple[Institution, Institution, Institution]:
    return reg.members["ru-lotl"], reg.members["cn-ntlnp"], reg.members["jp-kushiro"]


# --- the happy path ---------------------------------------------------------------


def test_token_for_a_member_node_round_trip(reg: RegistryHarness) -> None:
    lotl, ntlnp, kushiro = members(reg)
    response = reg.request_token(lotl, audience="cn-ntlnp", scope="node:read")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 300, "node:read")

    # The provider node verifies it offline with the registry key it pinned.
    jwks = KeySet.from_jwks(reg.http.get("/.well-known/jwks.json").json())
    claims = verify_access_token(body["access_token"], jwks, audience="cn-ntlnp",
                                 issuer=reg.settings.issuer, now=reg.clock.epoch())
    assert (claims.subject, claims.client_id, claims.audience, claims.scope) == (
        "ru-lotl", "ru-lotl", "cn-ntlnp", frozenset({"node:read"}))
    assert claims.expires_at - claims.issued_at == 300

    # Recorded (claims only) in the same transaction that spent the assertion.
    with reg.sessions() as session:
        row = session.get(IssuedToken, claims.jti)
        assert row is not None
        assert (row.client_id, row.audience, row.scope, row.revoked_at) == (
            "ru-lotl", "cn-ntlnp", "node:read", None)
        assert session.scalars(select(UsedAssertion.client_id)).all() == ["ru-lotl"]

    # Introspection: active for the audience and for the client, not for a third member.
    for caller in (ntlnp, lotl):
        answer = reg.introspect(caller, body["access_token"])
        assert answer.status_code == 200
        assert answer.json() == {
            "active": True, "token_type": "Bearer", "iss": reg.settings.issuer,
            "sub": "ru-lotl", "client_id": "ru-lotl", "aud": "cn-ntlnp", "scope": "node:read",
            "jti": claims.jti, "iat": claims.issued_at, "exp": claims.expires_at}
    assert reg.introspect(kushiro, body["access_token"]).json() == {"active": False}

    # Revocation makes introspection inactive.
    revoked = reg.revoke(lotl, body["access_token"])
    assert (revoked.status_code, revoked.json()) == (200, {})
    assert reg.introspect(ntlnp, body["access_token"]).json() == {"active": False}


def test_registry_token_opens_the_api_until_revoked(reg: RegistryHarness,
                                                    oauth_log: pytest.LogCaptureFixture) -> None:
    lotl, *_ = members(reg)
    token = reg.token(lotl, "registry", "catalog:read")
    answer = get(reg, "/_test/read", token)
    assert (answer.status_code, answer.json()) == (200, {"client": "ru-lotl"})

    assert reg.revoke(lotl, token).status_code == 200
    refused = get(reg, "/_test/read", token)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"].startswith('Bearer realm="registry", '
                                                          'error="invalid_token"')
    assert refused.json()["detail"] == "the access token was revoked"
    assert logged(oauth_log, "was revoked")


def test_scopes_are_sorted_and_deduplicated(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, scope="catalog:write catalog:read catalog:write")
    assert response.json()["scope"] == "catalog:read catalog:write"
    token = response.json()["access_token"]
    assert reg.http.post("/_test/write", headers={"Authorization": f"Bearer {token}"}
                         ).json() == {"client": "ru-lotl"}


def test_metadata_rfc_8414(reg: RegistryHarness) -> None:
    response = reg.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    issuer = reg.settings.issuer
    assert meta == {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "scopes_supported": ["agreement:counts", "agreement:fetch", "agreement:overlap",
                             "agreements:read",
                             "agreements:write", "catalog:read", "catalog:write", "keys:write",
                             "links:write", "node:read",
                             "witness:submit"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["Ed25519", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ["Ed25519", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["Ed25519", "EdDSA"],
    }
    # authlib's own RFC 8414 validator agrees, member by member. It insists on a
    # non-empty response_types_supported, which a server without an
    # authorization endpoint cannot truthfully give; that one member is skipped.
    checked = AuthorizationServerMetadata(meta)
    for name in dir(checked):
        if name.startswith("validate_") and name != "validate_response_types_supported":
            getattr(checked, name)()
    # The advertised endpoints are the ones that answer.
    jwks = KeySet.from_jwks(reg.http.get(meta["jwks_uri"].removeprefix(issuer)).json())
    assert list(jwks) == [reg.key.kid]


# --- client assertions refused ---------------------------------------------------

HOSTILE: dict[str, tuple[Any, str]] = {
    # name: (recipe(reg, member, attacker) -> assertion, logged reason fragment)
    "alg-none": (lambda r, m, a: r.forge(
        {"alg": "none", "typ": "client-authentication+jwt"}, r.assertion_claims(m)),
        "alg 'none' is not allowed"),
    "hs256-with-public-key-bytes": (lambda r, m, a: r.forge(
        {"alg": "HS256", "kid": m.key.kid, "typ": "client-authentication+jwt"},
        r.assertion_claims(m), hmac_secret=m.key.public_key.raw), "alg 'HS256' is not allowed"),
    "wrong-aud": (lambda r, m, a: r.assertion(m, aud=f"{r.url}/oauth/token/other"),
                  "does not include"),
    "aud-is-the-issuer": (lambda r, m, a: r.assertion(m, aud=r.settings.issuer),
                          "does not include"),
    "missing-aud": (lambda r, m, a: r.assertion(m, aud=None), "missing required claim(s) ['aud']"),
    "expired": (lambda r, m, a: r.assertion(m, iat=r.clock.epoch() - 120,
                                            exp=r.clock.epoch() - 31), "expired"),
    "nbf-in-future": (lambda r, m, a: r.assertion(m, nbf=r.clock.epoch() + 120),
                      "not yet valid"),
    "iat-in-future": (lambda r, m, a: r.assertion(m, iat=r.clock.epoch() + 120,
                                                  exp=r.clock.epoch() + 180),
                      "issued in the future"),
    "lifetime-over-assertion-max-age": (lambda r, m, a: r.assertion(m, exp=r.clock.epoch() + 301),
                                        "lifetime 301s exceeds 300s"),
    "unknown-kid": (lambda r, m, a: r.assertion(m, header={"kid": a.kid}), "unknown kid"),
    "kid-path-traversal": (lambda r, m, a: r.assertion(m, header={"kid": "../../etc/passwd"}),
                           "unknown kid '../../etc/passwd'"),
    "kid-sql-injection": (lambda r, m, a: r.assertion(m, header={"kid": "' OR 1=1 --"}),
                          "unknown kid \"' OR 1=1 --\""),
    "injected-jwk": (lambda r, m, a: r.assertion(m, key=a, header={"jwk": a.public_key.to_jwk()}),
                     "forbidden key-bearing header(s) ['jwk']"),
    "injected-jku": (lambda r, m, a: r.assertion(m, header={"jku": "https://evil.example/k"}),
                     "forbidden key-bearing header(s) ['jku']"),
    "injected-x5u": (lambda r, m, a: r.assertion(m, header={"x5u": "https://evil.example/c"}),
                     "forbidden key-bearing header(s) ['x5u']"),
    "unknown-crit": (lambda r, m, a: r.assertion(m, header={"crit": ["ext"], "ext": 1}),
                     "unsupported header(s) ['crit']"),
    "oversize": (lambda r, m, a: r.assertion(m, pad="x" * 9000), "token missing or too large"),
    "typ-jwt": (lambda r, m, a: r.assertion(m, header={"typ": "JWT"}), "typ 'JWT'"),
    "access-token-typ": (lambda r, m, a: r.assertion(m, header={"typ": "at+jwt"}),
                         "typ 'at+jwt'"),
    "signed-by-attacker-key-with-members-kid": (
        lambda r, m, a: r.forge({"alg": "EdDSA", "kid": m.key.kid,
                                 "typ": "client-authentication+jwt"},
                                r.assertion_claims(m), key=a), "BadSignatureError"),
    "iss-is-another-member": (lambda r, m, a: r.assertion(m, iss="cn-ntlnp"), "iss 'cn-ntlnp'"),
    "unknown-member": (lambda r, m, a: r.assertion(m, iss="kr-nowhere", sub="kr-nowhere"),
                       "no such member"),
    "sub-sql-injection": (lambda r, m, a: r.assertion(m, iss="x' OR '1'='1", sub="x' OR '1'='1"),
                          "no such member"),
    "sub-not-a-string": (lambda r, m, a: r.assertion(m, sub=["ru-lotl"]), "sub missing"),
    "not-a-jwt": (lambda r, m, a: "not-a-jwt", "not a compact JWS"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_assertion_is_refused(reg: RegistryHarness, oauth_log: pytest.LogCaptureFixture,
                                      case: str) -> None:
    recipe, reason = HOSTILE[case]
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, assertion=recipe(reg, lotl, SigningKey.generate()))
    assert (response.status_code, response.json()) == (400, AUTH_FAILED)
    assert logged(oauth_log, reason), [r.getMessage() for r in oauth_log.records]
    with reg.sessions() as session:
        assert session.scalars(select(IssuedToken)).all() == []


def test_assertion_for_member_a_signed_by_member_b(reg: RegistryHarness,
                                                  oauth_log: pytest.LogCaptureFixture) -> None:
    lotl, ntlnp, _ = members(reg)
    # B's genuine key, naming B's kid, claiming to be A.
    response = reg.request_token(lotl, assertion=reg.assertion(lotl, key=ntlnp.key))
    assert (response.status_code, response.json()) == (400, AUTH_FAILED)
    assert logged(oauth_log, f"unknown kid '{ntlnp.key.kid}'")


def test_replayed_assertion_is_refused(reg: RegistryHarness,
                                       oauth_log: pytest.LogCaptureFixture) -> None:
    lotl, *_ = members(reg)
    assertion = reg.assertion(lotl)
    assert reg.request_token(lotl, assertion=assertion).status_code == 200
    again = reg.request_token(lotl, assertion=assertion)
    assert (again.status_code, again.json()) == (
        400, {"error": "invalid_client", "error_description": "client assertion already used"})
    assert logged(oauth_log, "replayed assertion jti")


def test_concurrent_replays_get_exactly_one_token(reg: RegistryHarness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    lotl, *_ = members(reg)
    assertion = reg.assertion(lotl)

    def attempt(_: int) -> int:
        with httpx.Client(base_url=reg.url, timeout=30) as http:
            return http.post("/oauth/token", data={
                "grant_type": "client_credentials", "audience": "registry",
                "scope": "catalog:read", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [200] + [400] * 7
    with reg.sessions() as session:
        assert len(session.scalars(select(IssuedToken)).all()) == 1


def test_replay_is_refused_at_every_endpoint(reg: RegistryHarness) -> None:
    lotl, ntlnp, _ = members(reg)
    token = reg.token(lotl, "cn-ntlnp", "node:read")
    assertion = reg.assertion(ntlnp)
    form = {"token": token, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}
    assert reg.post("/oauth/introspect", form).json()["active"] is True
    replay = reg.post("/oauth/introspect", form)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_client"
    assert reg.request_token(ntlnp, assertion=assertion).json()["error"] == "invalid_client"


def test_assertion_spent_by_a_refused_request_stays_spent(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    assertion = reg.assertion(lotl)
    assert reg.request_token(lotl, assertion=assertion, scope="node:read").json()["error"] == \
        "invalid_scope"
    assert reg.request_token(lotl, assertion=assertion).json()["error"] == "invalid_client"


def test_used_assertions_are_purged_after_they_could_verify(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    reg.token(lotl)
    reg.clock.advance(60 + 30 + 1)  # past exp + leeway of the first assertion
    reg.token(lotl)
    with reg.sessions() as session:
        assert len(session.scalars(select(UsedAssertion)).all()) == 1


# --- members that may not authenticate ---------------------------------------------


@pytest.mark.parametrize("status", [MEMBER_PENDING, MEMBER_SUSPENDED])
def test_inactive_member_gets_no_token(reg: RegistryHarness, oauth_log: pytest.LogCaptureFixture,
                                       status: str) -> None:
    member = reg.add_member("mn-dornod", status=status)
    response = reg.request_token(member)
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_client",
        "error_description": f"member mn-dornod is {status}, not active"})
    assert logged(oauth_log, f"member is {status}")


def test_suspension_takes_effect_at_once(reg: RegistryHarness,
                                         oauth_log: pytest.LogCaptureFixture) -> None:
    lotl, ntlnp, _ = members(reg)
    token = reg.token(lotl, "registry", "catalog:read")
    node_token = reg.token(lotl, "cn-ntlnp", "node:read")
    assert get(reg, "/_test/read", token).status_code == 200

    reg.set_status("ru-lotl", MEMBER_SUSPENDED)
    refused = get(reg, "/_test/read", token)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "member ru-lotl is not active"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    # Introspection reports its tokens inactive to their audience too.
    assert reg.introspect(ntlnp, node_token).json() == {"active": False}

    reg.set_status("ru-lotl", MEMBER_ACTIVE)  # readmitted: unexpired tokens work again
    assert get(reg, "/_test/read", token).status_code == 200


# --- no secrets, no other grants ---------------------------------------------------


def test_client_secret_basic_is_refused(reg: RegistryHarness) -> None:
    response = reg.http.post("/oauth/token", auth=("ru-lotl", "secret"), data={
        "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read"})
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description":
                               "HTTP authentication is not accepted; use private_key_jwt"}
    assert response.headers["www-authenticate"].startswith('Basic error="invalid_client"')


def test_client_secret_basic_alongside_a_valid_assertion_is_refused(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.http.post(
        "/oauth/token", auth=("ru-lotl", "secret"), data={
            "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": reg.assertion(lotl)})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_client_secret_post_is_refused(reg: RegistryHarness) -> None:
    response = reg.post("/oauth/token", {
        "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
        "client_id": "ru-lotl", "client_secret": "secret"})
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_client",
        "error_description": "client secrets are not accepted; use private_key_jwt"})


def test_public_client_none_is_refused(reg: RegistryHarness) -> None:
    response = reg.post("/oauth/token", {
        "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
        "client_id": "ru-lotl"})
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_client",
        "error_description": "client authentication with private_key_jwt required"})


def test_wrong_assertion_type_is_refused(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, client_assertion_type="urn:ietf:params:oauth:"
                                                             "client-assertion-type:saml2-bearer")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client")


def test_client_id_parameter_must_match_the_assertion(reg: RegistryHarness,
                                                      oauth_log: pytest.LogCaptureFixture
                                                      ) -> None:
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, client_id="cn-ntlnp")
    assert (response.status_code, response.json()) == (400, AUTH_FAILED)
    assert logged(oauth_log, "client_id parameter does not match sub")


@pytest.mark.parametrize("grant_type", [
    "authorization_code", "password", "refresh_token", "implicit",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange", "CLIENT_CREDENTIALS",
])
def test_other_grant_types_are_refused(reg: RegistryHarness, grant_type: str) -> None:
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, grant_type=grant_type)
    assert (response.status_code, response.json()) == (400, {
        "error": "unsupported_grant_type",
        "error_description": "only grant_type=client_credentials is supported"})


def test_missing_grant_type_is_refused(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, grant_type="")
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_request", "error_description": "grant_type is required"})


def test_parameters_in_the_url_are_refused(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.http.post("/oauth/token", params={
        "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": reg.assertion(lotl)})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_json_body_is_refused(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.http.post("/oauth/token", json={
        "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": reg.assertion(lotl)})
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_request",
        "error_description": "the request body must be application/x-www-form-urlencoded"})


def test_repeated_parameters_are_refused(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    response = reg.http.post("/oauth/token", content=(
        "grant_type=client_credentials&audience=registry&scope=catalog:read"
        f"&client_assertion_type={ASSERTION_TYPE}&client_assertion={reg.assertion(lotl)}"
        "&audience=cn-ntlnp"), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_plain_http_to_a_non_loopback_host_is_refused_not_a_crash(reg: RegistryHarness) -> None:
    # authlib refuses OAuth over http:// unless the URL is loopback; the URL it
    # checks comes from the Host header, which any client sets.
    lotl, *_ = members(reg)
    form = {"grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": reg.assertion(lotl)}
    response = reg.http.post("/oauth/token", data=form, headers={"Host": "registry.example"})
    assert (response.status_code, response.json()["error"]) == (400, "insecure_transport")
    introspect = reg.http.post("/oauth/introspect", data={"token": "x"},
                               headers={"Host": "registry.example"})
    assert introspect.status_code == 400
    assert introspect.headers["content-type"] == "application/problem+json"


def test_get_on_the_token_endpoint_is_a_problem(reg: RegistryHarness) -> None:
    response = reg.http.get("/oauth/token")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


# --- audience and scope ------------------------------------------------------------


@pytest.mark.parametrize(("audience", "description"), [
    ("kr-nowhere", "audience is not 'registry' or an active member"),
    ("mn-pending", "audience is not 'registry' or an active member"),
    ("https://registry.example", "audience is not 'registry' or an active member"),
    ("x" * 300, "audience is not 'registry' or an active member"),
    ("ru-lotl", "a member cannot request a token for itself"),
    ("", "audience is required ('registry' or a member id)"),
])
def test_bad_audience_is_invalid_target(reg: RegistryHarness, audience: str,
                                        description: str) -> None:
    lotl, *_ = members(reg)
    reg.add_member("mn-pending", status=MEMBER_PENDING)
    response = reg.request_token(lotl, audience=audience, scope="node:read")
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_target", "error_description": description})


MEMBER_SCOPES = ("allowed scopes for this audience: agreement:counts agreement:fetch "
                 "agreement:overlap links:write node:read")


@pytest.mark.parametrize(("audience", "scope", "description"), [
    ("registry", "node:read", "allowed scopes for this audience: agreements:read "
                              "agreements:write catalog:read catalog:write keys:write "
                              "witness:submit"),
    ("registry", "catalog:read admin", "allowed scopes for this audience: "
                                       "agreements:read agreements:write catalog:read "
                                       "catalog:write keys:write witness:submit"),
    ("cn-ntlnp", "catalog:write", MEMBER_SCOPES),
    ("cn-ntlnp", "node:read  node:read",
     MEMBER_SCOPES),
    ("cn-ntlnp", 'node:"read', MEMBER_SCOPES),
    ("cn-ntlnp", "", "scope is required"),
])
def test_scope_outside_the_table_is_invalid_scope(reg: RegistryHarness, audience: str,
                                                  scope: str, description: str) -> None:
    lotl, *_ = members(reg)
    response = reg.request_token(lotl, audience=audience, scope=scope)
    assert (response.status_code, response.json()) == (400, {
        "error": "invalid_scope", "error_description": description})


# --- access tokens at resource servers ----------------------------------------------


def test_token_for_a_is_refused_at_b(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    token = reg.token(lotl, "cn-ntlnp", "node:read")
    with pytest.raises(InvalidSignature) as excinfo:
        verify_access_token(token, reg.keys, audience="jp-kushiro", issuer=reg.settings.issuer,
                            now=reg.clock.epoch())
    assert "does not include 'jp-kushiro'" in excinfo.value.reason
    # ...and at the registry's own API.
    refused = get(reg, "/_test/read", token)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_registry_api_refusals(reg: RegistryHarness, oauth_log: pytest.LogCaptureFixture) -> None:
    lotl, *_ = members(reg)
    token = reg.token(lotl, "registry", "catalog:read")
    no_token = get(reg, "/_test/read")
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == 'Bearer realm="registry"'
    assert no_token.headers["content-type"] == "application/problem+json"

    basic = reg.http.get("/_test/read", auth=("ru-lotl", "secret"))
    assert basic.status_code == 401

    scope = reg.http.post("/_test/write", headers={"Authorization": f"Bearer {token}"})
    assert scope.status_code == 403
    assert scope.headers["www-authenticate"] == (
        'Bearer realm="registry", error="insufficient_scope", '
        'error_description="the access token lacks a required scope", '
        'scope="catalog:read catalog:write"')
    assert scope.json()["error"] == "insufficient_scope"

    oversize = get(reg, "/_test/read", "e30." + "A" * 9000 + ".e30")
    assert oversize.status_code == 401
    assert logged(oauth_log, "larger than 8192 bytes")

    # A perfectly signed token the registry never recorded (e.g. minted with a stolen key
    # for a jti it did not issue) is refused too.
    forged = reg.forge({"alg": "EdDSA", "kid": reg.key.kid, "typ": "at+jwt"},
                       {**unverified_claims(token), "jti": "never-issued"}, key=reg.key)
    unknown = get(reg, "/_test/read", forged)
    assert (unknown.status_code, unknown.json()["detail"]) == (401, "the access token is unknown")


def test_expired_token_is_refused_by_the_api(reg: RegistryHarness,
                                             oauth_log: pytest.LogCaptureFixture) -> None:
    lotl, *_ = members(reg)
    token = reg.token(lotl, "registry", "catalog:read")
    reg.clock.advance(300 + 31)
    assert get(reg, "/_test/read", token).status_code == 401
    assert logged(oauth_log, "expired")


def test_oversize_access_token_is_inactive_at_introspection(reg: RegistryHarness) -> None:
    _, ntlnp, _ = members(reg)
    assert reg.introspect(ntlnp, "e30." + "A" * 9000 + ".e30").json() == {"active": False}


# --- introspection and revocation --------------------------------------------------


def test_introspection_requires_client_authentication(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    token = reg.token(lotl, "cn-ntlnp", "node:read")
    response = reg.post("/oauth/introspect", {"token": token})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "invalid_client"

    forged = make_client_assertion(SigningKey.generate(), client_id="cn-ntlnp",
                                   token_endpoint=reg.token_endpoint, now=reg.clock.epoch())
    response = reg.post("/oauth/introspect", {"token": token, "client_assertion": forged,
                                              "client_assertion_type": ASSERTION_TYPE})
    assert response.json()["error_description"] == "client authentication failed"


def test_introspection_of_an_expired_token(reg: RegistryHarness) -> None:
    lotl, ntlnp, _ = members(reg)
    token = reg.token(lotl, "cn-ntlnp", "node:read")
    reg.clock.advance(300)
    assert reg.introspect(ntlnp, token).json() == {"active": False}


def test_introspection_without_token_is_invalid_request(reg: RegistryHarness) -> None:
    _, ntlnp, _ = members(reg)
    response = reg.post("/oauth/introspect", {"client_assertion_type": ASSERTION_TYPE,
                                              "client_assertion": reg.assertion(ntlnp)})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["content-type"] == "application/problem+json"


def test_a_member_cannot_revoke_another_members_token(reg: RegistryHarness,
                                                      oauth_log: pytest.LogCaptureFixture
                                                      ) -> None:
    lotl, ntlnp, kushiro = members(reg)
    token = reg.token(lotl, "cn-ntlnp", "node:read")
    for caller in (kushiro, ntlnp):  # a stranger, and even the token's audience
        response = reg.revoke(caller, token)
        assert (response.status_code, response.json()) == (200, {})
    assert logged(oauth_log, "tried to revoke ru-lotl's token")
    assert reg.introspect(ntlnp, token).json()["active"] is True


def test_revoking_garbage_is_a_200(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    assert reg.revoke(lotl, "garbage").status_code == 200


def test_revocation_requires_client_authentication(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    token = reg.token(lotl)
    response = reg.post("/oauth/revoke", {"token": token})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client")
    assert get(reg, "/_test/read", token).status_code == 200


# --- the node's client ---------------------------------------------------------------


def test_token_client_fetches_caches_and_revokes(reg: RegistryHarness) -> None:
    lotl, ntlnp, _ = members(reg)
    client = TokenClient(reg.url, reg.token_endpoint, "ru-lotl", lotl.key, http=reg.http,
                         clock=reg.clock)
    first = client.token("cn-ntlnp", "node:read")
    assert client.token("cn-ntlnp", "node:read") == first  # cached
    assert reg.introspect(ntlnp, first).json()["active"] is True

    reg.clock.advance(300 - 31)  # still more than 30 s left
    assert client.token("cn-ntlnp", "node:read") == first
    reg.clock.advance(2)  # less than 30 s left: a fresh one
    second = client.token("cn-ntlnp", "node:read")
    assert second != first

    client.revoke(second)
    assert reg.introspect(ntlnp, second).json() == {"active": False}
    third = client.token("cn-ntlnp", "node:read")  # the revoked one is not served from cache
    assert third not in (first, second)


def test_token_client_reports_oauth_errors(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    client = TokenClient(reg.url, reg.token_endpoint, "ru-lotl", lotl.key, http=reg.http,
                         clock=reg.clock)
    with pytest.raises(TokenError) as excinfo:
        client.token("registry", "node:read")
    assert (excinfo.value.error, excinfo.value.status) == ("invalid_scope", 400)
    with pytest.raises(TokenError) as excinfo:
        client.token("kr-nowhere", "node:read")
    assert excinfo.value.error == "invalid_target"

    impostor = TokenClient(reg.url, reg.token_endpoint, "ru-lotl", SigningKey.generate(),
                           http=reg.http, clock=reg.clock)
    with pytest.raises(TokenError) as excinfo:
        impostor.token("registry", "catalog:read")
    assert (excinfo.value.error, excinfo.value.description) == (
        "invalid_client", "client authentication failed")


def test_token_client_when_the_registry_is_unreachable(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        client = TokenClient(reg.url, reg.token_endpoint, "ru-lotl", lotl.key, http=http,
                             clock=reg.clock)
        with pytest.raises(TokenError) as excinfo:
            client.token("registry", "catalog:read")
    assert excinfo.value.error == "request_failed"


@pytest.mark.parametrize("body", [
    {"access_token": "t", "token_type": "mac", "expires_in": 300},
    {"access_token": "t", "token_type": "Bearer"},
    {"access_token": "t", "token_type": "Bearer", "expires_in": "300"},
    {"token_type": "Bearer", "expires_in": 300},
    ["not", "an", "object"],
])
def test_token_client_refuses_odd_responses(body: Any) -> None:
    with httpx.Client(transport=httpx.MockTransport(
            lambda request: httpx.Response(200, json=body))) as http:
        client = TokenClient("https://registry.example", "https://registry.example/oauth/token",
                             "ru-lotl", SigningKey.generate(), http=http,
                             clock=lambda: datetime.now(UTC))
        with pytest.raises(TokenError) as excinfo:
            client.token("registry", "catalog:read")
    assert excinfo.value.error == "invalid_response"


def test_token_client_assertions_are_fresh_and_aimed_at_the_token_endpoint(
        reg: RegistryHarness) -> None:
    seen: list[dict[str, Any]] = []

    def capture(request: httpx.Request) -> httpx.Response:
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        seen.append(unverified_claims(form["client_assertion"]) | {"url": str(request.url)})
        return httpx.Response(200, json={"access_token": f"t{len(seen)}", "token_type": "Bearer",
                                         "expires_in": 300})

    lotl, *_ = members(reg)
    with httpx.Client(transport=httpx.MockTransport(capture)) as http:
        client = TokenClient(reg.url, reg.token_endpoint, "ru-lotl", lotl.key, http=http,
                             clock=reg.clock)
        client.token("registry", "catalog:read")
        client.token("cn-ntlnp", "node:read")
        client.revoke("t1")
    assert [s["url"] for s in seen] == [reg.token_endpoint, reg.token_endpoint,
                                        f"{reg.url}/oauth/revoke"]
    assert {s["aud"] for s in seen} == {reg.token_endpoint}
    assert len({s["jti"] for s in seen}) == 3
    assert all(s["exp"] - s["iat"] == 60 for s in seen)


def test_issued_token_lifetime_follows_settings(reg: RegistryHarness) -> None:
    lotl, *_ = members(reg)
    claims = unverified_claims(reg.token(lotl))
    assert claims["exp"] - claims["iat"] == reg.settings.token_ttl
    assert claims["iat"] == reg.clock.epoch()
