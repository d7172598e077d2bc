"""Join requests are unauthenticated: what one may change is what its signer already holds.

Anyone can ``POST /members``. A pending application (not yet admitted by the
operator) must not be taken over by a stranger's request for the same id,
and a malformed request must be a 4xx, never a 500.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from registry.membership.members import JOIN_TYP
from registry.models import MemberKey
from tests.registry.test_registry_log import size

if TYPE_CHECKING:
    from tests.registry.conftest import RegistryHarness

pytestmark = pytest.mark.storage


def _request(key: SigningKey, url: str, *, iat: int, keys: KeySet | None = None,
             member_id: str = "cn-ntlnp") -> dict[str, str]:
    payload = {"member_id": member_id, "name": "Northeast China Tiger and Leopard NP",
               "country": "CN", "node_url": url,
               "keys": (keys or KeySet([key.public_key])).to_jwks(), "iat": iat}
    return {"request": sign_compact(json.dumps(payload).encode(), key, typ=JOIN_TYP)}


def _kids(reg: RegistryHarness, member_id: str) -> set[str]:
    with reg.sessions() as session:
        return {k.kid for k in session.query(MemberKey).filter_by(member_id=member_id)}


def test_a_stranger_cannot_replace_a_pending_application(registry: RegistryHarness) -> None:
    reg, iat = registry, registry.clock.epoch()
    owner, stranger = SigningKey.generate(), SigningKey.generate()
    client = reg.app.test_client()
    first = client.post("/members", json=_request(owner, "http://127.0.0.1:7001", iat=iat))
    assert first.status_code == 202, first.text
    start = size(reg)
    taken = client.post("/members", json=_request(stranger, "http://127.0.0.1:6666", iat=iat))
    assert taken.status_code == 409, taken.text
    assert taken.headers["Content-Type"] == "application/problem+json"
    assert "pending request under other keys" in taken.json["detail"]
    assert _kids(reg, "cn-ntlnp") == {owner.kid}
    assert size(reg) == start  # nothing on the record for a stranger's attempt
    # A stranger who lists the owner's public key beside their own does not sign with it.
    both = KeySet([owner.public_key, stranger.public_key])
    assert client.post("/members", json=_request(stranger, "http://127.0.0.1:6666", iat=iat,
                                                 keys=both)).status_code == 409
    assert _kids(reg, "cn-ntlnp") == {owner.kid}


def test_the_applicant_can_still_correct_a_pending_application(
        registry: RegistryHarness) -> None:
    reg, iat = registry, registry.clock.epoch()
    owner, new = SigningKey.generate(), SigningKey.generate()
    client = reg.app.test_client()
    assert client.post("/members", json=_request(owner, "http://127.0.0.1:7001",
                                                 iat=iat)).status_code == 202
    # Signed by the key on file, it may bring a new URL and a new key.
    moved = client.post("/members", json=_request(
        owner, "http://127.0.0.1:7002", iat=iat, keys=KeySet([owner.public_key,
                                                               new.public_key])))
    assert moved.status_code == 202, moved.text
    assert _kids(reg, "cn-ntlnp") == {owner.kid, new.kid}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_deeply_nested_join_payload_is_refused_not_a_500(registry: RegistryHarness) -> None:
    header = _b64(json.dumps({"alg": "EdDSA", "kid": "x", "typ": JOIN_TYP}).encode())
    deep = _b64(b"[" * 40_000 + b"]" * 40_000)
    response = registry.app.test_client().post(
        "/members", json={"request": f"{header}.{deep}.{_b64(b'sig')}"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["Content-Type"] == "application/problem+json"


def test_one_address_may_file_only_so_many_join_requests(registry: RegistryHarness) -> None:
    from registry.api import JOIN_LIMIT, JOIN_WINDOW

    reg, iat = registry, registry.clock.epoch()
    here, elsewhere = reg.app.test_client(), reg.app.test_client()
    here.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.4"

    def join(client: object, n: int) -> object:
        key = SigningKey.generate()
        return client.post("/members", json=_request(  # type: ignore[attr-defined]
            key, f"http://127.0.0.1:{7000 + n}", iat=iat, member_id=f"cn-spam{n:03d}"))

    assert [join(here, n).status_code for n in range(JOIN_LIMIT)] == [202] * JOIN_LIMIT
    start = size(reg)
    refused = join(here, JOIN_LIMIT)
    assert refused.status_code == 429, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 0 < int(refused.headers["Retry-After"]) <= JOIN_WINDOW.total_seconds()
    assert size(reg) == start  # no member.joined entry, no pending row
    assert join(elsewhere, 100).status_code == 202
    reg.clock.advance(int(JOIN_WINDOW.total_seconds()) + 1)
    iat = reg.clock.epoch()
    assert join(here, 101).status_code == 202
