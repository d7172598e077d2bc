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


@pytest.mark.parametrize("value", ["-1", "6", '"1"', "true"])
def test_a_proxies_count_a_client_could_abuse_is_refused_at_load(tmp_path: Path,
                                                                 value: str) -> None:
    # -1 would make ProxyFix read an X-Forwarded-For entry the client wrote itself.
    from corridor.config import SettingsError
    from node.cli import init_node
    from node.settings import load_settings as load_node
    from registry.settings import load_settings as load_registry

    registry = init_registry(tmp_path / "registry", "R", "https://registry.example",
                             development=False, database_url=f"sqlite:///{tmp_path}/r.db")
    node = init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard", "RU")
    for directory, load, section in ((registry.directory, load_registry, "[registry]"),
                                     (node.directory, load_node, "[node]")):
        config = next(directory.glob("*.toml"))
        text = config.read_text("utf-8")
        lines = [line for line in text.splitlines() if not line.startswith("proxies")]
        at = lines.index(section) + 1
        config.write_text("\n".join([*lines[:at], f"proxies = {value}", *lines[at:]]) + "\n")
        with pytest.raises(SettingsError, match="proxies"):
            load(directory)


def test_a_trailing_slash_on_the_registry_url_is_dropped(tmp_path: Path) -> None:
    from node.cli import init_node
    from node.settings import load_settings as load_node

    node = init_node(tmp_path / "node", "ru-lotl", "Land of the Leopard", "RU")
    config = node.directory / "node.toml"
    config.write_text(config.read_text("utf-8") + '\n[registry]\nurl = "https://reg.example/"\n')
    assert load_node(node.directory).registry_url == "https://reg.example"
