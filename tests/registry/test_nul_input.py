"""A NUL character anywhere a client can put one is a 4xx problem, never a 500.

PostgreSQL text cannot hold NUL: before, each of these reached the database
and came back as a 500 (run with ``CORRIDOR_TEST_DATABASE_URL`` to see it).
Over real HTTP against the registry.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from crypto.tokens import ASSERTION_TYPE

if TYPE_CHECKING:
    from tests.registry.conftest import RegistryHarness

pytestmark = pytest.mark.storage


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _is_problem(response: object, *statuses: int) -> None:
    assert response.status_code in statuses, response.text  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "application/problem+json"  # type: ignore[attr-defined]


def test_a_nul_in_a_path_or_query_is_400(registry: RegistryHarness) -> None:
    _is_problem(registry.http.get("/witness/ru-a%00b"), 400)
    _is_problem(registry.http.get("/trust-list?version=1%00"), 400)


def test_a_nul_in_a_form_is_400(registry: RegistryHarness) -> None:
    member = registry.add_member("ru-aaa")
    _is_problem(registry.request_token(member, audience="cn-\x00b", scope="node:read"), 400)


def test_a_nul_in_a_client_assertion_claim_is_refused(registry: RegistryHarness) -> None:
    header = _b64(json.dumps({"alg": "EdDSA", "typ": "client-authentication+jwt",
                              "kid": "k"}).encode())
    claims = _b64(json.dumps({"sub": "ru-\u0000x", "iss": "ru-\u0000x"}).encode())
    response = registry.post("/oauth/token", {
        "grant_type": "client_credentials", "audience": "registry", "scope": "catalog:read",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": f"{header}.{claims}.{_b64(b'x' * 64)}"})
    assert 400 <= response.status_code < 500, response.text


def test_a_nul_in_a_basic_username_is_refused(registry: RegistryHarness) -> None:
    credentials = base64.b64encode(b"al\x00ice:whatever-password").decode()
    response = registry.http.get("/log/entries", headers={"Authorization": f"Basic {credentials}"})
    _is_problem(response, 400, 401)
