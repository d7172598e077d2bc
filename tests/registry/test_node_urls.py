"""Node URLs cannot point inward: the registry refuses what would aim partners' nodes at
their own networks (each URL observed accepted before is a case here).

Refusals are checked where members meet them: a signed join request posted to
``POST /members`` of a registry outside development mode (422, problem+json,
the rule broken) that leaves no member behind. The registry never connects to
node URLs, so it does not resolve them either; the node that connects
refuses private addresses after resolution (tests/corridor/test_outbound.py).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient

from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from registry.app import create_app
from registry.membership.members import JOIN_TYP, InvalidNodeUrl, InvalidRequest, check_node_url
from registry.models import Member

if TYPE_CHECKING:
    from tests.registry.conftest import RegistryHarness

OBSERVED = [
    ("https://169.254.169.254/latest/meta-data", "IP address"),  # cloud metadata
    ("https://10.0.0.1:22", "port 22"),
    ("https://[::ffff:127.0.0.1]", "IP address"),
    ("https://2130706433", "IP address"),  # 127.0.0.1 as one integer
    ("https://localhost:80@evil.example", "user info"),
]
MORE = [
    ("https://10.0.0.1", "an IP address"),
    ("https://0x7f.1", "IP address"),
    ("https://0177.0.0.1", "IP address"),
    ("https://127.1", "IP address"),
    ("https://[fe80::1]", "IP address"),
    ("https://100.64.0.1", "IP address"),  # CGNAT
    ("https://user@node.park.example.org", "user info"),
    ("https://node.park.org?x=1", "query or fragment"),
    ("https://node.park.org/#top", "query or fragment"),
    ("https://node.park.org:80", "port 80"),
    ("https://node.park.org:8443", "port 8443"),
    ("https://node.park.org:99999", "port is not a number"),
    ("https://Node.Park.org", "lower case"),
    ("https://node.park.org.", "trailing dot"),
    ("https://leopards", "fully qualified"),
    ("https://node..park.org", "letters, digits"),
    ("https://-node.park.org", "letters, digits"),
    ("https://node_1.park.org", "letters, digits"),
    ("https://узел.парк.рф", "punycode"),
    ("https://xn--zz.park.org", "not valid punycode"),
    ("https://" + ".".join(["a" * 60] * 5) + ".org", "longer than 253"),
    ("https://node.park.org/ path", "spaces"),
    ("https://localhost", "private or reserved"),
    ("https://ru.localhost", "private or reserved"),
    ("https://printer.local", "private or reserved"),
    ("https://db.internal", "private or reserved"),
    ("https://kubernetes.default.svc", "private or reserved"),
    ("https://1.0.0.10.in-addr.arpa", "private or reserved"),
    ("https://api.cluster.local", "private or reserved"),
    ("https://a[b.example.org", "not a well-formed URL"),
    ("https://[::1", "not a well-formed URL"),
    ("http://node.park.org", "must be https"),
    ("ftp://node.park.org", "must be https"),
    ("https://" + "a" * 2100 + ".org", "at most 2048"),
]


def join_request(url: str, member_id: str = "ru-lotl", *, iat: int) -> dict[str, str]:
    """The body of ``POST /members``: a join request for ``url`` signed by a fresh key."""
    key = SigningKey.generate()
    payload = {"member_id": member_id, "name": "Land of the Leopard National Park",
               "country": member_id[:2].upper(), "node_url": url,
               "keys": KeySet([key.public_key]).to_jwks(), "iat": iat}
    return {"request": sign_compact(json.dumps(payload).encode(), key, typ=JOIN_TYP)}


@pytest.fixture
def production(registry: RegistryHarness) -> FlaskClient:
    """The same registry (database, keys, clock) outside development mode, as deployed."""
    settings = dataclasses.replace(registry.settings, development=False)
    app = create_app({"CORRIDOR_SETTINGS": settings, "CORRIDOR_CLOCK": registry.clock,
                      "TESTING": True})
    return app.test_client()


def member(reg: RegistryHarness, member_id: str) -> Member | None:
    """The member row, if the registry stored one."""
    with reg.sessions() as session:
        return session.get(Member, member_id)


@pytest.mark.storage
@pytest.mark.parametrize(("url", "reason"), OBSERVED + MORE)
def test_an_inward_or_odd_node_url_is_refused_at_join(registry: RegistryHarness,
                                                      production: FlaskClient, url: str,
                                                      reason: str) -> None:
    response = production.post("/members", json=join_request(url, iat=registry.clock.epoch()))
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json or {}
    assert body["title"] == "Node URL refused" and body["status"] == 422
    assert body["detail"].startswith(f"node URL {url[:200]!r} refused: ")
    assert reason in body["detail"]
    assert member(registry, "ru-lotl") is None


@pytest.mark.parametrize(("url", "reason"), OBSERVED + MORE)
def test_check_node_url_says_which_rule(url: str, reason: str) -> None:
    with pytest.raises(InvalidNodeUrl, match="refused: .*" + reason.replace("?", r"\?")):
        check_node_url(url, development=False)


@pytest.mark.storage
def test_a_public_https_name_is_accepted_at_join(registry: RegistryHarness,
                                                 production: FlaskClient) -> None:
    response = production.post("/members", json=join_request(
        "https://node.amur-leopard.ru/", iat=registry.clock.epoch()))
    assert response.status_code == 202, response.text
    assert response.json == {"member_id": "ru-lotl", "status": "pending"}
    row = member(registry, "ru-lotl")
    assert row is not None and row.node_url == "https://node.amur-leopard.ru"


@pytest.mark.storage
def test_development_mode_still_accepts_loopback_at_join(registry: RegistryHarness,
                                                         production: FlaskClient) -> None:
    # The registry fixture runs in development mode, as the demo and the tests do.
    assert registry.settings.development
    url = "http://127.0.0.1:8401"
    accepted = registry.http.post("/members", json=join_request(url, iat=registry.clock.epoch()))
    assert accepted.status_code == 202, accepted.text
    row = member(registry, "ru-lotl")
    assert row is not None and row.node_url == url
    refused = production.post("/members", json=join_request(url, "cn-ntlnp",
                                                            iat=registry.clock.epoch()))
    assert refused.status_code == 422 and "must be https" in (refused.json or {})["detail"]


@pytest.mark.parametrize("url", [url for url, _ in OBSERVED])
def test_development_mode_does_not_open_the_observed_urls_either(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_node_url(url, development=True)


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://node.amur-leopard.ru", "https://node.amur-leopard.ru"),
    ("https://node.amur-leopard.ru:443/corridor/", "https://node.amur-leopard.ru/corridor"),
    ("https://xn--e1aybc.xn--p1ai", "https://xn--e1aybc.xn--p1ai"),  # punycode is canonical
])
def test_a_public_https_name_is_accepted(url: str, canonical: str) -> None:
    assert check_node_url(url, development=False) == canonical


@pytest.mark.parametrize("url", ["http://127.0.0.1:8401", "http://localhost:8401",
                                 "https://127.0.0.1:8443", "http://[::1]:8401"])
def test_development_mode_accepts_loopback(url: str) -> None:
    assert check_node_url(url, development=True) == url
    with pytest.raises(InvalidRequest):
        check_node_url(url, development=False)


@pytest.mark.parametrize("url, rule", [("https://10.0.0.1", "an IP address"),
                                       ("http://registry.park.org", "must be https://"),
                                       ("https://registry.park.org:8443", "port 8443")])
def test_registry_init_says_which_rule_its_url_breaks(tmp_path: Any, url: str,
                                                      rule: str) -> None:
    from corridor.config import SettingsError
    from registry.cli import init_registry

    with pytest.raises(SettingsError, match=f"registry URL .* refused: .*{rule}") as refused:
        init_registry(tmp_path / "registry", "R", url, development=False,
                      database_url=f"sqlite:///{tmp_path}/r.db")
    assert "--development" in str(refused.value)
    assert not (tmp_path / "registry").exists()

