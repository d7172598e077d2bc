"""schemathesis over both services' OpenAPI documents, with and without a valid token.

A bounded run (fixed seed, few examples per operation) of the ``st`` command an
operator would run by hand for longer (README: "Fuzzing the APIs"), against a
registry and a node served on loopback. It must find nothing: no 5xx, every
status code and content type documented, every body matching its schema,
every header documented, 405 with ``Allow``, and no operation that declares
the token scheme answering without one.

Two of schemathesis' checks are left out, on purpose: positive_data_acceptance
and negative_data_rejection expect every request that fits the JSON Schema to
be accepted and every other one refused. The services refuse more than JSON
Schema can say (a join request must be a compact JWS signed by the key it
names; NUL characters are refused in every query; bounding boxes must have
west < east; bodies have size caps) and answer those 400, 413 or 422 with a
problem document, which those two checks count as failures by definition.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from corridor.keystore import load_signing_key
from deploy.federation import LoopbackFederation
from node.exchange.oauth_client import TokenClient

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "missing_required_header",
    "unsupported_method", "ignored_auth"])
#: Examples per operation and phase; a run by hand can take far more (-n 500).
EXAMPLES = "8"
SEED = "20261208"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A registry and two admitted nodes on loopback, and a token for each service."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    net = LoopbackFederation.start(tmp_path_factory.mktemp("fuzzed"), name="Fuzzed registry")
    try:
        for member, country in (("ru-lotl", "RU"), ("cn-ntlnp", "CN")):
            net.add_node(member, member, country)
            net.admit(member)
        net.sync()
        client = TokenClient(net.registry_server.url, net.registry.token_endpoint, "ru-lotl",
                             load_signing_key(net.nodes["ru-lotl"].keys_dir),
                             http=httpx.Client(timeout=10), clock=lambda: datetime.now(UTC))
        yield {
            "registry": (net.registry_server.url,
                         client.token("registry", "catalog:read agreements:read")),
            "cn-ntlnp": (net.servers["cn-ntlnp"].url, client.token("cn-ntlnp", "node:read")),
        }
    finally:
        net.stop()


def schemathesis(url: str, token: str | None, report: Path) -> subprocess.CompletedProcess[str]:
    """``st run`` against ``url``'s OpenAPI document, as an operator would run it."""
    command = [str(Path(sys.executable).with_name("st")), "run", f"{url}/openapi.json",
               "--checks", CHECKS, "--max-examples", EXAMPLES, "--seed", SEED,
               "--max-failures", "50", "--no-color", "--report", "junit",
               "--report-junit-path", str(report)]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    # In the test's directory: schemathesis keeps a cache where it runs.
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          cwd=report.parent, env={**os.environ, "SCHEMATHESIS_HOOKS": ""})


@pytest.mark.slow
@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("service", ["registry", "cn-ntlnp"])
def test_schemathesis_finds_nothing(served: dict[str, Any], service: str, with_token: bool,
                                    tmp_path: Path) -> None:
    url, token = served[service]
    run = schemathesis(url, token if with_token else None, tmp_path / "junit.xml")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-3000:]
    assert (tmp_path / "junit.xml").stat().st_size > 0
