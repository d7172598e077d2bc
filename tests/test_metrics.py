"""``/metrics`` of both services over real HTTP: what it counts, and who may read it.

The figures are checked against what the test did (requests sent, refusals
provoked, one package fetched) and against the database itself, not against
the code that produced them. The multiprocess side (gunicorn's workers adding
up) is in tests/test_gunicorn.py.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from corridor.config import LOOPBACK, SettingsError, metrics_from_setting
from corridor.db import make_engine
from node.app import create_app as create_node_app
from node.settings import load_settings as load_node_settings
from registry.app import create_app as create_registry_app
from registry.settings import load_settings as load_registry_settings
from tests.conftest import Federation, ok

pytestmark = pytest.mark.storage

DATASET = "corridor-demo-cn-ntlnp"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Any, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of ``server``'s /metrics, by name and sorted labels."""
    status, response_headers, body = server.request("GET", "/metrics", headers=headers)
    assert status == 200, body
    assert response_headers["Content-Type"] == CONTENT_TYPE_LATEST
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value, 0 when the series does not exist yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def count_rows(database_url: str, sql: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql(sql).scalar_one())
    finally:
        engine.dispose()


def test_the_node_counts_requests_refusals_packages_and_its_trust_list(
        parks: Federation, tmp_path: Path) -> None:
    fed = parks
    agreement = fed.agreement(DATASET, "generalized")
    node = fed.servers["cn-ntlnp"]
    before = scrape(node)

    token = fed.token_for("ru-lotl", "cn-ntlnp")
    for _ in range(3):
        assert node.request("GET", "/whoami", headers={"Authorization": f"Bearer {token}"})[0] \
            == 200
    refused = [node.request("GET", "/whoami", headers={"Authorization": "Bearer forged"})
               for _ in range(2)]
    assert {status for status, _, _ in refused} == {401}
    told = json.loads(refused[0][2])["title"]
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "package.zip"))
    after = scrape(node)

    whoami = {"method": "GET", "route": "/whoami"}
    assert value(after, "corridor_http_requests_total", **whoami, status="200") \
        - value(before, "corridor_http_requests_total", **whoami, status="200") == 3
    assert value(after, "corridor_http_requests_total", **whoami, status="401") \
        - value(before, "corridor_http_requests_total", **whoami, status="401") == 2
    assert value(after, "corridor_refusals_total", status="401", reason=told) \
        - value(before, "corridor_refusals_total", status="401", reason=told) == 2
    # The package route is counted by its rule: no agreement id becomes a label.
    package = {"method": "GET", "route": "/agreements/<string:agreement_id>/package",
               "status": "200"}
    assert value(after, "corridor_http_requests_total", **package) == 1
    assert not any(agreement in str(labels) for _, labels in after)
    assert value(after, "corridor_http_request_duration_seconds_count", route="/whoami") \
        - value(before, "corridor_http_request_duration_seconds_count", route="/whoami") == 5

    url = load_node_settings(fed.nodes["cn-ntlnp"]).database_url
    assert value(after, "corridor_log_entries", type="package.served") == 1 == count_rows(
        url, "SELECT count(*) FROM log_entries WHERE type = 'package.served'")
    assert value(after, "corridor_log_size") == count_rows(url, "SELECT size FROM log_head")
    held = json.loads(node.request("GET", "/whoami", headers={
        "Authorization": f"Bearer {token}"})[2])["trust_list_version"]
    assert value(after, "corridor_trust_list_version") == held
    assert 0 <= value(after, "corridor_trust_list_age_seconds") < 600
    assert value(after, "corridor_trust_list_expires_in_seconds") > 6 * 24 * 3600


def test_the_registry_counts_oauth_refusals_by_their_error(parks: Federation) -> None:
    fed = parks
    registry = fed.servers["registry"]
    before = scrape(registry)
    form = b"grant_type=client_credentials&scope=node%3Aread"
    status, _, body = registry.request("POST", "/oauth/token", form, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    problem = json.loads(body)
    assert status in (400, 401) and problem["error"]
    fed.token_for("ru-lotl", "cn-ntlnp")
    after = scrape(registry)

    # The token endpoint answers in RFC 6749's own form: the reason is its error code.
    reason = ": ".join(part for part in (problem.get("title"), problem["error"]) if part)
    assert value(after, "corridor_refusals_total", status=str(status), reason=reason) \
        - value(before, "corridor_refusals_total", status=str(status), reason=reason) == 1
    token = {"method": "POST", "route": "/oauth/token", "status": "200"}
    assert value(after, "corridor_http_requests_total", **token) \
        - value(before, "corridor_http_requests_total", **token) == 1
    url = load_registry_settings(fed.registry_dir).database_url
    assert value(after, "corridor_log_entries", type="token.issued") == count_rows(
        url, "SELECT count(*) FROM log_entries WHERE type = 'token.issued'") >= 1
    assert value(after, "corridor_trust_list_version") == count_rows(
        url, "SELECT max(version) FROM trust_lists")


def test_only_the_allowed_networks_may_scrape(federation: Federation, live_server: Any) -> None:
    fed = federation
    node = fed.servers["cn-ntlnp"]
    scrape(node)  # loopback, the default
    # No proxy is trusted, so a forwarded request's loopback address proves nothing.
    status, headers, body = node.request("GET", "/metrics",
                                         headers={"X-Forwarded-For": "127.0.0.1"})
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    assert b"corridor_" not in body

    settings = load_node_settings(fed.nodes["cn-ntlnp"])
    behind_proxy = live_server(create_node_app({"CORRIDOR_SETTINGS": settings.with_overrides(
        proxies=1, metrics_from=(ipaddress.ip_network("192.0.2.0/24"),))}))
    assert behind_proxy.request("GET", "/metrics")[0] == 404  # loopback is no longer listed
    assert behind_proxy.request("GET", "/metrics",
                                headers={"X-Forwarded-For": "203.0.113.9"})[0] == 404
    scrape(behind_proxy, headers={"X-Forwarded-For": "192.0.2.17"})

    registry_settings = load_registry_settings(fed.registry_dir)
    closed = live_server(create_registry_app({"CORRIDOR_SETTINGS": replace(
        registry_settings, metrics_from=())}))
    assert closed.request("GET", "/metrics")[0] == 404
    assert closed.request("GET", "/healthz")[0] == 200  # the rest of the service is unchanged


def test_metrics_from_takes_networks_and_refuses_anything_else(tmp_path: Path) -> None:
    assert metrics_from_setting(None) == LOOPBACK
    assert metrics_from_setting([]) == ()
    assert metrics_from_setting(["10.0.0.0/8", "2001:db8::1"]) == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::1/128"))
    for wrong in ("127.0.0.1", ["10.0.0.1/8"], ["localhost"], [8], {"a": 1}):
        with pytest.raises(SettingsError, match="metrics_from"):
            metrics_from_setting(wrong)


def test_the_metrics_route_is_in_the_openapi_document(federation: Federation) -> None:
    for service in ("registry", "cn-ntlnp"):
        spec = json.loads(federation.servers[service].request("GET", "/openapi.json")[2])
        answers = spec["paths"]["/metrics"]["get"]["responses"]
        assert list(answers["200"]["content"]) == [CONTENT_TYPE_LATEST]
        assert "404" in answers
