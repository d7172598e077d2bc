"""What the OpenAPI documents say, checked against the services (real HTTP on loopback)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Federation

PROBLEM = "application/problem+json"


def spec(fed: Federation, service: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(fed.servers[service].request("GET",
                                                                       "/openapi.json")[2])
    return document


def test_errors_are_documented_as_problem_documents(federation: Federation) -> None:
    for service in ("registry", "cn-ntlnp"):
        responses = spec(federation, service)["components"]["responses"]
        assert list(responses["DEFAULT_ERROR"]["content"]) == [PROBLEM]
        assert list(responses["NOT_FOUND"]["content"]) == [PROBLEM]
        status, headers, body = federation.servers[service].request("GET", "/no-such-page")
        assert status == 404 and headers["Content-Type"] == PROBLEM
        assert json.loads(body)["status"] == 404


def test_operations_that_need_a_token_say_so_with_their_scopes_and_refusals(
        federation: Federation) -> None:
    node = spec(federation, "cn-ntlnp")
    assert node["components"]["securitySchemes"]["registryToken"]["scheme"] == "bearer"
    whoami = node["paths"]["/whoami"]["get"]
    assert whoami["security"] == [{"registryToken": ["node:read"]}]
    assert {"401", "403"} <= set(whoami["responses"])
    package = node["paths"]["/agreements/{agreement_id}/package"]["get"]
    assert package["security"] == [{"registryToken": ["agreement:fetch"]}]
    assert {"401", "403", "404", "409"} <= set(package["responses"])
    assert "security" not in node["paths"]["/datasets"]["get"]  # public metadata
    assert "security" not in node["paths"]["/.well-known/jwks.json"]["get"]

    registry = spec(federation, "registry")
    catalog = registry["paths"]["/catalog"]
    assert catalog["post"]["security"] == [{"registryToken": ["catalog:write"]}]
    assert catalog["get"]["security"] == [{"registryToken": ["catalog:read"]}]
    assert "security" not in registry["paths"]["/trust-list"]["get"]
    witness = registry["paths"]["/witness/{member_id}"]["post"]
    assert {"401", "403", "404", "409"} <= set(witness["responses"])
    assert witness["responses"]["409"] == {"$ref": "#/components/responses/CONFLICT"}
    conflict = registry["components"]["responses"]["CONFLICT"]
    assert list(conflict["content"]) == [PROBLEM]


def test_a_call_without_a_token_is_refused_before_its_body_is_read(
        federation: Federation) -> None:
    status, headers, body = federation.servers["cn-ntlnp"].request(
        "POST", "/agreements/ru-lotl.0000000000000000/counts", b'{"not": "a query"}',
        headers={"Content-Type": "application/json"})
    assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
    assert "errors" not in json.loads(body)  # no validation report for a stranger


def test_the_registry_documents_its_oauth_endpoints(federation: Federation) -> None:
    paths = spec(federation, "registry")["paths"]
    token = paths["/oauth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"grant_type", "client_assertion", "client_assertion_type", "audience",
            "scope"} <= set(form["required"])
    assert {"200", "400", "401"} <= set(token["responses"])
    assert {"/oauth/introspect", "/oauth/revoke",
            "/.well-known/oauth-authorization-server"} <= set(paths)


def test_an_unsupported_method_is_405_with_allow(federation: Federation) -> None:
    for service, path, allowed in (("cn-ntlnp", "/whoami", {"GET"}),
                                   ("registry", "/catalog", {"GET", "POST"})):
        status, headers, _ = federation.servers[service].request("TRACE", path)
        assert status == 405 and headers["Content-Type"] == PROBLEM
        assert allowed <= {m.strip() for m in headers["Allow"].split(",")}


def test_node_token_prints_a_token_an_operator_can_call_with(federation: Federation) -> None:
    fed = federation
    fed.join_and_admit()
    printed = fed.node("ru-lotl", "token", "cn-ntlnp")
    assert printed.exit_code == 0, printed.output
    [token] = [line for line in printed.output.splitlines() if line.startswith("ey")]
    status, _, body = fed.servers["cn-ntlnp"].request(
        "GET", "/whoami", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["member_id"] == "ru-lotl"
    refused = fed.node("ru-lotl", "token", "cn-ntlnp", "--scope", "no:such-scope")
    assert refused.exit_code == 1 and "refused" in refused.output
