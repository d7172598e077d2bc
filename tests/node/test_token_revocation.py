"""A token revoked at the registry stops working at the node at once, and refusals of
valid tokens are on the node's record.

Before: after RFC 7009 revocation the node, which verifies tokens locally,
kept accepting the token until it expired (up to 5 minutes). Now the package
endpoint confirms every token with the registry (RFC 7662) before it serves,
and fails closed when the registry cannot answer.

The first tests drive ``authorize(..., confirm_with_registry=True)`` through
a test-only blueprint on the node's own app factory (cn-ntlnp's settings, a
real registry on loopback); where the registry must misbehave, the node is
pointed at a small WSGI app that answers what a broken or hostile registry
would. The last ones go through the package endpoint end to end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Blueprint
from flask.testing import FlaskClient

import node.exchange.auth
from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from node.app import create_app as create_node_app
from node.exchange.auth import MissingScope, authorize
from node.exchange.oauth_client import TokenClient
from node.log.exchange_log import LOG
from node.settings import load_settings as load_node_settings
from tests import test_agreements_flow
from tests.test_agreements_flow import make_active, package

provider_ready = test_agreements_flow.provider_ready  # the fixture, shared with that module

pytestmark = pytest.mark.storage

Federation = Any


def _client(fed: Federation, member: str) -> TokenClient:
    settings = load_node_settings(fed.nodes[member])
    return TokenClient(fed.registry.url, f"{fed.registry.url}/oauth/token", member,
                       load_signing_key(settings.keys_dir), http=httpx.Client(timeout=10),
                       clock=lambda: datetime.now(UTC))


def _refusals(fed: Federation) -> list[dict[str, Any]]:
    engine = make_engine(load_node_settings(fed.nodes["cn-ntlnp"]).database_url)
    try:
        with make_session_factory(engine)() as session:
            return [e.event() for e in LOG.entries(session) if e.event()["type"] ==
                    "fetch.refused"]
    finally:
        engine.dispose()


# --- authorize(..., confirm_with_registry=True), through a test-only route on the node app ---

probe = Blueprint("probe", __name__)


@probe.get("/probe/confirmed")
def confirmed() -> dict[str, Any]:
    """What the tests call: a read that confirms the token with the registry."""
    claims = authorize("node:read", confirm_with_registry=True)
    return {"sub": claims.subject, "jti": claims.jti}


@probe.get("/probe/local")
def local_only() -> dict[str, Any]:
    """The same read, checked locally only (as metadata reads are)."""
    claims = authorize("node:read")
    return {"sub": claims.subject, "jti": claims.jti}


@probe.get("/probe/fetch-scope")
def needs_fetch_scope() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Needs a scope the test's token lacks; answers what ``MissingScope`` carried."""
    try:
        authorize("agreement:fetch", confirm_with_registry=True)
    except MissingScope as e:
        return ({"status": e.status, "detail": e.detail, "sub": e.claims.subject,
                 "jti": e.claims.jti}, e.status, e.headers)
    raise AssertionError("the token has no agreement:fetch scope")


class Recording:
    """A WSGI app in front of another that counts the introspection requests it passes on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.introspections = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/oauth/introspect":
            self.introspections += 1
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def answering(status: str, body: bytes, *, delay: float = 0.0) -> Callable[..., list[bytes]]:
    """A stand-in registry that answers every request with ``status`` and ``body``."""
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        time.sleep(delay)
        start_response(status, [("Content-Type", "application/json")])
        return [body]
    return app


def cn_node(fed: Federation, registry_url: str | None = None) -> FlaskClient:
    """cn-ntlnp's app from its own settings (optionally another registry URL) plus the probe."""
    settings = load_node_settings(fed.nodes["cn-ntlnp"])
    if registry_url is not None:
        settings = dataclasses.replace(settings, registry_url=registry_url)
    app = create_node_app({"CORRIDOR_SETTINGS": settings, "TESTING": True})
    app.register_blueprint(probe)
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def members(federation: Federation) -> Federation:
    """The federation with ru-lotl and cn-ntlnp admitted and synced (no data needed)."""
    federation.join_and_admit()
    return federation


def real_answer(fed: Federation, token: str) -> dict[str, Any]:
    """The registry's introspection answer about ``token``, asked by cn-ntlnp (its audience)."""
    return _client(fed, "cn-ntlnp").introspect(token)


def test_a_token_revoked_at_the_registry_is_refused_when_confirmed(
        members: Federation, caplog: pytest.LogCaptureFixture) -> None:
    fed = members
    ru = _client(fed, "ru-lotl")
    token = ru.token("cn-ntlnp", "node:read")
    node = cn_node(fed)
    assert node.get("/probe/confirmed", headers=bearer(token)).status_code == 200
    ru.revoke(token)
    with caplog.at_level(logging.INFO, logger="node.exchange.auth"):
        response = node.get("/probe/confirmed", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json == {"type": "about:blank", "title": "Invalid access token",
                             "status": 401,
                             "detail": "the access token is not valid for this node"}
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert any("revoked" in r.getMessage() for r in caplog.records)
    # Locally the token still verifies: only the registry knows it is revoked.
    assert node.get("/probe/local", headers=bearer(token)).status_code == 200


def test_an_unrevoked_token_is_accepted_once_the_registry_confirms_it(
        members: Federation) -> None:
    fed = members
    recording = Recording(fed.registry.app)
    fed.registry.app = recording
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    response = cn_node(fed).get("/probe/confirmed", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json is not None and response.json["sub"] == "ru-lotl"
    assert recording.introspections == 1  # asked, as the node itself (private_key_jwt)


def test_a_token_without_the_scope_is_refused_with_its_claims_and_the_registry_not_asked(
        members: Federation) -> None:
    fed = members
    recording = Recording(fed.registry.app)
    fed.registry.app = recording
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    response = cn_node(fed).get("/probe/fetch-scope", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    body = response.json
    assert body is not None and body["sub"] == "ru-lotl" and body["jti"]
    assert body["detail"] == "the token lacks scope agreement:fetch"
    assert recording.introspections == 0


def test_an_unreachable_registry_means_refused_not_accepted(members: Federation,
                                                            live_server: Any) -> None:
    fed = members
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    gone = live_server()
    gone.stop()  # nothing listens on its port any more
    response = cn_node(fed, registry_url=gone.url).get("/probe/confirmed",
                                                       headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.json is not None
    assert response.json["title"] == "Registry unavailable to confirm the token"
    assert "try again later" in response.json["detail"]


@pytest.mark.parametrize(("status", "body"), [
    ("503 Service Unavailable", b"not mounted yet"),
    ("500 Internal Server Error", b'{"title": "Internal error"}'),
    ("401 Unauthorized", b'{"error": "invalid_client"}'),  # the registry refuses the node
    ("200 OK", b"<html>maintenance</html>"),
    ("200 OK", b'[{"active": true}]'),
    ("200 OK", b""),
    ("200 OK", b"[" * 200_000 + b"]" * 200_000),  # nested past the parser's recursion limit
])
def test_a_registry_error_or_nonsense_means_refused(members: Federation, live_server: Any,
                                                    status: str, body: bytes) -> None:
    fed = members
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    broken = live_server(answering(status, body))
    response = cn_node(fed, registry_url=broken.url).get("/probe/confirmed",
                                                         headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.json is not None
    assert response.json["title"] == "Registry unavailable to confirm the token"


def test_an_answer_larger_than_any_introspection_is_not_read(members: Federation,
                                                             live_server: Any) -> None:
    fed = members
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    padded = {**real_answer(fed, token), "pad": "x" * 200_000}  # otherwise the true answer
    bloated = live_server(answering("200 OK", json.dumps(padded).encode()))
    response = cn_node(fed, registry_url=bloated.url).get("/probe/confirmed",
                                                          headers=bearer(token))
    assert response.status_code == 503, response.text


def test_a_registry_that_hangs_is_given_up_on_and_refused(
        members: Federation, live_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fed = members
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    answer = json.dumps(real_answer(fed, token)).encode()
    # The bound is INTROSPECTION_TIMEOUT (5 s); shortened so the test does not wait that long.
    monkeypatch.setattr(node.exchange.auth, "INTROSPECTION_TIMEOUT", 0.3)
    slow = live_server(answering("200 OK", answer, delay=1.5))
    started = time.monotonic()
    response = cn_node(fed, registry_url=slow.url).get("/probe/confirmed",
                                                       headers=bearer(token))
    assert response.status_code == 503, response.text
    assert time.monotonic() - started < 1.4


@pytest.mark.parametrize(("change", "expected"), [
    ({}, 200),  # the registry's own answer, replayed: accepted
    ({"active": False}, 401),
    ({"sub": "kr-nie"}, 503),
    ({"jti": "another-token"}, 503),
    ({"aud": "ru-lotl"}, 503),
    ({"aud": ["cn-ntlnp", "ru-lotl"]}, 503),
    ({"exp": 4102444800}, 503),  # 2100: someone else's long-lived token
    ({"active": "true"}, 503),
    ({"active": 1}, 503),
    ({"active": None}, 503),
    ({"sub": None}, 503),
    ({"exp": None}, 503),
])
def test_an_introspection_answer_must_be_about_this_very_token(
        members: Federation, live_server: Any, change: dict[str, Any], expected: int) -> None:
    fed = members
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    answer = real_answer(fed, token)
    answer.update(change)
    answer = {k: v for k, v in answer.items() if v is not None}
    stand_in = live_server(answering("200 OK", json.dumps(answer).encode()))
    response = cn_node(fed, registry_url=stand_in.url).get("/probe/confirmed",
                                                           headers=bearer(token))
    assert response.status_code == expected, response.text
    if expected == 503:
        assert response.json is not None and "did not match" in response.json["detail"]


def test_the_registry_tells_the_tokens_audience_but_not_a_third_member(
        members: Federation) -> None:
    fed = members
    fed.add_node("kr-nie", "National Institute of Ecology", "KR")
    assert fed.node("kr-nie", "join").exit_code == 0
    assert fed.registry_cli("members", "admit", "kr-nie").exit_code == 0
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    assert real_answer(fed, token)["active"] is True  # the audience (the node)
    assert _client(fed, "ru-lotl").introspect(token)["active"] is True  # the client
    assert _client(fed, "kr-nie").introspect(token) == {"active": False}


# --- end to end, through the package endpoint -------------------------------------------


def test_a_revoked_token_is_refused_at_once(provider_ready: Federation, tmp_path: Path) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    ru = _client(fed, "ru-lotl")
    token = ru.token("cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, _ = package(fed, agreement, token)
    assert status == 200
    ru.revoke(token)
    status, body = package(fed, agreement, token)  # seconds later, long before it expires
    assert status == 401, body
    assert json.loads(body)["title"] == "Invalid access token"
    refused = _refusals(fed)[-1]
    assert refused["status"] == 401 and refused["agreement"] == agreement
    # A fresh token for the same agreement works again: only the revoked one is dead.
    status, _ = package(fed, agreement, ru.token("cn-ntlnp", "agreement:fetch",
                                                 agreement=agreement))
    assert status == 200


def test_no_registry_to_confirm_with_means_no_package(provider_ready: Federation,
                                                      tmp_path: Path) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    registry_app = fed.registry.app
    fed.registry.app = None  # the registry answers 503 to everything
    try:
        status, body = package(fed, agreement, token)
    finally:
        fed.registry.app = registry_app
    assert status == 503, body
    assert json.loads(body)["title"] == "Registry unavailable to confirm the token"
    assert _refusals(fed)[-1]["status"] == 503


def test_an_introspection_answer_about_another_token_is_not_trusted(
        provider_ready: Federation, tmp_path: Path, live_server: Any) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)

    def liar(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        # Active, but for another subject and token (a confused or hostile answer).
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"active": True, "sub": "kr-nie", "jti": "other",
                            "aud": "cn-ntlnp"}).encode()]

    fake = live_server(liar)
    settings = dataclasses.replace(load_node_settings(fed.nodes["cn-ntlnp"]),
                                   registry_url=fake.url)
    node = live_server(create_node_app({"CORRIDOR_SETTINGS": settings}))
    status, _, body = node.request("GET", f"/agreements/{agreement}/package",
                                   headers={"Authorization": f"Bearer {token}"})
    assert status == 503, body
    assert "did not match" in json.loads(body)["detail"]


def test_a_token_without_the_fetch_scope_is_refused_and_logged(provider_ready: Federation,
                                                               tmp_path: Path) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    status, body = package(fed, agreement, token)
    assert status == 403 and "lacks scope agreement:fetch" in json.loads(body)["detail"]
    refused = _refusals(fed)[-1]
    assert refused["status"] == 403 and refused["member"] == "ru-lotl"
    assert "agreement:fetch" in refused["reason"]
