"""The registry's exchange log: every accepted action leaves its entry, a refused one none.

A live registry on loopback, real keys and tokens. Each test reads the log's
leaves back (the canonical JSON that is hashed) and checks their fields.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from crypto.merkle import leaf_hash, root_from_leaf_hashes
from deploy.cli import main
from node.data.catalog import catalog_entry, sign_entry
from node.models import Dataset
from policies.agreements import Agreement, next_event, replay
from registry.exchange.catalog import publish_entry
from registry.log.exchange_log import LOG
from registry.membership.members import JOIN_TYP, KEY_PROOF_TYP
from registry.models import (
    MEMBER_ACTIVE,
    MEMBER_PENDING,
    MEMBER_SUSPENDED,
    IssuedToken,
    TrustListVersion,
)

if TYPE_CHECKING:
    from tests.registry.conftest import Institution, RegistryHarness

pytestmark = pytest.mark.storage


def entries(reg: RegistryHarness, start: int = 0) -> list[dict[str, Any]]:
    """The log's leaves from ``start``, decoded."""
    with reg.sessions() as session:
        return [e.event() for e in LOG.entries(session, start)]


def size(reg: RegistryHarness) -> int:
    with reg.sessions() as session:
        return LOG.size(session)


def stamp(at: datetime) -> str:
    """How the log writes a time."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def without_meta(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("index", "at")}


def trust_list_digest(reg: RegistryHarness, version: int) -> str:
    with reg.sessions() as session:
        row = session.get(TrustListVersion, version)
        assert row is not None
        return hashlib.sha256(row.jws.encode("ascii")).hexdigest()


# --- membership and the trust list ----------------------------------------------------


def test_join_admit_suspend_are_logged_with_the_trust_lists(registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl", status=MEMBER_PENDING)
    joined = entries(reg)
    assert [without_meta(e) for e in joined] == [{
        "type": "member.joined", "member": "ru-lotl", "country": "RU",
        "name": "Institution ru-lotl", "kids": [ru.key.kid]}]
    assert joined[0]["index"] == 0 and joined[0]["at"] == stamp(reg.clock())

    reg.clock.advance(60)
    reg.set_status("ru-lotl", MEMBER_ACTIVE)
    reg.add_member("cn-ntlnp")
    reg.set_status("ru-lotl", MEMBER_SUSPENDED)
    events = [without_meta(e) for e in entries(reg, 1)]
    assert events == [
        {"type": "member.status", "member": "ru-lotl", "status": "active",
         "previous": "pending"},
        {"type": "trustlist.published", "version": 1, "sha256": trust_list_digest(reg, 1),
         "members": 1},
        {"type": "member.joined", "member": "cn-ntlnp", "country": "CN",
         "name": "Institution cn-ntlnp", "kids": [reg.members["cn-ntlnp"].key.kid]},
        {"type": "member.status", "member": "cn-ntlnp", "status": "active",
         "previous": "pending"},
        {"type": "trustlist.published", "version": 2, "sha256": trust_list_digest(reg, 2),
         "members": 2},
        {"type": "member.status", "member": "ru-lotl", "status": "suspended",
         "previous": "active"},
        {"type": "trustlist.published", "version": 3, "sha256": trust_list_digest(reg, 3),
         "members": 1},
    ]
    # The leaves are what the tree hashes: the stored root is theirs.
    with reg.sessions() as session:
        stored = LOG.entries(session)
        assert LOG.root(session, len(stored)) == root_from_leaf_hashes(
            [leaf_hash(e.leaf.encode()) for e in stored])


def test_the_operator_cli_logs_admission(registry: RegistryHarness) -> None:
    reg = registry
    reg.add_member("ru-lotl", status=MEMBER_PENDING)
    start = size(reg)
    result = CliRunner().invoke(main, ["registry", "--dir", str(reg.settings.directory),
                                       "members", "admit", "ru-lotl"])
    assert result.exit_code == 0, result.output
    assert [(e["type"], e.get("member"), e.get("status"), e.get("version"))
            for e in entries(reg, start)] == [
        ("member.status", "ru-lotl", "active", None), ("trustlist.published", None, None, 1)]
    # Admitting again is refused and logs nothing.
    again = CliRunner().invoke(main, ["registry", "--dir", str(reg.settings.directory),
                                      "members", "admit", "ru-lotl"])
    assert again.exit_code != 0 and "already active" in again.output
    assert size(reg) == start + 2


def test_the_first_trust_list_fetched_is_logged(registry: RegistryHarness) -> None:
    reg = registry
    response = reg.http.get("/trust-list")
    assert response.status_code == 200
    [event] = entries(reg)
    assert without_meta(event) == {
        "type": "trustlist.published", "version": 1,
        "sha256": hashlib.sha256(response.json()["jws"].encode()).hexdigest(), "members": 0}
    reg.http.get("/trust-list")
    assert size(reg) == 1  # served again, not published again


def test_refused_membership_actions_leave_no_entry(registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    start = size(reg)
    with pytest.raises(Exception, match="already active"):
        reg.set_status("ru-lotl", MEMBER_ACTIVE)
    # A join request for a member id that is taken.
    impostor = SigningKey.generate()
    payload = {"member_id": "ru-lotl", "name": "Impostor", "country": "RU",
               "node_url": "http://127.0.0.1:9",
               "keys": KeySet([impostor.public_key]).to_jwks(), "iat": reg.clock.epoch()}
    jws = sign_compact(json.dumps(payload).encode(), impostor, typ=JOIN_TYP)
    assert reg.http.post("/members", json={"request": jws}).status_code == 409
    # A badly signed one.
    assert reg.http.post("/members", json={"request": jws[:-4] + "AAAA"}).status_code == 400
    assert size(reg) == start
    # A key proof by another key than the one added.
    token = reg.token(ru, scope="keys:write")
    start = size(reg)
    new = SigningKey.generate()
    proof = sign_compact(json.dumps({"member_id": "ru-lotl", "kid": new.kid,
                                     "iat": reg.clock.epoch()}).encode(), ru.key,
                         typ=KEY_PROOF_TYP)
    response = reg.http.post("/members/me/keys", json={"jwk": new.public_key.to_jwk(),
                                                       "proof": proof},
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    # Retiring the only key.
    response = reg.http.delete(f"/members/me/keys/{ru.key.kid}",
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 409
    assert size(reg) == start


def test_key_rotation_is_logged(registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    token = reg.token(ru, scope="keys:write")
    start = size(reg)
    new = SigningKey.generate()
    proof = sign_compact(json.dumps({"member_id": "ru-lotl", "kid": new.kid,
                                     "iat": reg.clock.epoch()}).encode(), new,
                         typ=KEY_PROOF_TYP)
    headers = {"Authorization": f"Bearer {token}"}
    added = reg.http.post("/members/me/keys", json={"jwk": new.public_key.to_jwk(),
                                                    "proof": proof}, headers=headers)
    assert added.status_code == 201, added.text
    retired = reg.http.delete(f"/members/me/keys/{ru.key.kid}", headers=headers)
    assert retired.status_code == 200, retired.text
    assert [without_meta(e) for e in entries(reg, start)] == [
        {"type": "member.key_added", "member": "ru-lotl", "kid": new.kid},
        {"type": "trustlist.published", "version": 2, "sha256": trust_list_digest(reg, 2),
         "members": 1},
        {"type": "member.key_rotated", "member": "ru-lotl", "kid": ru.key.kid,
         "active": [new.kid]},
        {"type": "trustlist.published", "version": 3, "sha256": trust_list_digest(reg, 3),
         "members": 1},
    ]


# --- tokens ------------------------------------------------------------------------------


def test_every_issued_token_is_logged_with_its_row(registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    reg.add_member("cn-ntlnp")
    start = size(reg)
    reg.token(ru, scope="catalog:read catalog:write")
    reg.token(ru, audience="cn-ntlnp", scope="node:read")
    events = entries(reg, start)
    with reg.sessions() as session:
        rows = {r.jti: r for r in session.scalars(select(IssuedToken))}
    assert [e["type"] for e in events] == ["token.issued", "token.issued"]
    for event, (audience, scope) in zip(events, [("registry", "catalog:read catalog:write"),
                                                 ("cn-ntlnp", "node:read")], strict=True):
        row = rows[event["jti"]]
        assert without_meta(event) == {
            "type": "token.issued", "member": "ru-lotl", "jti": row.jti, "audience": audience,
            "scope": scope, "expires_at": row.expires_at.isoformat().replace("+00:00", "Z")}
        assert "agreement" not in event
        assert row.expires_at == reg.clock() + timedelta(seconds=reg.settings.token_ttl)


def test_a_refused_token_request_is_logged_only_once_the_caller_is_authenticated(
        registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    start = size(reg)
    assert reg.request_token(ru, scope="catalog:read admin").status_code == 400
    assert reg.request_token(ru, audience="xx-nobody", scope="node:read").status_code == 400
    assert [(e["type"], e["member"]) for e in entries(reg, start)] == [
        ("token.refused", "ru-lotl")] * 2
    start = size(reg)
    forged = reg.request_token(ru, assertion=reg.assertion(ru, key=SigningKey.generate()))
    assert forged.json()["error"] == "invalid_client"
    assert size(reg) == start  # no caller to put on the record


def test_a_revocation_is_logged_and_a_revocation_of_anothers_token_too(
        registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    token = reg.token(ru, audience="cn-ntlnp", scope="node:read")
    jti = entries(reg)[-1]["jti"]
    start = size(reg)
    assert reg.revoke(cn, token).status_code == 200  # RFC 7009: 200, and nothing revoked
    assert reg.revoke(ru, token).status_code == 200
    assert reg.revoke(ru, token).status_code == 200  # again: already revoked, no new entry
    refused, revoked = entries(reg, start)
    assert without_meta(refused) == {
        "type": "token.revoke_refused", "member": "cn-ntlnp", "jti": jti,
        "reason": "the token is ru-lotl's, not the caller's"}
    assert without_meta(revoked) == {"type": "token.revoked", "member": "ru-lotl", "jti": jti,
                                     "audience": "cn-ntlnp"}
    assert token not in json.dumps([refused, revoked])  # never the token itself


def test_a_catalog_publication_is_logged(registry: RegistryHarness) -> None:
    reg = registry
    cn = reg.add_member("cn-ntlnp")
    start = size(reg)
    _provider_publishes(reg, cn)
    [published] = entries(reg, start)
    assert published["type"] == "catalog.published" and published["member"] == "cn-ntlnp"
    assert published["dataset"] == "tigers" and published["version"] == 1
    assert published["tiers"] == ["generalized"] and len(published["entry_sha256"]) == 64


# --- agreements --------------------------------------------------------------------------

UNTIL = (datetime.now(UTC).date() + timedelta(days=100)).isoformat()
AGREEMENT = "ru-lotl.00112233aabbccdd"


def _provider_publishes(reg: RegistryHarness, cn: Institution) -> None:
    dataset = Dataset(name="tigers", version=1, profile="camtrap-dp", title="Camera traps",
                      description="Amur tigers.", licenses=[], taxa=["Panthera tigris"],
                      counts={"observations": 10}, temporal_start="2022-01-01",
                      temporal_end="2022-12-31", bbox_west=130.8, bbox_south=42.6,
                      bbox_east=131.9, bbox_north=43.4)
    document = catalog_entry(dataset, member_id="cn-ntlnp", country="CN",
                             contact="science@example.org", tiers=["generalized"],
                             now=reg.clock())
    with reg.sessions() as session:
        publish_entry(session, sign_entry(document, cn.key), sender="cn-ntlnp",
                      now=reg.clock())
        session.commit()


def _keys_for(reg: RegistryHarness) -> Any:
    return lambda member: KeySet([reg.members[member].key.public_key])


def test_an_agreement_request_and_its_events_are_logged(registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    _provider_publishes(reg, cn)
    ru_token = reg.token(ru, scope="agreements:read agreements:write")
    cn_token = reg.token(cn, scope="agreements:read agreements:write")
    terms = {"provider": "cn-ntlnp", "dataset": "cn-ntlnp/tigers",
             "purpose": "joint-monitoring", "tier": "generalized", "until": UNTIL}
    start = size(reg)

    request = next_event(None, action="request", actor="ru-lotl", role="requester",
                         at=reg.clock(), key=ru.key, terms=terms, agreement_id=AGREEMENT)
    filed = reg.http.post("/agreements", json={"event": request.jws},
                          headers={"Authorization": f"Bearer {ru_token}"})
    assert filed.status_code == 201, filed.text
    history = [request.jws]
    agreement: Agreement = replay(history, keys_for=_keys_for(reg))
    approve = next_event(agreement, action="approve", actor="cn-ntlnp", role="provider",
                         at=reg.clock(), key=cn.key)
    history.append(approve.jws)
    pushed = reg.http.post(f"/agreements/{AGREEMENT}/events", json={"events": [approve.jws]},
                           headers={"Authorization": f"Bearer {cn_token}"})
    assert pushed.status_code == 200, pushed.text
    agreement = replay(history, keys_for=_keys_for(reg))
    accept = next_event(agreement, action="accept", actor="ru-lotl", role="requester",
                        at=reg.clock(), key=ru.key)
    # A retried push: the approval is already held, only the acceptance is new.
    pushed = reg.http.post(f"/agreements/{AGREEMENT}/events",
                           json={"events": [approve.jws, accept.jws]},
                           headers={"Authorization": f"Bearer {ru_token}"})
    assert pushed.status_code == 200 and pushed.json()["state"] == "active", pushed.text
    # The very same push again: nothing new, nothing logged.
    again = reg.http.post(f"/agreements/{AGREEMENT}/events",
                          json={"events": [approve.jws, accept.jws]},
                          headers={"Authorization": f"Bearer {ru_token}"})
    assert again.status_code == 200

    expected = [
        {"type": "agreement.event", "agreement": AGREEMENT, "member": "ru-lotl",
         "provider": "cn-ntlnp", "action": action, "actor": actor, "seq": seq,
         "event_sha256": hashlib.sha256(jws.encode()).hexdigest()}
        for seq, (action, actor, jws) in enumerate([
            ("request", "ru-lotl", request.jws), ("approve", "cn-ntlnp", approve.jws),
            ("accept", "ru-lotl", accept.jws)])]
    assert [without_meta(e) for e in entries(reg, start)] == expected
    with reg.sessions() as session:
        assert [e.index for e in LOG.entries(session, start)] == [start, start + 1, start + 2]

    # A fetch token for the active agreement names it.
    start = size(reg)
    response = reg.request_token(ru, audience="cn-ntlnp", scope="agreement:fetch",
                                 agreement=AGREEMENT)
    assert response.status_code == 200, response.text
    [token_event] = entries(reg, start)
    assert token_event["type"] == "token.issued" and token_event["agreement"] == AGREEMENT
    assert token_event["scope"] == "agreement:fetch" and token_event["audience"] == "cn-ntlnp"
    with reg.sessions() as session:
        [by_agreement] = [e.event() for e in LOG.entries(session, start)
                          if e.event().get("agreement") == AGREEMENT]
        assert by_agreement == token_event


def test_refused_agreement_events_leave_no_entry(registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    _provider_publishes(reg, cn)
    ru_token = reg.token(ru, scope="agreements:write")
    cn_token = reg.token(cn, scope="agreements:write")
    start = size(reg)
    headers = {"Authorization": f"Bearer {ru_token}"}
    bad_tier = {"provider": "cn-ntlnp", "dataset": "cn-ntlnp/tigers",
                "purpose": "joint-monitoring", "tier": "full", "until": UNTIL}
    event = next_event(None, action="request", actor="ru-lotl", role="requester",
                       at=reg.clock(), key=ru.key, terms=bad_tier, agreement_id=AGREEMENT)
    assert reg.http.post("/agreements", json={"event": event.jws},
                         headers=headers).status_code == 403
    # Signed by another member's key.
    terms = {**bad_tier, "tier": "generalized"}
    forged = next_event(None, action="request", actor="ru-lotl", role="requester",
                        at=reg.clock(), key=cn.key, terms=terms, agreement_id=AGREEMENT)
    assert reg.http.post("/agreements", json={"event": forged.jws},
                         headers=headers).status_code == 400
    assert size(reg) == start
    request = next_event(None, action="request", actor="ru-lotl", role="requester",
                         at=reg.clock(), key=ru.key, terms=terms, agreement_id=AGREEMENT)
    assert reg.http.post("/agreements", json={"event": request.jws},
                         headers=headers).status_code == 201
    assert size(reg) == start + 1
    # The same id again; then the requester approving its own request.
    assert reg.http.post("/agreements", json={"event": request.jws},
                         headers=headers).status_code == 409
    agreement = replay([request.jws], keys_for=_keys_for(reg))
    approve = next_event(agreement, action="approve", actor="cn-ntlnp", role="provider",
                         at=reg.clock(), key=cn.key)
    assert reg.http.post(f"/agreements/{AGREEMENT}/events", json={"events": [approve.jws]},
                         headers=headers).status_code == 400  # pushed by ru, signed by cn
    assert size(reg) == start + 1
    assert reg.http.post(f"/agreements/{AGREEMENT}/events", json={"events": [approve.jws]},
                         headers={"Authorization": f"Bearer {cn_token}"}).status_code == 200
    assert entries(reg, start + 1)[0]["action"] == "approve"
