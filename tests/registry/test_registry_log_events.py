"""Every refusal on the record at the registry: catalog publications, revocations and
refused revocations are exchange-log entries, written in the transaction that makes them;
an authenticated member's refused token request, publication or witness submission too.

A live registry on loopback, real keys and tokens, the real HTTP API. What is
not a decision leaves no entry: a token that is unknown or already revoked
(RFC 7009 still answers 200), a request whose client authentication fails
(no caller to put on the record, and the log must not be writable by
anyone), a catalog entry re-sent unchanged.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from crypto.keys import KeySet, SigningKey
from crypto.tokens import ASSERTION_TYPE, CLOCK_LEEWAY
from node.data.catalog import catalog_entry, sign_entry
from node.models import Dataset
from policies.agreements import next_event, replay
from registry.models import IssuedToken
from tests.registry.test_registry_log import entries, size, stamp

if TYPE_CHECKING:
    import httpx

    from tests.registry.conftest import Institution, RegistryHarness

pytestmark = pytest.mark.storage


# --- revocation ----------------------------------------------------------------------------


def test_a_revocation_is_logged_with_the_time_it_set_and_never_the_token(
        registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    token = reg.token(ru, audience="cn-ntlnp", scope="node:read")
    [issued] = entries(reg, size(reg) - 1)
    start = size(reg)
    reg.clock.advance(7)
    assert (reg.revoke(ru, token).status_code, reg.revoke(ru, token).json()) == (200, {})
    [revoked] = entries(reg, start)  # the second revocation changed nothing, logged nothing
    with reg.sessions() as session:
        row = session.get(IssuedToken, issued["jti"])
        assert row is not None and row.revoked_at is not None
    assert revoked["type"] == "token.revoked" and revoked["member"] == "ru-lotl"
    assert revoked["jti"] == issued["jti"] and revoked["audience"] == "cn-ntlnp"
    assert "agreement" not in revoked  # only a fetch token names one
    # Written with the row it records, at the instant it sets (one transaction).
    assert row.revoked_at == reg.clock() and revoked["at"] == stamp(reg.clock())
    assert token not in json.dumps(revoked) and token.split(".")[2] not in json.dumps(revoked)
    assert reg.introspect(cn, token).json() == {"active": False}


def test_revoking_anothers_token_is_refused_on_the_record_and_revokes_nothing(
        registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    token = reg.token(ru, audience="cn-ntlnp", scope="node:read")
    jti = entries(reg)[-1]["jti"]
    start = size(reg)
    response = reg.revoke(cn, token)
    assert (response.status_code, response.json()) == (200, {})  # RFC 7009: learns nothing
    [refused] = entries(reg, start)
    assert {k: v for k, v in refused.items() if k not in ("index", "at")} == {
        "type": "token.revoke_refused", "member": "cn-ntlnp", "jti": jti,
        "reason": "the token is ru-lotl's, not the caller's"}
    assert token not in json.dumps(refused)
    assert reg.introspect(cn, token).json()["active"] is True  # still good


@pytest.mark.parametrize("token", [
    "not-a-token",
    "e30.e30.e30",
    "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJqdGkiOiJ4In0.AAAA",
])
def test_revoking_an_unknown_token_answers_200_and_leaves_no_entry(
        registry: RegistryHarness, token: str, caplog: pytest.LogCaptureFixture) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    start = size(reg)
    with caplog.at_level(logging.INFO, logger="registry.exchange.oauth"):
        response = reg.revoke(ru, token)
    assert (response.status_code, response.json()) == (200, {})  # RFC 7009 §2.2
    assert size(reg) == start
    # ...but the operator sees who probes with tokens that are not theirs to revoke
    assert any("revocation by ru-lotl" in r.getMessage() for r in caplog.records)
    assert not any(token in r.getMessage() for r in caplog.records)


def test_revoking_an_expired_token_leaves_no_entry(registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    token = reg.token(ru)
    reg.clock.advance(reg.settings.token_ttl + CLOCK_LEEWAY + 1)  # no longer verifies anywhere
    start = size(reg)
    assert reg.revoke(ru, token).status_code == 200
    assert size(reg) == start


def _revoke_with(reg: RegistryHarness, token: str, assertion: str) -> httpx.Response:
    return reg.post("/oauth/revoke", {"token": token, "client_assertion_type": ASSERTION_TYPE,
                                      "client_assertion": assertion})


def test_a_revocation_without_valid_client_authentication_is_refused_off_the_record(
        registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    token = reg.token(ru, audience="cn-ntlnp", scope="node:read")
    start = size(reg)
    refused = [
        _revoke_with(reg, token, reg.assertion(ru, key=SigningKey.generate())),  # forged
        _revoke_with(reg, token, reg.assertion(ru, exp=reg.clock.epoch() - 1)),  # stale
        reg.post("/oauth/revoke", {"token": token}),  # none at all
    ]
    for response in refused:
        assert (response.status_code, response.json()["error"]) == (400, "invalid_client")
    assert size(reg) == start
    assert reg.introspect(cn, token).json()["active"] is True


# --- catalog -------------------------------------------------------------------------------


def _entry(reg: RegistryHarness, cn: Institution, *, version: int) -> str:
    dataset = Dataset(name="tigers", version=version, profile="camtrap-dp",
                      title="Camera traps", description="Amur tigers.", licenses=[],
                      taxa=["Panthera tigris"], counts={"observations": 10},
                      temporal_start="2022-01-01", temporal_end="2022-12-31", bbox_west=130.8,
                      bbox_south=42.6, bbox_east=131.9, bbox_north=43.4)
    document = catalog_entry(dataset, member_id="cn-ntlnp", country="CN",
                             contact="science@example.org", tiers=["generalized"],
                             now=reg.clock())
    return sign_entry(document, cn.key)


def _publish(reg: RegistryHarness, cn: Institution, jws: str) -> httpx.Response:
    token = reg.token(cn, scope="catalog:write")
    return reg.http.post("/catalog", json={"entry": jws},
                         headers={"Authorization": f"Bearer {token}"})


def test_a_publication_over_the_api_is_logged_and_a_resend_is_not(
        registry: RegistryHarness) -> None:
    reg = registry
    cn = reg.add_member("cn-ntlnp")
    first = _entry(reg, cn, version=1)
    start = size(reg)
    assert _publish(reg, cn, first).status_code == 200
    published = [e for e in entries(reg, start) if e["type"] != "token.issued"]
    assert [(e["type"], e["member"], e["dataset"], e["version"]) for e in published] == [
        ("catalog.published", "cn-ntlnp", "tigers", 1)]
    start = size(reg)
    assert _publish(reg, cn, first).status_code == 200  # the very same JWS: nothing changes
    assert [e["type"] for e in entries(reg, start)] == ["token.issued"]
    reg.clock.advance(60)
    newer = _entry(reg, cn, version=2)
    start = size(reg)
    assert _publish(reg, cn, newer).status_code == 200
    [replaced] = [e for e in entries(reg, start) if e["type"] == "catalog.published"]
    assert replaced["version"] == 2 and replaced["entry_sha256"] != published[0]["entry_sha256"]


def test_a_refused_publication_is_on_the_record(registry: RegistryHarness) -> None:
    reg = registry
    cn = reg.add_member("cn-ntlnp")
    older = _entry(reg, cn, version=1)
    reg.clock.advance(60)
    assert _publish(reg, cn, _entry(reg, cn, version=2)).status_code == 200
    start = size(reg)
    assert _publish(reg, cn, older).status_code == 409  # signed before the one published
    forged = _entry(reg, cn, version=3)[:-6] + "AAAAAA"
    assert _publish(reg, cn, forged).status_code in (400, 422)
    logged = [e for e in entries(reg, start) if e["type"] != "token.issued"]
    assert [(e["type"], e["member"]) for e in logged] == [("catalog.refused", "cn-ntlnp")] * 2
    assert "already published" in logged[0]["reason"]
    assert all(len(e["reason"]) <= 200 for e in logged)


def test_a_publication_in_anothers_name_is_refused_on_the_record(
        registry: RegistryHarness) -> None:
    reg = registry
    cn, ru = reg.add_member("cn-ntlnp"), reg.add_member("ru-lotl")
    start = size(reg)
    response = _publish(reg, ru, _entry(reg, cn, version=1))  # cn-ntlnp's entry, sent by ru
    assert 400 <= response.status_code < 500, response.text
    [refused] = [e for e in entries(reg, start) if e["type"] != "token.issued"]
    assert (refused["type"], refused["member"]) == ("catalog.refused", "ru-lotl")


# --- refused token requests and witness submissions ------------------------------------


@pytest.mark.parametrize(("form", "error"), [
    ({"audience": "ru-lotl", "scope": "node:read"}, "invalid_target"),  # itself
    ({"audience": "cn-ntlnp", "scope": "agreement:fetch",
      "agreement": "cn-ntlnp.00112233aabbccdd"},
     "invalid_target"),  # an agreement that is not the caller's
    ({"audience": "registry", "scope": "everything"}, "invalid_scope"),
])
def test_a_refused_token_request_is_on_the_record(registry: RegistryHarness,
                                                  form: dict[str, str], error: str) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    reg.add_member("cn-ntlnp")
    start = size(reg)
    response = reg.request_token(ru, **form)
    assert response.status_code == 400 and response.json()["error"] == error, response.text
    [refused] = entries(reg, start)
    assert (refused["type"], refused["member"], refused["error"]) == (
        "token.refused", "ru-lotl", error)
    assert refused["audience"] == form["audience"] and refused["reason"]


def test_a_checkpoint_for_anothers_log_is_refused_on_the_record(
        registry: RegistryHarness) -> None:
    reg = registry
    ru = reg.add_member("ru-lotl")
    reg.add_member("cn-ntlnp")
    token = reg.token(ru, scope="witness:submit")
    start = size(reg)
    response = reg.http.post("/witness/cn-ntlnp", json={"note": "x", "old_size": 0, "proof": []},
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403, response.text
    [refused] = entries(reg, start)
    assert (refused["type"], refused["member"], refused["log_of"]) == (
        "witness.refused", "ru-lotl", "cn-ntlnp")


# --- a fetch token's revocation names its agreement --------------------------------------

AGREEMENT = "ru-lotl.00112233aabbccdd"


def _active_agreement(reg: RegistryHarness, ru: Institution, cn: Institution) -> None:
    """ru-lotl requests cn-ntlnp's tigers, cn-ntlnp approves, ru-lotl accepts."""
    assert _publish(reg, cn, _entry(reg, cn, version=1)).status_code == 200
    until = (reg.clock().date() + timedelta(days=100)).isoformat()
    terms = {"provider": "cn-ntlnp", "dataset": "cn-ntlnp/tigers",
             "purpose": "joint-monitoring", "tier": "generalized", "until": until}

    def keys_for(member: str) -> KeySet:
        return KeySet([reg.members[member].key.public_key])

    request = next_event(None, action="request", actor="ru-lotl", role="requester",
                         at=reg.clock(), key=ru.key, terms=terms, agreement_id=AGREEMENT)
    approve = next_event(replay([request.jws], keys_for=keys_for), action="approve",
                         actor="cn-ntlnp", role="provider", at=reg.clock(), key=cn.key)
    accept = next_event(replay([request.jws, approve.jws], keys_for=keys_for),
                        action="accept", actor="ru-lotl", role="requester", at=reg.clock(),
                        key=ru.key)
    by = {m.member_id: {"Authorization": f"Bearer {reg.token(m, scope='agreements:write')}"}
          for m in (ru, cn)}
    assert reg.http.post("/agreements", json={"event": request.jws},
                         headers=by["ru-lotl"]).status_code == 201
    for member, event in (("cn-ntlnp", approve), ("ru-lotl", accept)):  # each its own
        pushed = reg.http.post(f"/agreements/{AGREEMENT}/events",
                               json={"events": [event.jws]}, headers=by[member])
        assert pushed.status_code == 200, pushed.text
    assert pushed.json()["state"] == "active"


def test_revoking_a_fetch_token_names_its_agreement(registry: RegistryHarness) -> None:
    reg = registry
    ru, cn = reg.add_member("ru-lotl"), reg.add_member("cn-ntlnp")
    _active_agreement(reg, ru, cn)
    response = reg.request_token(ru, audience="cn-ntlnp", scope="agreement:fetch",
                                 agreement=AGREEMENT)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    start = size(reg)
    assert reg.revoke(ru, token).status_code == 200
    [revoked] = entries(reg, start)
    assert (revoked["type"], revoked["member"], revoked["agreement"]) == (
        "token.revoked", "ru-lotl", AGREEMENT)
