"""A token revoked at the registry stops working at the node at once, and refusals of
valid tokens are on the node's record.

Before: after RFC 7009 revocation the node, which verifies tokens locally,
kept accepting the token until it expired (up to 5 minutes). Now the package
endpoint confirms every token with the registry (RFC 7662) before it serves,
and fails closed when the registry cannot answer.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from node.app import create_app as create_node_app
from node.log import LOG
from node.oauth_client import TokenClient
from node.settings import load_settings as load_node_settings
from tests.test_agreements_flow import make_active, package, provider_ready  # noqa: F401

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
