"""The node's exchange log (DESIGN.md §10): what is logged, when, and with what.

Two halves. On one node and its own database (PostgreSQL when
``CORRIDOR_TEST_DATABASE_URL`` is set): each agreement step, policy change
and package is logged in the transaction of its action, and an action that
fails leaves nothing. Then the whole story between two nodes and a registry
on loopback: both logs tell it in order, the package's signed descriptor
names the provider's entry, both sides agree on its content digest, and the
registry witnesses the nodes' checkpoints.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import struct
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from sqlalchemy.orm import Session

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key, public_keys
from corridor.package_reader import verify_package
from corridor.tlog import node_origin
from crypto.checkpoint import Checkpoint, verify_note
from crypto.keys import KeySet, SigningKey
from crypto.package import content_digest, resource_entries
from crypto.tokens import AccessClaims
from deploy.cli import main as corridor_command
from node.cli import generate_and_import
from node.data.importer import Importer
from node.data.policy_store import cursor_key, set_policy
from node.exchange.agreements import STORE, AgreementNotInForce, act, plan_for, restore, store_view
from node.exchange.agreements_api import ServedPackage
from node.exchange.package import exporter_for
from node.exchange.refresher import checkpoint_once
from node.exchange.registry_client import RegistryClient, client_for
from node.exchange.trust_store import TrustStore
from node.log.exchange_log import LOG
from node.log.witness import (
    COSIGNED,
    NOT_SUBMITTED,
    REFUSED,
    checkpoint_and_submit,
    submit_checkpoint,
)
from node.models import DatasetPolicy, LogCheckpoint, Receipt
from node.settings import NodeSettings
from node.settings import load_settings as load_node_settings
from policies.agreements import AgreementError, event_digest, next_event
from registry.settings import load_settings as load_registry_settings
from tests.conftest import ok

pytestmark = pytest.mark.storage

Federation = Any  # the fixture's class lives in tests/conftest.py

NOW = datetime.now(UTC).replace(microsecond=0)
UNTIL = (NOW + timedelta(days=200)).date().isoformat()
PARTNER = "cn-ntlnp"
PARTNER_KEY = SigningKey.generate()
AGREEMENT = "cn-ntlnp.0123456789abcdef"
DATASET = "camtrap-dp-example-dataset"
TERMS = {"provider": "ru-lotl", "dataset": f"ru-lotl/{DATASET}", "purpose": "joint-monitoring",
         "tier": "generalized", "until": UNTIL}
POLICY = {
    "tiers": {"aggregate": {"aggregate_only": True},
              "generalized": {"default_precision": 0.1, "coarsen_time": "day",
                              "pseudonymize_individuals": True, "apply_sensitivity": True}},
    "purposes": ["joint-monitoring", "research"],
    "partners": ["*"],
    "max_duration_days": 365,
}
#: Keys that would mean a leaf carries locations (Camtrap DP and Darwin Core spellings).
COORDINATE_KEYS = {"latitude", "longitude", "decimalLatitude", "decimalLongitude",
                   "coordinates", "lat", "lon", "bbox", "geometry"}
MAX_LEAF_BYTES = 1024


# --- helpers ---------------------------------------------------------------------------


@contextmanager
def database(settings: NodeSettings) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def leaves(settings: NodeSettings) -> list[dict[str, Any]]:
    """Every entry of the node's log, decoded, in order."""
    with database(settings) as session:
        return [e.event() for e in LOG.entries(session)]


def types(settings: NodeSettings) -> list[str]:
    return [leaf["type"] for leaf in leaves(settings)]


def log_size(settings: NodeSettings) -> int:
    with database(settings) as session:
        return LOG.size(session)


def keys_for(settings: NodeSettings) -> Any:
    return lambda m: (KeySet([PARTNER_KEY.public_key]) if m == PARTNER
                      else public_keys(settings.keys_dir))


def partner_event(settings: NodeSettings, action: str, **kwargs: Any) -> None:
    """The partner's next signed event, merged as after a sync."""
    with database(settings) as session:
        row = STORE.get(session, AGREEMENT)
        before = restore(session, row) if row is not None else None
        event = next_event(before, action=action, actor=PARTNER, role="requester", at=NOW,
                           key=PARTNER_KEY, agreement_id=AGREEMENT, **kwargs)
        history = STORE.history(session, AGREEMENT) if row is not None else []
        store_view(session, {"id": AGREEMENT, "events": [*history, event.jws]},
                   me=settings.member_id, keys_for=keys_for(settings), now=NOW)
        session.commit()


def owner_acts(settings: NodeSettings, action: str, reason: str | None = None) -> None:
    with database(settings) as session:
        act(session, me=settings.member_id, key=load_signing_key(settings.keys_dir),
            keys_dir=settings.keys_dir, agreement_id=AGREEMENT, action=action, now=NOW,
            reason=reason)
        session.commit()


def assert_no_raw_data(entries: list[dict[str, Any]]) -> None:
    for leaf in entries:
        text = json.dumps(leaf)
        assert len(text.encode()) < MAX_LEAF_BYTES, leaf
        nested = [leaf, *(v for v in leaf.values() if isinstance(v, dict))]
        for obj in nested:
            assert not COORDINATE_KEYS & set(obj), leaf


@pytest.fixture
def node(node_settings: NodeSettings, camtrap_example: Path) -> NodeSettings:
    """ru-lotl holding the Camtrap DP example under a policy that allows the partner."""
    engine = make_engine(node_settings.database_url)
    Importer(engine).import_camtrap(camtrap_example)
    engine.dispose()
    with database(node_settings) as session:
        set_policy(session, DATASET, POLICY, NOW)
        session.commit()
    return node_settings


@pytest.fixture
def active(node: NodeSettings) -> NodeSettings:
    """The partner's request, approved by the owner and accepted: an active agreement."""
    partner_event(node, "request", terms=TERMS, reason="Leopards cross the border here.")
    owner_acts(node, "approve", "for the census")
    partner_event(node, "accept")
    return node


def claims(jti: str = "jti-0001") -> AccessClaims:
    return AccessClaims(subject=PARTNER, client_id=PARTNER, audience="ru-lotl",
                        scope=frozenset({"agreement:fetch"}), jti=jti,
                        issued_at=int(NOW.timestamp()), expires_at=int(NOW.timestamp()) + 300,
                        extra={"agreement": AGREEMENT})


def served_package(settings: NodeSettings, engine: sa.Engine) -> ServedPackage:
    """What the package endpoint streams for the partner's token, as it builds it."""
    with make_session_factory(engine)() as session:
        row = STORE.get(session, AGREEMENT)
        dataset, plan, _ = plan_for(session, row, keys_dir=settings.keys_dir, now=NOW)
    exporter = exporter_for(engine, dataset, plan, provider=settings.member_id,
                            key=load_signing_key(settings.keys_dir), now=NOW,
                            cursor_key=cursor_key(settings.keys_dir),
                            recipient=PARTNER, agreement=AGREEMENT, since=None)
    served = ServedPackage(exporter, engine=engine, clock=lambda: NOW, me=settings.member_id,
                           claims=claims(), agreement_id=AGREEMENT, since=None)
    served.start()  # as the endpoint does, before the first byte
    return served


class FailingSink(io.BytesIO):
    """The client's connection: fails once ``when()`` says so (the client went away)."""

    def __init__(self, when: Any) -> None:
        super().__init__()
        self.when = when

    def write(self, data: Any, /) -> int:
        if self.when():
            raise BrokenPipeError("the client went away")
        return super().write(data)


# --- one node, its own database ----------------------------------------------------------


def test_each_agreement_step_is_logged_with_the_other_party(node: NodeSettings) -> None:
    assert types(node) == ["policy.changed"]
    partner_event(node, "request", terms=TERMS, reason="Leopards cross the border here.")
    owner_acts(node, "approve", "for the census")
    partner_event(node, "accept")
    owner_acts(node, "revoke", "poaching incident")

    entries = leaves(node)
    assert [e["type"] for e in entries] == [
        "policy.changed", "request.received", "request.decided", "agreement.signed",
        "agreement.revoked"]
    assert [e["index"] for e in entries] == list(range(5))
    received, decided, signed, revoked = entries[1:]
    assert received["member"] == PARTNER and received["agreement"] == AGREEMENT
    assert (received["dataset"], received["purpose"], received["tier"]) == (
        f"ru-lotl/{DATASET}", "joint-monitoring", "generalized")
    assert decided["decision"] == "approve" and decided["reason"] == "for the census"
    assert signed["role"] == "provider" and re.fullmatch(r"[0-9a-f]{64}",
                                                         signed["document_sha256"])
    assert revoked["by"] == "ru-lotl" and revoked["reason"] == "poaching incident"
    assert [e["seq"] for e in entries[1:]] == [0, 1, 2, 3]
    with database(node) as session:
        history = STORE.history(session, AGREEMENT)
    assert [e["event"] for e in entries[1:]] == [event_digest(j) for j in history]
    assert_no_raw_data(entries)


def test_a_failed_action_leaves_no_entry(node: NodeSettings) -> None:
    partner_event(node, "request", terms=TERMS)
    size = log_size(node)

    with pytest.raises(AgreementError):  # the state machine refuses: nothing signed
        owner_acts(node, "revoke", "not even active")
    forged = next_event(None, action="request", actor=PARTNER, role="requester", at=NOW,
                        key=SigningKey.generate(), terms=TERMS,
                        agreement_id="cn-ntlnp.00000000deadbeef")
    with database(node) as session, pytest.raises(AgreementError):
        store_view(session, {"id": forged.agreement, "events": [forged.jws]},
                   me=node.member_id, keys_for=keys_for(node), now=NOW)
    # A decision whose transaction fails after it was logged: both are rolled back.
    with database(node) as session:
        act(session, me=node.member_id, key=load_signing_key(node.keys_dir),
            keys_dir=node.keys_dir, agreement_id=AGREEMENT, action="refuse", now=NOW,
            reason="no")
        assert LOG.size(session) == size + 1
        session.rollback()
    with database(node) as session:
        set_policy(session, DATASET, {**POLICY, "purposes": ["research"]}, NOW)
        session.rollback()
        stored = session.get(DatasetPolicy, DATASET)
        assert stored is not None and stored.document == POLICY

    assert log_size(node) == size
    with database(node) as session:
        assert STORE.get(session, AGREEMENT).state == "requested"
        assert STORE.get(session, "cn-ntlnp.00000000deadbeef") is None


def test_a_policy_change_is_logged_once_with_both_digests(node: NodeSettings) -> None:
    with database(node) as session:
        set_policy(session, DATASET, dict(POLICY), NOW)  # the same policy again: no change
        session.commit()
        narrower = set_policy(session, DATASET, {**POLICY, "purposes": ["research"]}, NOW)
        session.commit()
    first, second = leaves(node)
    assert first["type"] == second["type"] == "policy.changed"
    assert first["dataset"] == DATASET and first["previous_digest"] != first["policy_digest"]
    assert second["previous_digest"] == first["policy_digest"]
    assert second["policy_digest"] == narrower.digest()


def test_a_served_package_names_its_log_entry_in_its_signed_descriptor(
        active: NodeSettings, tmp_path: Path) -> None:
    engine = make_engine(active.database_url)
    out = io.BytesIO()
    served = served_package(active, engine)
    result = served.write(out)
    engine.dispose()
    path = tmp_path / "package.zip"
    path.write_bytes(out.getvalue())

    report = verify_package(path, public_keys(active.keys_dir))
    assert report.ok and report.descriptor is not None, report.failure
    meta = report.descriptor["corridor"]
    started, entry = leaves(active)[-2:]
    assert started["type"] == "package.started" and started["index"] == served.started
    assert started["member"] == PARTNER and started["token_jti"] == "jti-0001"
    assert started["plan_digest"] == result.plan_digest
    assert entry["type"] == "package.served" and entry["index"] == served.index
    assert entry["started_index"] == started["index"]
    assert meta["log_index"] == entry["index"]
    assert meta["log_origin"] == node_origin("ru-lotl")
    assert entry["member"] == PARTNER and entry["agreement"] == AGREEMENT
    assert entry["token_jti"] == "jti-0001" and entry["since"] is None
    assert entry["plan_digest"] == meta["plan"]["digest"] == result.plan_digest
    assert entry["rows"] == meta["rows"] and entry["cursor"] == meta["cursor"]
    assert entry["content_sha256"] == content_digest(resource_entries(report.descriptor))
    assert_no_raw_data(leaves(active))


def test_a_package_that_fails_while_streaming_is_logged_as_started_and_unfinished(
        active: NodeSettings) -> None:
    size = log_size(active)
    engine = make_engine(active.database_url)
    served = served_package(active, engine)
    written = [0]

    def halfway() -> bool:  # the client goes away in the middle of the resources
        written[0] += 1
        return written[0] > 3

    with pytest.raises(BrokenPipeError):
        served.write(FailingSink(halfway))
    engine.dispose()
    assert served.index is None and log_size(active) == size + 2
    started, unfinished = leaves(active)[-2:]
    assert started["type"] == "package.started"
    assert unfinished["type"] == "package.unfinished"
    assert unfinished["started_index"] == started["index"]
    assert unfinished["served_index"] is None and unfinished["reason"] == "BrokenPipeError"
    assert sum(unfinished["rows_sent"].values()) > 0


def test_a_package_that_fails_after_it_was_logged_is_marked_unfinished(
        active: NodeSettings) -> None:
    engine = make_engine(active.database_url)
    served = served_package(active, engine)
    with pytest.raises(BrokenPipeError):  # fails writing the descriptor, after the seal
        served.write(FailingSink(lambda: served.index is not None))
    engine.dispose()
    last, unfinished = leaves(active)[-2:]
    assert last["type"] == "package.served" and last["index"] == served.index
    assert unfinished["type"] == "package.unfinished"
    assert unfinished["served_index"] == served.index
    assert unfinished["reason"] == "BrokenPipeError"


def test_a_revocation_while_streaming_refuses_the_package(active: NodeSettings) -> None:
    engine = make_engine(active.database_url)
    served = served_package(active, engine)
    revoked = [False]

    def revoke_once() -> bool:  # the owner revokes while the first bytes go out
        if not revoked[0]:
            revoked[0] = True
            owner_acts(active, "revoke", "poaching incident")
        return False

    with pytest.raises(AgreementNotInForce):
        served.write(FailingSink(revoke_once))
    engine.dispose()
    tail = leaves(active)[-3:]
    assert [e["type"] for e in tail] == ["agreement.revoked", "fetch.refused",
                                         "package.unfinished"]
    assert tail[1]["status"] == 403 and tail[1]["token_jti"] == "jti-0001"
    assert tail[2]["reason"] == "AgreementNotInForce"
    assert "package.served" not in types(active)


def test_checkpoints_are_signed_by_the_node_key(node: NodeSettings) -> None:
    engine = make_engine(node.database_url)
    factory = make_session_factory(engine)
    result = checkpoint_and_submit(node, None, factory, None, NOW)
    assert result.outcome == NOT_SUBMITTED and result.size == 1
    again = checkpoint_and_submit(node, None, factory, None, NOW, only_if_grown=True)
    assert again.outcome == NOT_SUBMITTED and again.detail == "not sent to the registry"
    with factory() as session:
        row = LOG.latest_checkpoint(session)
        assert LOG.root(session, 1) == row.root
    engine.dispose()
    key = load_signing_key(node.keys_dir)
    body, names = verify_note(row.note, {"ru-lotl": key.public_key})
    assert names == {"ru-lotl"}
    assert Checkpoint.from_body(body) == Checkpoint(node_origin("ru-lotl"), 1, row.root)


def test_a_witness_refusal_is_kept_with_the_checkpoint(node: NodeSettings) -> None:
    """The registry's 409 (its problem detail) is stored; nothing is marked cosigned."""
    requests: list[httpx.Request] = []

    def registry(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer",
                                             "expires_in": 300})
        if request.method == "GET":
            return httpx.Response(404, json={"title": "Not found", "status": 404})
        return httpx.Response(409, headers={"Content-Type": "application/problem+json"},
                              json={"title": "Conflict", "status": 409,
                                    "detail": "checkpoint 1 is not consistent"})

    client = RegistryClient("https://registry.test", member_id="ru-lotl",
                            key=load_signing_key(node.keys_dir),
                            http=httpx.Client(transport=httpx.MockTransport(registry)),
                            clock=lambda: NOW)
    trust_list: Any = type("Trust", (), {"registry_keys": KeySet()})()
    engine = make_engine(node.database_url)
    factory = make_session_factory(engine)
    checkpoint_and_submit(node, None, factory, None, NOW)
    result = submit_checkpoint(node, client, factory, trust_list, NOW)
    with factory() as session:
        row = session.get(LogCheckpoint, 1)
    engine.dispose()
    assert result.outcome == REFUSED and result.detail == "checkpoint 1 is not consistent"
    assert row.witness_problem == "checkpoint 1 is not consistent" and row.cosigned_at is None
    posted = json.loads(requests[-1].content)
    assert posted == {"note": row.note, "old_size": 0, "proof": []}
    assert requests[-1].url.path == "/witness/ru-lotl"


# --- two nodes and a registry on loopback -------------------------------------------------


def settings_of(fed: Federation, member: str) -> NodeSettings:
    return load_node_settings(fed.nodes[member])


def token_jti(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


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


def test_both_logs_tell_the_agreement_story(provider_ready: Federation, tmp_path: Path) -> None:
    fed = provider_ready
    cn, ru = settings_of(fed, "cn-ntlnp"), settings_of(fed, "ru-lotl")
    filed = ok(fed.node("ru-lotl", "request", "create", "--dataset", "cn-ntlnp/leopards-2024",
                        "--purpose", "joint-monitoring", "--tier", "generalized", "--until",
                        UNTIL, "--justification", "Joint leopard census"))
    agreement = re.search(r"ru-lotl\.[0-9a-f]{16}", filed).group(0)  # type: ignore[union-attr]
    ok(fed.node("cn-ntlnp", "sync"))
    terms = tmp_path / "narrow.yaml"
    terms.write_text(yaml.safe_dump({"taxa": ["Vulpes vulpes"]}))
    ok(fed.node("cn-ntlnp", "decide", agreement, "approve", "--narrow-terms", terms,
                "--reason", "foxes only"))
    ok(fed.node("ru-lotl", "request", "accept", agreement))
    ok(fed.node("cn-ntlnp", "sync"))
    out = tmp_path / "package.zip"
    ok(fed.node("ru-lotl", "fetch", agreement, "--out", out))
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)
    ok(fed.node("cn-ntlnp", "revoke", agreement, "--reason", "poaching incident"))
    before = log_size(cn)
    status, _, _ = fed.servers["cn-ntlnp"].request(  # no token: refused and NOT logged
        "GET", f"/agreements/{agreement}/package")
    assert status == 401 and log_size(cn) == before
    status, _, _ = fed.servers["cn-ntlnp"].request(
        "GET", f"/agreements/{agreement}/package", headers={"Authorization": f"Bearer {token}"})
    assert status == 403
    ok(fed.node("ru-lotl", "request", "show", agreement))  # ru learns of the revocation

    provider, requester = leaves(cn), leaves(ru)
    assert [e["type"] for e in provider] == [
        "policy.changed", "request.received", "request.decided", "agreement.signed",
        "package.started", "package.served", "agreement.revoked", "fetch.refused"]
    assert [e["type"] for e in requester] == [
        "request.filed", "request.decided", "agreement.signed", "package.received",
        "agreement.revoked"]
    assert {e["member"] for e in provider[1:]} == {"ru-lotl"}
    assert {e["member"] for e in requester} == {"cn-ntlnp"}
    assert {e["agreement"] for e in provider[1:] + requester} == {agreement}
    assert provider[2]["decision"] == requester[1]["decision"] == "narrow"
    assert provider[3]["role"] == "provider" and requester[2]["role"] == "requester"
    assert provider[3]["document_sha256"] == requester[2]["document_sha256"]
    assert provider[6]["by"] == requester[4]["by"] == "cn-ntlnp"
    assert provider[1]["event"] == requester[0]["event"]  # the same signed request

    assert provider[5]["started_index"] == provider[4]["index"] == 4
    served, received = provider[5], requester[3]
    trust_list = TrustStore(fed.nodes["ru-lotl"]).current()
    assert trust_list is not None
    report = verify_package(out, trust_list)
    assert report.ok and report.descriptor is not None, report.failure
    meta = report.descriptor["corridor"]
    assert meta["log_index"] == served["index"] == received["served_index"] == 5
    assert meta["log_origin"] == node_origin("cn-ntlnp")
    assert served["content_sha256"] == received["content_sha256"]
    assert served["content_sha256"] == content_digest(resource_entries(report.descriptor))
    assert served["rows"] == received["rows"] and served["cursor"] == received["cursor"]
    assert re.fullmatch(r"[0-9a-f]{64}", received["package_sha256"])
    with database(ru) as session:
        receipt = session.scalars(sa.select(Receipt)).one()
    assert receipt.served_index == served["index"]
    assert receipt.package_sha256 == received["package_sha256"]
    assert receipt.descriptor_sha256 == received["descriptor_sha256"]

    refused = provider[7]
    assert refused["status"] == 403 and refused["token_jti"] == token_jti(token)
    assert "revoked" in refused["reason"]
    assert served["token_jti"] != refused["token_jti"]
    assert_no_raw_data(provider + requester)
    with zipfile.ZipFile(out) as archive:  # what the leaves must not hold is in the package
        assert "latitude" in archive.read("deployments.csv").decode().splitlines()[0]


def test_the_registry_witnesses_consistent_checkpoints(provider_ready: Federation) -> None:
    fed = provider_ready
    cn = settings_of(fed, "cn-ntlnp")
    first = ok(fed.node("cn-ntlnp", "log", "checkpoint"))
    assert "Checkpoint of 1 entries" in first and "cosigned by the registry" in first
    assert "cosigned by the registry" in ok(fed.node("cn-ntlnp", "log", "status"))

    # The log grows (a request arrives); the refresher signs and submits with a proof.
    ok(fed.node("ru-lotl", "request", "create", "--dataset", "cn-ntlnp/leopards-2024",
                "--purpose", "research", "--tier", "generalized", "--until", UNTIL,
                "--justification", "census"))
    ok(fed.node("cn-ntlnp", "sync"))
    ok(fed.node("cn-ntlnp", "policy", "leopards-2024", "--set",
                _policy_file(fed.root, {**POLICY, "max_duration_days": 300})))
    result = checkpoint_once(cn, client_for(cn))
    assert result is not None and result.outcome == COSIGNED and result.size == 3
    again = checkpoint_once(cn, client_for(cn))
    assert again is not None and again.outcome == NOT_SUBMITTED
    with database(cn) as session:
        row = LOG.latest_checkpoint(session)
    assert row.size == 3 and row.cosigned_at is not None and row.witness_problem is None
    registry_key = load_signing_key(load_registry_settings(fed.registry_dir).keys_dir)
    _, names = verify_note(row.note, {"corridor-registry": registry_key.public_key,
                                      "cn-ntlnp": load_signing_key(cn.keys_dir).public_key})
    assert names == {"corridor-registry", "cn-ntlnp"}
    status = ok(fed.node("cn-ntlnp", "log", "status"))
    assert "3 entries" in status and "cosigned" in status


def test_a_node_that_rewrote_its_log_is_not_cosigned(provider_ready: Federation) -> None:
    fed = provider_ready
    cn = settings_of(fed, "cn-ntlnp")
    ok(fed.node("cn-ntlnp", "log", "checkpoint"))
    # The owner rewrites history: the log is emptied and refilled with other entries.
    engine = make_engine(cn.database_url)
    with engine.begin() as conn:
        for table in ("log_checkpoints", "log_nodes", "log_entries"):
            conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 (fixed names)
        conn.execute(sa.text("UPDATE log_head SET size = 0"))
    with make_session_factory(engine)() as session:
        LOG.append(session, "policy.changed", NOW, dataset="other", policy_digest="x")
        LOG.append(session, "policy.changed", NOW, dataset="other", policy_digest="y")
        session.commit()
    engine.dispose()
    refused = fed.node("cn-ntlnp", "log", "checkpoint")
    assert refused.exit_code != 0 and "differ from those the registry cosigned" in refused.output
    with database(cn) as session:
        row = LOG.latest_checkpoint(session)
    assert row.size == 2 and row.cosigned_at is None and "differ" in row.witness_problem
    assert "refused" in ok(fed.node("cn-ntlnp", "log", "status"))


def test_a_key_rotation_is_logged_and_later_checkpoints_use_the_new_key(
        provider_ready: Federation) -> None:
    fed = provider_ready
    cn = settings_of(fed, "cn-ntlnp")
    old = load_signing_key(cn.keys_dir).kid
    ok(fed.node("cn-ntlnp", "keys", "rotate"))
    new = load_signing_key(cn.keys_dir).kid
    entry = leaves(cn)[-1]
    assert entry["type"] == "key.rotated"
    assert (entry["kid"], entry["previous_kid"]) == (new, old)
    for member in fed.nodes:
        ok(fed.node(member, "sync"))
    assert "cosigned by the registry" in ok(fed.node("cn-ntlnp", "log", "checkpoint"))
    ok(fed.node("cn-ntlnp", "keys", "retire", "--", old))  # a kid may start with "-"
    retired = leaves(cn)[-1]
    assert retired["type"] == "key.retired" and retired["kid"] == old


def _policy_file(root: Path, policy: dict[str, Any]) -> Path:
    path = root / "policy-2.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def _hang_up_after(url: str, path: str, token: str, keep: int) -> bytes:
    """GET ``path`` over a raw socket with a tiny receive window; reset after ``keep`` bytes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: small window
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 "Connection: close\r\n\r\n".encode())
    got = b""
    while len(got) < keep:
        data = sock.recv(1024)
        if not data:
            break
        got += data
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    sock.close()
    return got


def test_a_partner_hanging_up_mid_package_is_on_the_record(provider_ready: Federation,
                                                            tmp_path: Path) -> None:
    fed = provider_ready
    cn = settings_of(fed, "cn-ntlnp")
    # A package of several megabytes, larger than the kernel's socket buffers can take in:
    # the Camtrap DP example's (about 100 kB) could be sent whole before the hang-up.
    generate_and_import(cn, tmp_path / "large", side="cn", observations=20_000, seed=5,
                        bird_counts=False)
    policy = tmp_path / "large-policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    ok(fed.node("cn-ntlnp", "policy", "corridor-demo-cn-ntlnp", "--set", policy))
    ok(fed.node("cn-ntlnp", "publish", "corridor-demo-cn-ntlnp", "--tier", "generalized"))
    filed = ok(fed.node("ru-lotl", "request", "create", "--dataset",
                        "cn-ntlnp/corridor-demo-cn-ntlnp", "--purpose", "joint-monitoring",
                        "--tier", "generalized", "--until", UNTIL,
                        "--justification", "Joint leopard census"))
    agreement = re.search(r"ru-lotl\.[0-9a-f]{16}", filed).group(0)  # type: ignore[union-attr]
    ok(fed.node("cn-ntlnp", "sync"))
    ok(fed.node("cn-ntlnp", "decide", agreement, "approve", "--reason", "census"))
    ok(fed.node("ru-lotl", "request", "accept", agreement))
    ok(fed.node("cn-ntlnp", "sync"))
    token = fed.token_for("ru-lotl", "cn-ntlnp", "agreement:fetch", agreement=agreement)

    head = _hang_up_after(fed.servers["cn-ntlnp"].url, f"/agreements/{agreement}/package",
                          token, keep=4096)
    assert head.startswith(b"HTTP/1.1 200") and b"PK" in head  # the package had begun
    deadline = time.monotonic() + 20
    while "package.unfinished" not in types(cn) and time.monotonic() < deadline:
        time.sleep(0.1)
    entries = leaves(cn)
    started = [e for e in entries if e["type"] == "package.started"]
    unfinished = [e for e in entries if e["type"] == "package.unfinished"]
    assert len(started) == 1 and len(unfinished) == 1, [e["type"] for e in entries]
    assert "package.served" not in types(cn)  # the descriptor was never signed
    assert started[0]["token_jti"] == token_jti(token) and started[0]["member"] == "ru-lotl"
    assert unfinished[0]["started_index"] == started[0]["index"]
    assert unfinished[0]["served_index"] is None and unfinished[0]["bytes_sent"] > 0

    # The auditor sees it: bytes left cn-ntlnp with neither a signed descriptor nor a receipt.
    ok(fed.node("cn-ntlnp", "log", "checkpoint"))
    ok(fed.node("ru-lotl", "log", "checkpoint"))
    ok(fed.registry_cli("log", "checkpoint"))
    audited = CliRunner().invoke(corridor_command, [
        "audit", "reconcile", "--registry", str(fed.registry_dir),
        "--node", str(fed.nodes["cn-ntlnp"]), "--node", str(fed.nodes["ru-lotl"])])
    assert audited.exit_code == 1, audited.output
    assert "started, unfinished" in audited.output and "NOT RECONCILED" in audited.output
    assert f"cn-ntlnp entry {started[0]['index']}" in audited.output
