"""``/livez`` and ``/healthz`` of both services, over real HTTP, and ``migrate``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from corridor.db import make_engine
from node.settings import load_settings as load_node_settings
from tests.conftest import Federation, ok

pytestmark = pytest.mark.storage


def probe(fed: Federation, service: str, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    status, _, body = fed.servers[service].request("GET", path)
    return status, json.loads(body)


def test_a_node_is_ready_only_with_a_trust_list_that_has_not_expired(
        federation: Federation) -> None:
    fed = federation
    assert probe(fed, "cn-ntlnp", "/livez") == (200, {"status": "ok"})
    status, body = probe(fed, "cn-ntlnp")
    assert status == 503 and body["status"] == "failing"
    assert body["checks"]["database"]["ok"] is True
    assert not body["checks"]["trust_list"]["ok"]
    assert "corridor node sync" in body["checks"]["trust_list"]["detail"]

    fed.join_and_admit()
    status, body = probe(fed, "cn-ntlnp")
    assert status == 200 and body["status"] == "ok", body
    facts = body["checks"]["trust_list"]["facts"]
    assert facts["version"] >= 1 and 0 <= facts["age_seconds"] < 600

    fed.clocks["cn-ntlnp"].offset = timedelta(days=8)  # past the list's expiry
    status, body = probe(fed, "cn-ntlnp")
    assert status == 503 and "expired" in body["checks"]["trust_list"]["detail"]
    assert probe(fed, "cn-ntlnp", "/livez")[0] == 200  # alive: no restart for an outage


def test_the_registry_is_not_ready_without_its_key_and_says_no_path(
        federation: Federation) -> None:
    fed = federation
    status, body = probe(fed, "registry")
    assert status == 200 and set(body["checks"]) == {"database", "signing_key"}, body
    active = fed.registry_dir / "keys" / "active"
    active.chmod(0o644)  # readable by others: the keystore refuses it
    try:
        status, body = probe(fed, "registry")
    finally:
        active.chmod(0o600)
    assert status == 503 and not body["checks"]["signing_key"]["ok"]
    assert str(fed.registry_dir) not in json.dumps(body)  # no machine paths to strangers
    assert probe(fed, "registry")[0] == 200


def test_a_schema_behind_the_code_is_not_ready_until_migrate(federation: Federation) -> None:
    fed = federation
    fed.join_and_admit()
    engine = make_engine(load_node_settings(fed.nodes["ru-lotl"]).database_url)
    with engine.begin() as connection:
        [head] = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        status, body = probe(fed, "ru-lotl")
        assert status == 503
        detail = body["checks"]["database"]["detail"]
        assert f"at migration 0001, not {head}" in detail and "migrate" in detail
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        engine.dispose()
    said = ok(fed.node("ru-lotl", "migrate"))
    assert f"Database schema at migration {head} (the newest is {head})" in " ".join(said.split())
    assert probe(fed, "ru-lotl")[0] == 200


def test_the_probes_are_in_the_openapi_document(federation: Federation) -> None:
    for service in ("registry", "cn-ntlnp"):
        _, spec = probe(federation, service, "/openapi.json")
        assert {"/healthz", "/livez"} <= set(spec["paths"])
        assert "503" in spec["paths"]["/healthz"]["get"]["responses"]
