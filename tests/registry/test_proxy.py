"""Behind a TLS reverse proxy the registry trusts X-Forwarded-* only when told to."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.app import create_app
from registry.cli import init_registry

pytestmark = pytest.mark.storage

PROXIED = {"Host": "registry.example", "X-Forwarded-Proto": "https",
           "X-Forwarded-Host": "registry.example", "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize(("proxies", "status", "error"), [
    (0, 400, "insecure_transport"),  # plain http to a public name: refused
    (1, 400, "invalid_client"),      # the proxy said https: on to client authentication
])
def test_forwarded_scheme_is_trusted_only_with_proxies_set(
    tmp_path: Path, database_url: str, live_server: Any, proxies: int, status: int, error: str
) -> None:
    settings = init_registry(tmp_path / "registry", "Proxied", "https://registry.example",
                             development=False, database_url=database_url)
    server = live_server(create_app({
        "CORRIDOR_SETTINGS": dataclasses.replace(settings, proxies=proxies)}))
    response = httpx.post(f"{server.url}/oauth/token", headers=PROXIED,
                          data={"grant_type": "client_credentials"})
    assert response.status_code == status
    assert response.json()["error"] == error
