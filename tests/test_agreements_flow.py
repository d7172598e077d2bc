"""Data-use agreements end to end, with a registry and nodes as real HTTP servers.

The story of issue 5 through the CLI a person types: ru-lotl asks cn-ntlnp for
its leopard data; cn's owner narrows and approves; ru accepts, fetches,
verifies; cn revokes and the next fetch is refused. Then the attacks: other
members probing, tokens used at the wrong node or for the wrong agreement,
query parameters that try to widen the release, and a compromised registry
minting a token for an agreement the provider never approved.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import logging
import re
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from corridor.package_reader import verify_package
from crypto.tokens import issue_access_token, new_jti
from node.exchange.fetch import FetchRefused, fetch_package
from node.exchange.refresher import exchange_agreements, start_refresher
from node.exchange.registry_client import client_for
from node.exchange.trust_store import TrustStore
from node.settings import load_settings as load_node_settings
from node.web.users import add_user
from policies.agreements import verify_document
from registry.settings import load_settings as load_registry_settings
from tests.conftest import fail, ok
from tests.packages import assert_frictionless_valid

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

POLICY = {
    "tiers": {"aggregate": {"aggregate_only": True},
              "generalized": {"default_precision": 0.1, "coarsen_time": "day",
                              "pseudonymize_individuals": True, "apply_sensitivity": True}},
    "purposes": ["joint-monitoring", "research"],
    "partners": ["*"],
    "max_duration_days": 365,
}
TODAY = datetime.now(UTC).date()
UNTIL = (TODAY + timedelta(days=300)).isoformat()
NARROWED_UNTIL = (TODAY + timedelta(days=200)).isoformat()


def agreement_id(output: str) -> str:
    match = re.search(r"(ru-lotl|kr-nie)\.[0-9a-f]{16}", output)
    assert match, output
    return match.group(0)


@pytest.fixture
def provider_ready(federation: Federation, camtrap_example: Path, tmp_path: Path) -> Federation:
    """cn-ntlnp holds the Camtrap DP example as leopards-2024 under a policy, published."""
    fed = federation
    fed.join_and_admit()
    ok(fed.node("cn-ntlnp", "import", "camtrap-dp", camtrap_example, "--name",
                "leopards-2024"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    ok(fed.node("cn-ntlnp", "policy", "leopards-2024", "--set", policy))
    ok(fed.node("cn-ntlnp", "publish", "leopards-2024", "--tier", "generalized"))
    return fed


def request(fed: Federation, member: str = "ru-lotl", *extra: str,
            until: str = UNTIL, purpose: str = "joint-monitoring") -> Any:
    return fed.node(member, "request", "create", "--dataset", "cn-ntlnp/leopards-2024",
                    "--purpose", purpose, "--tier", "generalized", "--until", until,
                    "--justification", "Joint leopard census across the border", *extra)


def make_active(fed: Federation, tmp_path: Path, *, narrow: bool = True,
                until: str = NARROWED_UNTIL) -> str:
    """Request, narrow + approve, accept: an active agreement of ru-lotl with cn-ntlnp."""
    agreement = agreement_id(ok(request(fed)))
    assert agreement in ok(fed.node("cn-ntlnp", "sync"))
    args = ["decide", agreement, "approve", "--reason", "for the census only"]
    if narrow:
        terms = tmp_path / f"narrow-{agreement}.yaml"
        terms.write_text(yaml.safe_dump({"until": until,
                                         "taxa": ["Vulpes vulpes", "Martes foina"]}))
        args += ["--narrow-terms", str(terms)]
    assert "approved" in ok(fed.node("cn-ntlnp", *args))
    assert "active" in ok(fed.node("ru-lotl", "request", "accept", agreement))
    ok(fed.node("cn-ntlnp", "sync"))
    return agreement


def package(fed: Federation, agreement: str, token: str | None, query: str = "",
            at: str = "cn-ntlnp") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, body = fed.servers[at].request(
        "GET", f"/agreements/{agreement}/package{query}", headers=headers)
    return status, body


def test_request_narrow_accept_fetch_verify_revoke(provider_ready: Federation,
                                                   tmp_path: Path) -> None:
    fed = provider_ready
    filed = ok(request(fed))
    agreement = agreement_id(filed)
    assert "filed" in filed

    pulled = ok(fed.node("cn-ntlnp", "sync"))
    assert f"New request {agreement} from ru-lotl" in pulled
    terms = tmp_path / "narrow.yaml"
    terms.write_text(yaml.safe_dump({"until": NARROWED_UNTIL, "taxa": ["Vulpes vulpes"]}))
    decided = ok(fed.node("cn-ntlnp", "decide", agreement, "approve", "--narrow-terms", terms,
                          "--reason", "foxes only, for the census"))
    assert "Approved with narrowed terms" in decided and "registry has it" in decided

    shown = ok(fed.node("ru-lotl", "request", "show", agreement))
    assert "APPROVED" in shown and "Vulpes vulpes" in shown and NARROWED_UNTIL in shown
    assert "foxes only, for the census" in shown
    assert "active" in ok(fed.node("ru-lotl", "request", "accept", agreement))
    assert f"Agreement {agreement} is now active" in ok(fed.node("cn-ntlnp", "sync"))

    # The signed agreement verifies offline with nothing but the trust list.
    document_file = tmp_path / "agreement.json"
    ok(fed.node("ru-lotl", "request", "show", agreement, "--document", document_file))
    trust_list = TrustStore(fed.nodes["ru-lotl"]).current()
    assert trust_list is not None
    document = verify_document(json.loads(document_file.read_text()),
                               keys_for=lambda m: trust_list.members[m].keys)
    assert document["terms"]["taxa"] == ["Vulpes vulpes"]

    out = tmp_path / "first.zip"
    fetched = ok(fed.node("ru-lotl", "fetch", agreement, "--out", out))
    assert "Fetched and verified" in fetched and "complete" in fetched
    report = verify_package(out, trust_list)
    assert report.ok, report.failure
    assert_frictionless_valid(out)
    meta = report.descriptor["corridor"]  # type: ignore[index]
    assert meta["agreement"] == agreement and meta["recipient"] == "ru-lotl"
    with zipfile.ZipFile(out) as archive:
        observations = archive.read("observations.csv").decode()
    species = {line.split(",")[0] for line in observations.splitlines()[1:]}
    names = [row for row in observations.splitlines()[1:] if row]
    assert names, "the narrowed agreement still releases the foxes"
    assert all("Vulpes vulpes" in row for row in names), species  # taxa narrowed
    again = ok(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "second.zip"))
    assert "incremental" in again  # resumes from the last good cursor

    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    revoked = ok(fed.node("cn-ntlnp", "revoke", agreement, "--reason", "poaching incident"))
    assert "registry has it" in revoked
    status, body = package(fed, agreement, token)
    problem = json.loads(body)
    assert status == 403 and problem["title"] == "Agreement not in force"
    assert "revoked by cn-ntlnp" in problem["detail"] and "poaching incident" in problem["detail"]
    assert problem["state"] == "revoked" and problem["revoked_at"].startswith(str(TODAY.year))
    refused = fail(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "third.zip"))
    assert not (tmp_path / "third.zip").exists()
    # The registry's own refusal of a token says when and why, as the README promises.
    said = " ".join(refused.split())
    assert re.search(rf"the registry gave no token: agreement {agreement} was revoked by "
                     rf"cn-ntlnp at {TODAY.year}-\d\d-\d\d \d\d:\d\d UTC: poaching incident",
                     said), said
    assert "REVOKED" in ok(fed.node("ru-lotl", "request", "show", agreement))


@pytest.mark.parametrize(("args", "reason"), [
    (["--dataset", "cn-ntlnp/tigers-1999"], "no catalog entry cn-ntlnp/tigers-1999"),
    (["--dataset", "leopards-2024"], "name the provider too, as PROVIDER/DATASET"),
    (["--purpose", "education"], "purpose 'education' is not allowed"),
    (["--until", (TODAY + timedelta(days=400)).isoformat()], "days is longer than the policy of"),
    (["--tier", "full"], "tier 'full' is not offered"),
])
def test_impossible_requests_are_refused_at_once(provider_ready: Federation, args: list[str],
                                                 reason: str) -> None:
    fed = provider_ready
    base = {"--dataset": "cn-ntlnp/leopards-2024", "--purpose": "joint-monitoring",
            "--tier": "generalized", "--until": UNTIL}
    base[args[0]] = args[1]
    flat = [item for pair in base.items() for item in pair]
    refused = fail(fed.node("ru-lotl", "request", "create", *flat, "--justification", "x"))
    assert reason in refused
    assert "No requests" in ok(fed.node("cn-ntlnp", "request", "list"))


def test_a_third_member_cannot_see_or_touch_anothers_agreement(
        provider_ready: Federation, tmp_path: Path) -> None:
    fed = provider_ready
    fed.add_node("kr-nie", "National Institute of Ecology", "KR")
    joined = ok(fed.node("kr-nie", "join"))
    kid = joined.rsplit("trust: ", 1)[1].split()[0]  # the id the institution tells the operator
    assert "key_ids" in ok(fed.registry_cli("members", "list"))
    members = {m["member"]: m for m in json.loads(ok(fed.registry_cli("members", "list",
                                                                      "--format", "json")))}
    assert members["kr-nie"]["status"] == "pending" and kid in members["kr-nie"]["key_ids"]
    refused = fail(fed.registry_cli("members", "admit", "kr-nie", "--kid", "not-" + kid))
    assert "not admitted" in refused
    ok(fed.registry_cli("members", "admit", "kr-nie", "--kid", kid))
    for member in fed.nodes:
        ok(fed.node(member, "sync"))
    agreement = make_active(fed, tmp_path)

    token = fed.token_for("kr-nie", "registry", "agreements:read agreements:write")
    headers = {"Authorization": f"Bearer {token}"}
    url = fed.registry.url
    with httpx.Client(timeout=10) as http:
        mine = http.get(f"{url}/agreements/{agreement}", headers=headers)
        missing = http.get(f"{url}/agreements/kr-nie.0000000000000000", headers=headers)
        assert mine.status_code == missing.status_code == 404
        assert mine.json()["detail"] == f"no agreement {agreement}"
        listed = http.get(f"{url}/agreements", headers=headers).json()
        assert listed["agreements"] == []
        pushed = http.post(f"{url}/agreements/{agreement}/events", headers=headers,
                           json={"events": ["a.b.c" * 4]})
        assert pushed.status_code == 404
    # Nor through the CLI, and kr gets no fetch token for it.
    assert "no agreement" in fail(fed.node("kr-nie", "request", "show", agreement))
    assert "no agreement" in fail(fed.node("kr-nie", "request", "withdraw", agreement))
    with pytest.raises(Exception, match="no such agreement"):
        fed.token_for("kr-nie", "cn-ntlnp", "agreement:fetch", agreement=agreement)


def test_tokens_are_bound_to_their_node_and_agreement(provider_ready: Federation,
                                                      tmp_path: Path) -> None:
    fed = provider_ready
    first = make_active(fed, tmp_path)
    second = make_active(fed, tmp_path, narrow=False)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=first)

    assert package(fed, first, token)[0] == 200
    status, body = package(fed, second, token)  # a token for X cannot fetch Y
    assert status == 403 and "another agreement" in json.loads(body)["detail"]
    status, _ = package(fed, first, token, at="ru-lotl")  # nor work at another node
    assert status == 401
    read_token = fed.token_for("ru-lotl", "cn-ntlnp", "node:read")
    assert package(fed, first, read_token)[0] == 403  # wrong scope
    assert package(fed, first, None)[0] == 401


@pytest.mark.parametrize("query", ["?tier=full", "?taxa=Panthera+pardus",
                                   "?time_from=1900-01-01", "?bbox=-180,-90,180,90",
                                   "?since=&tier=full", "?purpose=law-enforcement"])
def test_query_parameters_cannot_widen_the_release(provider_ready: Federation, tmp_path: Path,
                                                   query: str) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, body = package(fed, agreement, token, query)
    assert status == 422, body
    assert json.loads(body)["status"] == 422


def test_a_compromised_registry_cannot_grant_what_the_provider_never_approved(
        provider_ready: Federation) -> None:
    fed = provider_ready
    pending = agreement_id(ok(request(fed)))
    ok(fed.node("cn-ntlnp", "sync"))  # cn holds the request, undecided
    registry = load_registry_settings(fed.registry_dir)
    key = load_signing_key(registry.keys_dir)

    def forged(agreement: str) -> str:
        return issue_access_token(key, issuer=registry.issuer, subject="ru-lotl",
                                  audience="cn-ntlnp", scope="agreement:fetch",
                                  now=int(datetime.now(UTC).timestamp()), ttl=300,
                                  jti=new_jti(), extra={"agreement": agreement})

    status, body = package(fed, pending, forged(pending))
    assert status == 403 and "is requested, not active" in json.loads(body)["detail"]
    status, _ = package(fed, "ru-lotl.00000000deadbeef", forged("ru-lotl.00000000deadbeef"))
    assert status == 404  # an agreement the node never heard of


def test_an_expired_agreement_is_refused_with_its_end_date(provider_ready: Federation,
                                                           tmp_path: Path) -> None:
    fed = provider_ready
    last_day = TODAY.isoformat()
    agreement = make_active(fed, tmp_path, until=last_day)  # valid through today only
    registry = load_registry_settings(fed.registry_dir)
    later = datetime.now(UTC) + timedelta(days=2)  # within the stored trust list's life
    fed.clocks["cn-ntlnp"].offset = timedelta(days=2)
    token = issue_access_token(load_signing_key(registry.keys_dir), issuer=registry.issuer,
                               subject="ru-lotl", audience="cn-ntlnp",
                               scope="agreement:fetch", now=int(later.timestamp()), ttl=300,
                               jti=new_jti(), extra={"agreement": agreement})
    status, body = package(fed, agreement, token)
    problem = json.loads(body)
    assert status == 403 and problem["state"] == "expired", problem
    assert problem["expired_at"] == last_day and "expired at the end of" in problem["detail"]
    assert date.fromisoformat(problem["expired_at"]) < later.date()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_download_is_refused_and_not_kept(provider_ready: Federation, tmp_path: Path,
                                                    damage: str) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, good = package(fed, agreement, token)
    assert status == 200
    bad = good[: len(good) // 2] if damage == "truncate" else (
        good[:200] + bytes([good[200] ^ 1]) + good[201:])

    # The provider's connection is the IO boundary: it hands over damaged bytes.
    http = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=bad)))
    settings = load_node_settings(fed.nodes["ru-lotl"])
    from corridor.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    out = tmp_path / "damaged.zip"
    with make_session_factory(engine)() as session:
        trust_list = TrustStore(settings.directory).current()
        assert trust_list is not None
        with pytest.raises(FetchRefused, match="does not verify"):
            fetch_package(session, client_for(settings), trust_list, agreement_id=agreement,
                          out=out, since=None, now=datetime.now(UTC), http=http)
    assert not out.exists() and not out.with_name("damaged.zip.part").exists()
    assert "No package" not in ok(fed.node("ru-lotl", "request", "show", agreement))


def test_a_serving_node_pulls_requests_and_pushes_decisions_by_itself(
        provider_ready: Federation) -> None:
    fed = provider_ready
    agreement = agreement_id(ok(request(fed)))
    settings = load_node_settings(fed.nodes["cn-ntlnp"])
    report = exchange_agreements(settings, client_for(settings))  # one tick of the refresher
    assert report is not None and report.new_requests == [agreement]
    assert exchange_agreements(settings, client_for(settings)).new_requests == []  # type: ignore[union-attr]

    fed.registry.stop()  # the owner decides while the registry is down: kept locally
    decided = ok(fed.node("cn-ntlnp", "decide", agreement, "refuse", "--reason", "not now"))
    assert "unreachable" in decided and "next 'sync'" in decided
    assert exchange_agreements(settings, client_for(settings)) is None


def test_the_refresher_outlives_a_failure_nobody_foresaw(provider_ready: Federation,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fed = provider_ready
    settings = dataclasses.replace(load_node_settings(fed.nodes["cn-ntlnp"]), sync_interval=1,
                                   request_poll_interval=1, checkpoint_interval=0)
    agreement = agreement_id(ok(request(fed)))  # waits at the registry for cn-ntlnp to pull it
    trust = settings.directory / "trust"
    saved = trust.rename(settings.directory / "trust.saved")
    trust.write_text("a file where the trust store keeps its folder")  # OSError, never foreseen

    def pulled() -> bool:
        from corridor.db import make_engine, make_session_factory
        from node.models import Agreement

        engine = make_engine(settings.database_url)
        try:
            with make_session_factory(engine)() as session:
                return session.get(Agreement, agreement) is not None
        finally:
            engine.dispose()

    def failures() -> int:
        return sum("failed unexpectedly" in r.getMessage() and r.exc_info is not None
                   for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="node.exchange.refresher"):
        stop = start_refresher(settings)
        assert stop is not None
        try:
            deadline = time.monotonic() + 15
            while failures() < 4 and time.monotonic() < deadline:  # two turns of both tasks
                time.sleep(0.1)
            assert failures() >= 4, [r.getMessage() for r in caplog.records]
            assert not pulled()
            trust.unlink()
            saved.rename(trust)  # repaired: the same thread carries on at its next turn
            deadline = time.monotonic() + 15
            while not pulled() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert pulled()
        finally:
            stop.set()


def _provider_log(fed: Federation) -> list[dict[str, Any]]:
    from corridor.db import make_engine, make_session_factory
    from node.log.exchange_log import LOG

    engine = make_engine(load_node_settings(fed.nodes["cn-ntlnp"]).database_url)
    try:
        with make_session_factory(engine)() as session:
            return [e.event() for e in LOG.entries(session)]
    finally:
        engine.dispose()


def _descriptor_cursor(body: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        cursor: str = json.loads(archive.read("datapackage.json"))["corridor"]["cursor"]
    return cursor


def _altered(cursor: str) -> str:
    body, _, mac = cursor.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["o"] = 0  # "send me every observation again"
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + mac


@pytest.mark.parametrize("kind", ["forged", "altered", "foreign"])
def test_a_cursor_the_node_did_not_issue_for_this_agreement_is_refused_and_logged(
        provider_ready: Federation, tmp_path: Path, kind: str) -> None:
    from node.data.policy_store import cursor_key
    from node.exchange.package import Cursor

    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, body = package(fed, agreement, token)
    assert status == 200
    issued = _descriptor_cursor(body)
    if kind == "forged":
        cursor = "eyJvIjowfQ.AAAA"  # {"o":0} with a made-up MAC
    elif kind == "altered":
        cursor = _altered(issued)
    else:  # sealed by this very node, but for another agreement
        real = Cursor.decode(issued, cursor_key(load_node_settings(fed.nodes["cn-ntlnp"]).keys_dir))
        cursor = Cursor("ru-lotl.0000000000000000", real.dataset, real.version, real.basis,
                        0, 0, {}).encode(
            cursor_key(load_node_settings(fed.nodes["cn-ntlnp"]).keys_dir))
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, body = package(fed, agreement, token, f"?since={cursor}")
    problem = json.loads(body)
    assert status == 422, problem
    assert problem["title"] == "Cursor refused"
    assert problem["reason"] == ("foreign" if kind == "foreign" else "forged")
    refused = _provider_log(fed)[-1]
    assert refused["type"] == "fetch.refused" and refused["status"] == 422
    assert refused["agreement"] == agreement and refused["member"] == "ru-lotl"
    assert "package.started" not in [e["type"] for e in _provider_log(fed)[-2:]]


def test_a_cursor_from_before_a_policy_change_is_stale(provider_ready: Federation,
                                                        tmp_path: Path) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    first = tmp_path / "first.zip"
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", first))
    cursor = _descriptor_cursor(first.read_bytes())
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(yaml.safe_dump({**POLICY, "embargo_days": {"Vulpes vulpes": 30}}))
    ok(fed.node("cn-ntlnp", "policy", "leopards-2024", "--set", stricter))
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    status, body = package(fed, agreement, token, f"?since={cursor}")
    problem = json.loads(body)
    assert status == 422 and problem["reason"] == "stale", problem
    assert "--from-start" in problem["detail"]
    refused = fail(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "again.zip"))
    assert "--from-start" in refused  # the partner is told what to do
    assert "Fetched" in ok(fed.node("ru-lotl", "fetch", agreement, "--from-start",
                                    "--out", tmp_path / "again.zip"))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_the_old_unsigned_cursor_attacks_get_a_422(provider_ready: Federation,
                                                   tmp_path: Path) -> None:
    """Each cursor that once gave a 500 or a cut-off 200 is now refused before the first byte."""
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    attacks = [_b64('{"v":1e999,"o":0,"m":0}'), _b64('{"v":1,"o":1e999,"m":0}'),
               _b64("[" * 2000 + "]" * 2000), _b64(f'{{"v":1,"o":{10**30},"m":0}}'),
               _b64(f'{{"v":1,"o":0,"m":-{10**30}}}'),
               _b64('{"v":1,"o":0,"m":0,"c":{"Vulpes vulpes":"2024-01-01T00:00:00"}}'),
               _b64('{"v":1}') + "." + "A" * 5000]
    for cursor in attacks:
        token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
        status, body = package(fed, agreement, token, f"?since={cursor}")
        assert status == 422, (cursor[:40], body[:200])
        assert json.loads(body)["reason"] == "forged"
    refusals = [e for e in _provider_log(fed) if e["type"] == "fetch.refused"]
    assert len(refusals) == len(attacks) and {e["status"] for e in refusals} == {422}
    assert "package.started" not in [e["type"] for e in _provider_log(fed)]


def test_a_node_that_lost_its_secret_says_503_without_its_paths(provider_ready: Federation,
                                                               tmp_path: Path) -> None:
    from corridor.keystore import SESSION_SECRET_FILE

    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    secret = load_node_settings(fed.nodes["cn-ntlnp"]).keys_dir / SESSION_SECRET_FILE
    kept = tmp_path / "secret.bak"
    secret.rename(kept)  # a restore that forgot a file, a volume mounted without it
    try:
        token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
        status, body = package(fed, agreement, token)
    finally:
        kept.rename(secret)
    problem = json.loads(body)
    assert status == 503, problem
    assert problem["title"] == "The node cannot serve packages now"
    assert str(fed.nodes["cn-ntlnp"]) not in body.decode() and "/" not in problem["detail"]
    refused = _provider_log(fed)[-1]
    assert refused["type"] == "fetch.refused" and refused["status"] == 503
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    assert package(fed, agreement, token)[0] == 200  # the file back: served again


def test_request_list_keeps_ids_whole_and_speaks_json_and_csv(provider_ready: Federation
                                                              ) -> None:
    fed = provider_ready
    agreement = agreement_id(ok(request(fed)))
    table = ok(fed.node("cn-ntlnp", "request", "list"))  # pulls the request first
    assert any(agreement in line for line in table.splitlines())  # whole, on one line
    listed = json.loads(ok(fed.node("cn-ntlnp", "request", "list", "--format", "json")))
    [row] = [r for r in listed if r["id"] == agreement]
    assert (row["role"], row["other party"], row["state"]) == ("provider", "ru-lotl",
                                                               "requested")
    lines = ok(fed.node("ru-lotl", "request", "list", "--offline", "--format", "csv"))
    assert lines.splitlines()[0] == "id,role,other party,dataset,tier,state,until"
    assert any(line.startswith(f"{agreement},requester,cn-ntlnp,") for line in lines.splitlines())


def test_the_owner_tries_a_decision_from_the_cli_before_signing_it(
        provider_ready: Federation, tmp_path: Path, camtrap_example: Path) -> None:
    fed = provider_ready
    agreement = agreement_id(ok(request(fed)))
    ok(fed.node("cn-ntlnp", "sync"))
    foxes = tmp_path / "foxes.yaml"
    foxes.write_text(yaml.safe_dump({"taxa": ["Vulpes vulpes"]}))
    tried = ok(fed.node("cn-ntlnp", "decide", agreement, "approve", "--narrow-terms", foxes,
                        "--dry-run"))
    # Computed from the source: the example's fox records (none withheld or embargoed).
    with (camtrap_example / "observations.csv").open(encoding="utf-8", newline="") as fh:
        expected = sum(o["scientificName"] == "Vulpes vulpes" for o in csv.DictReader(fh))
    assert "What approval would release" in tried and "tier generalized for ru-lotl" in tried
    assert re.search(rf"observations\s+│\s+{expected}\b", tried), tried
    assert "Nothing was signed (--dry-run)" in tried
    whole = ok(fed.node("cn-ntlnp", "decide", agreement, "approve", "--dry-run"))
    assert not re.search(rf"observations\s+│\s+{expected}\s", whole)  # all taxa: more rows
    assert "REQUESTED" in ok(fed.node("cn-ntlnp", "request", "show", agreement, "--offline"))

    wider = tmp_path / "wider.yaml"
    wider.write_text(yaml.safe_dump({"tier": "full"}))
    assert "cannot narrow" in fail(fed.node("cn-ntlnp", "decide", agreement, "approve",
                                            "--narrow-terms", wider, "--dry-run"))
    assert "give --reason" in fail(fed.node("cn-ntlnp", "decide", agreement, "approve"))
    assert "its provider decides it" in fail(fed.node("ru-lotl", "decide", agreement,
                                                      "approve", "--dry-run"))


def test_a_fetch_while_the_registry_is_down_says_what_that_means(
        provider_ready: Federation, tmp_path: Path) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    fed.registry.stop()
    out = tmp_path / "down.zip"
    said = " ".join(fail(fed.node("ru-lotl", "fetch", agreement, "--out", out)).split())
    assert "fetch refused" not in said, said  # nobody refused: the registry is not there
    assert f"the registry at {fed.registry.url} cannot be reached" in said
    assert "a new token, request or catalog search needs the registry" in said
    assert not out.exists()



def test_a_fetch_right_after_accepting_is_served_without_waiting_for_the_poll(
        provider_ready: Federation, tmp_path: Path) -> None:
    fed = provider_ready
    agreement = agreement_id(ok(request(fed)))
    ok(fed.node("cn-ntlnp", "sync"))
    ok(fed.node("cn-ntlnp", "decide", agreement, "approve", "--reason", "agreed"))
    early = " ".join(fail(fed.node("ru-lotl", "fetch", agreement, "--out",
                                   tmp_path / "early.zip")).split())
    assert "is approved, not active" in early  # the requester has not accepted yet

    assert "active" in ok(fed.node("ru-lotl", "request", "accept", agreement))
    # No 'sync' at cn-ntlnp: the token's arrival makes it ask the registry there and then.
    fetched = ok(fed.node("ru-lotl", "fetch", agreement, "--out", tmp_path / "now.zip"))
    assert "Fetched and verified" in fetched
    shown = ok(fed.node("cn-ntlnp", "request", "show", agreement, "--offline"))
    assert "ACTIVE" in shown and "accept" in shown  # the acceptance, verified and stored



PARTNER_PASSWORD = "a partner's long password"


def _page(base: str, user: str, path: str) -> str:
    """``path`` on a node's pages, signed in as ``user``, whitespace folded."""
    with httpx.Client(base_url=base, timeout=30) as http:
        login = http.get("/login").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
        assert token
        signed_in = http.post("/login", data={"csrf_token": token.group(1), "username": user,
                                               "password": PARTNER_PASSWORD})
        assert signed_in.status_code in (302, 303), signed_in.text[:300]
        return " ".join(http.get(path).text.split())


def test_the_partner_pages_show_the_state_last_checked_and_when(
        provider_ready: Federation, tmp_path: Path) -> None:
    fed = provider_ready
    agreement = make_active(fed, tmp_path)
    settings = load_node_settings(fed.nodes["ru-lotl"])
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        add_user(session, "lena", PARTNER_PASSWORD, "owner", now=datetime.now(UTC))
        session.commit()
    engine.dispose()
    base = fed.servers["ru-lotl"].url
    page = _page(base, "lena", f"/requests/{agreement}")
    assert re.search(r'state-active">active</span></h1> <p class="muted checked">State as '
                     r"checked with the registry \d{4}-\d\d-\d\d \d\d:\d\d UTC \(just now\)",
                     page), page[:2000]
    ok(fed.node("cn-ntlnp", "revoke", agreement, "--reason", "poaching incident"))
    # Until ru-lotl syncs, its page says what it last checked, and when.
    assert 'state-active">active' in _page(base, "lena", f"/requests/{agreement}")
    exchange_agreements(settings, client_for(settings))  # what the refresher does each minute
    page = _page(base, "lena", "/agreements")
    assert 'state-revoked">revoked</span><br><span class="muted checked">as checked with ' \
           "the registry" in page
