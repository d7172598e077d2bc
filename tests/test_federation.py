"""Two nodes and a registry as real HTTP servers: join, admit, sync, publish, find, tokens.

This is the user story of issue 3 end to end, driven through the same CLI a
person types, plus the failure modes of the trust plane: a registry that goes
down (nodes keep verifying from their stored trust list) and a stored list
that expires (nodes refuse, clearly).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from corridor.keystore import load_signing_key
from crypto.keys import SigningKey
from node.exchange.oauth_client import TokenClient, TokenError
from node.exchange.trust_store import TrustStore

pytestmark = pytest.mark.storage

#: The ``federation`` fixture's class lives in tests/conftest.py (not importable here).
Federation = Any


def node(fed: Federation, member_id: str, *args: str | Path) -> Result:
    return fed.node(member_id, *args)


def registry_cli(fed: Federation, *args: str) -> Result:
    return fed.registry_cli(*args)


def join_and_admit(fed: Federation) -> None:
    fed.join_and_admit()


def token_for(fed: Federation, member_id: str, audience: str, scope: str = "node:read") -> str:
    return fed.token_for(member_id, audience, scope)


def whoami(fed: Federation, at: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, body = fed.servers[at].request("GET", "/whoami", headers=headers)
    return status, json.loads(body)


def test_two_nodes_join_publish_and_find_each_other(
    federation: Federation, camtrap_example: Path, arocha: Path
) -> None:
    fed = federation
    join_and_admit(fed)

    ru = node(fed, "ru-lotl", "import", "camtrap-dp", camtrap_example, "--name", "leopards-2024")
    assert ru.exit_code == 0, ru.output
    cn = node(fed, "cn-ntlnp", "import", "dwc", arocha / "events.csv",
              arocha / "occurrences.csv", "--dataset", "flyway-counts")
    assert cn.exit_code == 0, cn.output
    published = node(fed, "ru-lotl", "publish", "leopards-2024", "--tier", "aggregate",
                     "--tier", "generalized")
    assert published.exit_code == 0, published.output
    assert "Published ru-lotl/leopards-2024" in published.output
    assert node(fed, "cn-ntlnp", "publish", "flyway-counts").exit_code == 0

    found = node(fed, "cn-ntlnp", "catalog", "--country", "RU")
    assert found.exit_code == 0, found.output
    assert "ru-lotl/leopards-2024" in found.output
    assert "cn-ntlnp/flyway-counts" not in found.output
    by_taxon = node(fed, "ru-lotl", "catalog", "--taxon", "Limosa lapponica")
    assert "cn-ntlnp/flyway-counts" in by_taxon.output
    # The example says Anas strepera; the IOC name, the genus, family and common names find it.
    for query in ("Mareca strepera", "Anas strepera", "Mareca", "gadwall", "赤膀鸭", "Mammalia"):
        shown = node(fed, "cn-ntlnp", "catalog", "--taxon", query)
        assert "ru-lotl/leopards-2024" in shown.output, (query, shown.output)
        assert "cn-ntlnp/flyway-counts" not in shown.output, query
    gadwall = " ".join(node(fed, "cn-ntlnp", "catalog", "--taxon", "Anas strepera").output.split())
    assert "read as Gadwall (Mareca strepera)" in gadwall, gadwall
    assert "matched Mareca strepera" in gadwall, gadwall
    # Kenya's Anas erythrorhyncha and Spatula hottentota are ducks too.
    ducks = node(fed, "ru-lotl", "catalog", "--taxon", "Anatidae").output
    assert "cn-ntlnp/flyway-counts" in ducks and "ru-lotl/leopards-2024" in ducks
    # Herons and spoonbills: both datasets hold some (Ardea cinerea; Platalea alba in Kenya).
    herons = " ".join(node(fed, "ru-lotl", "catalog", "--taxon", "heron").output.split())
    assert "ru-lotl/leopards-2024" in herons and "cn-ntlnp/flyway-counts" in herons, herons
    assert "Grey Heron (Ardea cinerea)" in herons
    spoonbills = node(fed, "ru-lotl", "catalog", "--taxon", "Platalea").output
    assert "cn-ntlnp/flyway-counts" in spoonbills and "ru-lotl/leopards-2024" not in spoonbills
    # A genus outside the backbone still finds its species, by prefix (Kenya's Thalasseus).
    assert "cn-ntlnp/flyway-counts" in node(fed, "ru-lotl", "catalog", "--taxon",
                                            "Thalasseus").output
    listed = node(fed, "cn-ntlnp", "catalog", "--country", "RU", "--format", "json")
    [entry] = json.loads(listed.stdout)
    assert entry["id"] == "ru-lotl/leopards-2024" and entry["tiers"] == ["aggregate",
                                                                          "generalized"]
    csv_out = node(fed, "cn-ntlnp", "catalog", "--country", "RU", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("id,country,profile,title,taxa,")
    assert "aggregate; generalized" in csv_out


def test_tokens_verify_at_the_node_and_keep_working_while_the_registry_is_down(
    federation: Federation
) -> None:
    fed = federation
    join_and_admit(fed)
    token = token_for(fed, "ru-lotl", "cn-ntlnp")

    status, body = whoami(fed, "cn-ntlnp", token)
    assert status == 200 and body["member_id"] == "ru-lotl"
    status, body = whoami(fed, "ru-lotl", token)  # a token for cn is no good at ru
    assert status == 401 and body["title"] == "Invalid access token"
    assert whoami(fed, "cn-ntlnp", None)[0] == 401

    fed.registry.stop()
    status, body = whoami(fed, "cn-ntlnp", token)
    assert status == 200, body  # verified from the stored trust list alone
    down = node(fed, "cn-ntlnp", "sync")
    assert down.exit_code == 1
    said = " ".join(down.output.split())
    assert f"the registry at {fed.registry.url} cannot be reached" in said, said
    assert "Agreements in force keep working at this node until its trust list (version" in said
    # The catalog needs the registry and says so, not "request_failed: [Errno 111]".
    failed = " ".join(node(fed, "ru-lotl", "catalog").output.split())
    assert "cannot be reached (Connection refused)" in failed and "request_failed" not in failed

    fed.clocks["cn-ntlnp"].offset = timedelta(days=8)  # past the stored list's expiry
    status, body = whoami(fed, "cn-ntlnp", token)
    assert status == 503
    assert body["title"] == "Trust list unavailable"
    assert "expired" in body["detail"]


def test_suspended_member_leaves_the_trust_list(federation: Federation) -> None:
    fed = federation
    join_and_admit(fed)
    token = token_for(fed, "ru-lotl", "cn-ntlnp")
    assert registry_cli(fed, "members", "suspend", "ru-lotl").exit_code == 0
    synced = node(fed, "cn-ntlnp", "sync")
    assert "members: cn-ntlnp" in synced.output and "ru-lotl" not in synced.output
    status, _ = whoami(fed, "cn-ntlnp", token)
    assert status == 401  # the node learns of the suspension from its trust list


def test_key_rotation_with_overlap_then_retirement(federation: Federation) -> None:
    fed = federation
    join_and_admit(fed)
    keys_dir = fed.nodes["ru-lotl"] / "keys"
    old = load_signing_key(keys_dir)

    rotated = node(fed, "ru-lotl", "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    new = load_signing_key(keys_dir)
    assert new.kid != old.kid and f"Old key {old.kid} stays valid" in rotated.output
    jwks = json.loads(node(fed, "ru-lotl", "keys").output)
    assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid}

    node(fed, "cn-ntlnp", "sync")
    trust = TrustStore(fed.nodes["cn-ntlnp"]).current()
    assert trust is not None
    entry = trust.member("ru-lotl")
    assert entry is not None and {old.kid, new.kid} <= set(entry.keys)

    def token_with(key: SigningKey) -> str:
        return TokenClient(fed.registry.url, f"{fed.registry.url}/oauth/token", "ru-lotl", key,
                           http=httpx.Client(timeout=10),
                           clock=lambda: datetime.now(UTC)).token("cn-ntlnp", "node:read")

    assert whoami(fed, "cn-ntlnp", token_with(old))[0] == 200  # overlap: both keys work
    assert whoami(fed, "cn-ntlnp", token_with(new))[0] == 200

    refused = node(fed, "ru-lotl", "keys", "retire", "--", new.kid)
    assert refused.exit_code == 1 and "active key" in refused.output
    retired = node(fed, "ru-lotl", "keys", "retire", "--", old.kid)
    assert retired.exit_code == 0, retired.output
    assert (keys_dir / "retired" / f"{old.kid}.pem").exists()
    with pytest.raises(TokenError) as excinfo:
        token_with(old)
    assert excinfo.value.error == "invalid_client"
    node(fed, "cn-ntlnp", "sync")
    trust = TrustStore(fed.nodes["cn-ntlnp"]).current()
    assert trust is not None and set(trust.member("ru-lotl").keys) == {new.kid}  # type: ignore[union-attr]
