"""The registry as a witness: it cosigns a member's checkpoint only if it extends the last one.

A live registry on loopback with real member keys (registered through signed
join requests) and real OAuth2 tokens. Each member's log is a
:class:`crypto.merkle.MerkleLog` in memory whose checkpoints are signed with
the member's own key, so a test can rewrite history the way a dishonest node
would; the last test uses a real node database and the node's own key.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from corridor.tlog import REGISTRY_NAME, REGISTRY_ORIGIN, node_origin
from crypto.checkpoint import Checkpoint, open_note, sign_note, verify_note
from crypto.keys import KeySet, SigningKey
from crypto.merkle import MerkleLog
from deploy.cli import main
from registry.app import create_app
from registry.log.exchange_log import LOG
from registry.log.witness import (
    FORKED,
    INCONSISTENT,
    SHRUNK,
    StaleCheckpoint,
    Submission,
    start_checkpointer,
)
from registry.log.witness import submit as witness_submit
from registry.models import MEMBER_SUSPENDED, LogCheckpoint, MemberKey, WitnessedCheckpoint
from registry.models import WitnessRefusal as Refusal
from registry.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from tests.registry.conftest import Institution, RegistryHarness

pytestmark = pytest.mark.storage

PROBLEM = "application/problem+json"


def run_cli(*args: Any) -> Result:
    """Run the ``corridor`` CLI in-process."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def b64(data: bytes) -> str:
    """Standard padded base64, as checkpoints and proofs use it."""
    return base64.b64encode(data).decode("ascii")


class MemberLog:
    """A member's exchange log kept in memory, its checkpoints signed with the member's key."""

    def __init__(self, member: Institution, prefix: str = "entry") -> None:
        self.member = member
        self.prefix = prefix
        self.log = MerkleLog()

    def grow(self, to: int) -> MemberLog:
        """Append entries up to ``to`` in all."""
        while self.log.size < to:
            self.log.append(f"{self.prefix} {self.log.size}".encode())
        return self

    def fork(self, keep: int, to: int) -> MemberLog:
        """Another history: the first ``keep`` entries of this one, then different ones."""
        other = MemberLog(self.member, prefix="rewritten")
        for index in range(keep):
            other.log.append_leaf_hash(self.log.leaf_hash(index))
        return other.grow(to)

    def note(self, size: int | None = None, *, key: SigningKey | None = None,
             name: str | None = None, origin: str | None = None) -> str:
        """A signed checkpoint of the first ``size`` entries."""
        size = self.log.size if size is None else size
        body = Checkpoint(origin or node_origin(self.member.member_id), size,
                          self.log.root(size)).body()
        return sign_note(body, name or self.member.member_id, key or self.member.key).decode()

    def proof(self, old: int, new: int | None = None) -> list[str]:
        """The consistency proof from ``old`` to ``new`` entries, base64."""
        new = self.log.size if new is None else new
        return [b64(h) for h in self.log.consistency_proof(old, new)] if old else []

    def body(self, old: int, size: int | None = None) -> dict[str, Any]:
        """A submission of the checkpoint at ``size`` from the cosigned ``old``."""
        size = self.log.size if size is None else size
        return {"note": self.note(size), "old_size": old, "proof": self.proof(old, size)}


@pytest.fixture
def reg(registry: RegistryHarness) -> RegistryHarness:
    """The registry with two active members."""
    registry.add_member("ru-lotl")
    registry.add_member("cn-ntlnp")
    return registry


def submit(reg: RegistryHarness, member: str, body: Any, *, token: str | None = None,
           as_member: str | None = None, raw: bytes | None = None,
           content_type: str = "application/json") -> httpx.Response:
    """POST a submission for ``member``'s log with a witness:submit token of ``as_member``."""
    if token is None:
        token = reg.token(reg.members[as_member or member], scope="witness:submit")
    data = raw if raw is not None else json.dumps(body).encode()
    return reg.http.post(f"/witness/{member}", content=data,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": content_type})


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of a refusal with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def witnessed(reg: RegistryHarness, member: str) -> WitnessedCheckpoint | None:
    with reg.sessions() as session:
        return session.get(WitnessedCheckpoint, member)


def refusals(reg: RegistryHarness) -> list[Refusal]:
    with reg.sessions() as session:
        return list(session.scalars(select(Refusal).order_by(Refusal.id)))


def log_events(reg: RegistryHarness, type_: str) -> list[dict[str, Any]]:
    with reg.sessions() as session:
        return [e.event() for e in LOG.entries(session, type_=type_)]


def log_size(reg: RegistryHarness) -> int:
    with reg.sessions() as session:
        return LOG.size(session)


def cosigned_by_both(reg: RegistryHarness, note: str, member: Institution) -> Checkpoint:
    """The checkpoint, once the member's and the registry's signatures both verified."""
    checkpoint, _ = open_note(note, {member.member_id: member.key.public_key},
                              origin=node_origin(member.member_id))
    _, names = verify_note(note, {REGISTRY_NAME: reg.key.public_key})
    assert names == {REGISTRY_NAME}
    return checkpoint


# --- cosigning ------------------------------------------------------------------------


def test_first_checkpoint_is_cosigned_and_served(reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    assert refused(reg.http.get("/witness/ru-lotl"), 404)["detail"].startswith(
        "the registry cosigned no checkpoint")
    log = MemberLog(ru).grow(5)
    response = submit(reg, "ru-lotl", log.body(0))
    assert response.status_code == 200, response.text
    note = response.json()["note"]
    checkpoint = cosigned_by_both(reg, note, ru)
    assert (checkpoint.size, checkpoint.root_hash) == (5, log.log.root())
    assert note.startswith(log.note())  # the member's note, plus the cosignature line
    assert reg.http.get("/witness/ru-lotl").json() == {"member": "ru-lotl", "size": 5,
                                                       "note": note}
    # Public: checkpoints hold no data, and a node reads its own without special rights.
    assert reg.http.get("/witness/cn-ntlnp").status_code == 404
    [entry] = log_events(reg, "witness.cosigned")
    assert {k: entry[k] for k in ("member", "size", "root")} == {
        "member": "ru-lotl", "size": 5, "root": b64(log.log.root())}
    row = witnessed(reg, "ru-lotl")
    assert row is not None and (row.size, row.root, row.note) == (5, log.log.root(), note)
    assert row.cosigned_at == reg.clock()


def test_a_consistent_bigger_checkpoint_replaces_the_cosigned_one(reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    log = MemberLog(ru).grow(5)
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    for old, new in ((5, 12), (12, 13), (13, 64), (64, 100)):
        response = submit(reg, "ru-lotl", log.grow(new).body(old))
        assert response.status_code == 200, response.text
        assert cosigned_by_both(reg, response.json()["note"], ru).size == new
    assert reg.http.get("/witness/ru-lotl").json()["size"] == 100
    assert [e["size"] for e in log_events(reg, "witness.cosigned")] == [5, 12, 13, 64, 100]
    # The same tree head again is cosigned again, and changes nothing.
    size = log_size(reg)
    again = submit(reg, "ru-lotl", log.body(100))
    assert again.status_code == 200
    cosigned_by_both(reg, again.json()["note"], ru)
    assert log_size(reg) == size + 1  # the token only; no witness entry
    assert refusals(reg) == []


def test_a_node_that_rewrites_its_history_is_refused_and_both_notes_are_kept(
        reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    honest = MemberLog(ru).grow(8)
    first = submit(reg, "ru-lotl", honest.body(0)).json()["note"]
    # The node rewrites entries 5.. and signs the rewritten log at a bigger size. No
    # consistency proof can lead from the cosigned root to it: it sends its own.
    forged = honest.fork(5, 12)
    offered = forged.note()
    response = submit(reg, "ru-lotl", {"note": offered, "old_size": 8,
                                       "proof": forged.proof(8)})
    problem = refused(response, 409)
    assert problem["title"] == "Inconsistent checkpoint"
    assert problem["size"] == 8 and problem["reason"] == INCONSISTENT
    assert "checkpoint of size 8 the registry cosigned" in problem["detail"]
    [evidence] = refusals(reg)
    assert evidence.member == "ru-lotl" and evidence.reason.startswith(INCONSISTENT)
    assert evidence.cosigned_note == first and evidence.offered_note == offered
    assert evidence.proof == forged.proof(8)
    # Both notes verify with the member's key: two signed histories that cannot both be true.
    assert cosigned_by_both(reg, evidence.cosigned_note, ru).size == 8
    assert open_note(evidence.offered_note, {"ru-lotl": ru.key.public_key})[0].size == 12
    [entry] = log_events(reg, "witness.refused")
    assert {k: entry[k] for k in ("member", "reason", "offered_size", "cosigned_size")} == {
        "member": "ru-lotl", "reason": INCONSISTENT, "offered_size": 12, "cosigned_size": 8}
    row = witnessed(reg, "ru-lotl")
    assert row is not None and (row.size, row.note) == (8, first)
    # The operator sees the evidence, both notes in full.
    shown = run_cli("registry", "--dir", reg.settings.directory, "witness", "refusals")
    assert shown.exit_code == 0, shown.output
    assert first in shown.output and offered in shown.output
    assert forged.proof(8)[0] in shown.output
    # The honest history still goes on from the cosigned checkpoint.
    assert submit(reg, "ru-lotl", honest.grow(20).body(8)).status_code == 200


def test_a_bad_proof_for_an_honest_checkpoint_is_refused(reg: RegistryHarness) -> None:
    log = MemberLog(reg.members["ru-lotl"]).grow(8)
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    good = log.grow(20).proof(8)
    for proof in ([], good[:-1], [*good, good[0]], list(reversed(good))):
        problem = refused(submit(reg, "ru-lotl", {"note": log.note(), "old_size": 8,
                                                  "proof": proof}), 409)
        assert problem["reason"] == INCONSISTENT
    assert len(refusals(reg)) == 4
    assert witnessed(reg, "ru-lotl").size == 8  # type: ignore[union-attr]


def test_same_size_with_another_root_is_refused(reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    honest = MemberLog(ru).grow(8)
    first = submit(reg, "ru-lotl", honest.body(0)).json()["note"]
    forked = honest.fork(7, 8)
    problem = refused(submit(reg, "ru-lotl", {"note": forked.note(), "old_size": 8,
                                              "proof": []}), 409)
    assert problem["reason"] == FORKED
    [evidence] = refusals(reg)
    assert evidence.reason.startswith(FORKED)
    assert (evidence.cosigned_note, evidence.offered_note) == (first, forked.note())
    assert log_events(reg, "witness.refused")[0]["offered_size"] == 8


def test_a_smaller_tree_is_refused(reg: RegistryHarness) -> None:
    log = MemberLog(reg.members["ru-lotl"]).grow(8)
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    problem = refused(submit(reg, "ru-lotl", {"note": log.note(5), "old_size": 8,
                                              "proof": []}), 409)
    assert problem["reason"] == SHRUNK
    [evidence] = refusals(reg)
    assert evidence.reason == f"{SHRUNK}: offered size 5 is smaller than the cosigned size 8"


def test_a_stale_old_size_is_refused_without_evidence(reg: RegistryHarness) -> None:
    log = MemberLog(reg.members["ru-lotl"]).grow(8)
    problem = refused(submit(reg, "ru-lotl", log.body(3)), 409)
    assert problem["size"] == 0 and "cosigned a checkpoint of size 0" in problem["detail"]
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    size = log_size(reg)
    for old in (0, 5, 12):
        problem = refused(submit(reg, "ru-lotl", log.grow(12).body(old)), 409)
        assert problem["title"] == "Witness state changed" and problem["size"] == 8
        assert "cosigned a checkpoint of size 8 of ru-lotl" in problem["detail"]
    assert refusals(reg) == []
    assert witnessed(reg, "ru-lotl").size == 8  # type: ignore[union-attr]
    assert log_size(reg) == size + 3  # the three tokens, nothing else


def test_a_tree_too_large_to_store_is_refused(reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    log = MemberLog(ru).grow(1)
    note = sign_note(Checkpoint(node_origin("ru-lotl"), 2**40, log.log.root()).body(),
                     "ru-lotl", ru.key).decode()
    problem = refused(submit(reg, "ru-lotl", {"note": note, "old_size": 0, "proof": []}), 422)
    assert problem["detail"] == "the registry witnesses logs of at most 2147483647 entries"
    assert witnessed(reg, "ru-lotl") is None


def test_a_first_checkpoint_with_a_proof_is_refused(reg: RegistryHarness) -> None:
    log = MemberLog(reg.members["ru-lotl"]).grow(8)
    body = {**log.body(0), "proof": [b64(bytes(32))]}
    assert refused(submit(reg, "ru-lotl", body), 422)["detail"] == (
        "a first checkpoint goes with an empty proof")
    assert witnessed(reg, "ru-lotl") is None


# --- who may submit what ----------------------------------------------------------------


def _flip_signature(note: str) -> str:
    body, _, line = note.rstrip("\n").rpartition("\n")
    prefix, _, blob = line.rpartition(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    return f"{body}\n{prefix} {b64(bytes(raw))}\n"


BAD_NOTES = ["forged signature", "another member's key under this member's name",
             "another member's note", "a key the registry never saw", "another origin",
             "the registry's origin", "unsigned", "not a checkpoint", "size 0 with a root",
             "control character"]


def _bad_notes(reg: RegistryHarness) -> dict[str, str]:
    ru, cn = reg.members["ru-lotl"], reg.members["cn-ntlnp"]
    log = MemberLog(ru).grow(8)
    body = log.note().split("\n\n")[0] + "\n"
    return {
        "forged signature": _flip_signature(log.note()),
        "another member's key under this member's name": log.note(key=cn.key),
        "another member's note": log.note(key=cn.key, name="cn-ntlnp"),
        "a key the registry never saw": log.note(key=SigningKey.generate()),
        "another origin": log.note(origin=node_origin("cn-ntlnp")),
        "the registry's origin": log.note(origin=REGISTRY_ORIGIN),
        "unsigned": body,
        "not a checkpoint": sign_note(b"hello\n", "ru-lotl", ru.key).decode(),
        "size 0 with a root": sign_note(Checkpoint(node_origin("ru-lotl"), 0,
                                                   log.log.root()).body(),
                                        "ru-lotl", ru.key).decode(),
        "control character": log.note().replace("\n", "\r\n", 1),
    }


@pytest.mark.parametrize("case", BAD_NOTES)
def test_a_note_that_does_not_verify_is_rejected(reg: RegistryHarness, case: str) -> None:
    note = _bad_notes(reg)[case]
    size = log_size(reg)
    problem = refused(submit(reg, "ru-lotl", {"note": note, "old_size": 0, "proof": []}), 422)
    assert (problem["title"], problem["detail"]) == ("Checkpoint rejected", "checkpoint rejected")
    assert witnessed(reg, "ru-lotl") is None and refusals(reg) == []
    assert log_size(reg) == size + 1  # the token only


def test_rejections_after_a_cosignature_keep_no_evidence(reg: RegistryHarness) -> None:
    ru, cn = reg.members["ru-lotl"], reg.members["cn-ntlnp"]
    log = MemberLog(ru).grow(8)
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    # An inconsistent checkpoint someone else signed is no evidence against ru-lotl.
    forged = log.fork(2, 4)
    refused(submit(reg, "ru-lotl", {"note": forged.note(key=cn.key), "old_size": 8,
                                    "proof": []}), 422)
    assert refusals(reg) == []


def test_a_member_submits_only_its_own_checkpoints(reg: RegistryHarness) -> None:
    log = MemberLog(reg.members["ru-lotl"]).grow(8)
    problem = refused(submit(reg, "ru-lotl", log.body(0), as_member="cn-ntlnp"), 403)
    assert problem["detail"] == "a member submits checkpoints of its own log only"
    # Even a note cn-ntlnp signed for its own log, sent to ru-lotl's witness.
    cn_log = MemberLog(reg.members["cn-ntlnp"]).grow(3)
    refused(submit(reg, "ru-lotl", cn_log.body(0), as_member="cn-ntlnp"), 403)
    assert witnessed(reg, "ru-lotl") is None


def test_token_missing_wrong_scope_or_audience(reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    body = json.dumps(MemberLog(ru).grow(8).body(0)).encode()
    response = reg.http.post("/witness/ru-lotl", content=body,
                             headers={"Content-Type": "application/json"})
    assert refused(response, 401)["detail"] == (
        "a Bearer access token for the registry is required")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="registry"'
    problem = refused(submit(reg, "ru-lotl", None, raw=body,
                             token=reg.token(ru, scope="catalog:read agreements:write")), 403)
    assert problem["error"] == "insufficient_scope"
    # A token for another audience (cn-ntlnp's node) is not a token for the registry.
    other = reg.token(ru, audience="cn-ntlnp", scope="node:read")
    assert refused(submit(reg, "ru-lotl", None, raw=body, token=other), 401)["error"] == (
        "invalid_token")
    refused(submit(reg, "ru-lotl", None, raw=body, token="not.a.token"), 401)
    assert witnessed(reg, "ru-lotl") is None


def test_a_suspended_member_cannot_submit(reg: RegistryHarness) -> None:
    token = reg.token(reg.members["ru-lotl"], scope="witness:submit")
    reg.set_status("ru-lotl", MEMBER_SUSPENDED)
    body = MemberLog(reg.members["ru-lotl"]).grow(3).body(0)
    assert "is not active" in refused(submit(reg, "ru-lotl", body, token=token), 401)["detail"]


def test_any_active_key_of_the_member_verifies_and_a_retired_one_does_not(
        reg: RegistryHarness) -> None:
    ru = reg.members["ru-lotl"]
    successor = SigningKey.generate()
    with reg.sessions() as session:
        session.add(MemberKey(member_id="ru-lotl", kid=successor.kid,
                              jwk=successor.public_key.to_jwk(), added_at=reg.clock()))
        session.commit()
    log = MemberLog(ru).grow(4)
    assert submit(reg, "ru-lotl", {"note": log.note(key=successor), "old_size": 0,
                                   "proof": []}).status_code == 200
    log.grow(9)
    assert submit(reg, "ru-lotl", log.body(4)).status_code == 200  # the first key
    with reg.sessions() as session:
        old = session.get(MemberKey, ("ru-lotl", ru.key.kid))
        assert old is not None
        old.retired_at = reg.clock()
        session.commit()
    # The old key no longer authenticates (the token) nor signs checkpoints: a token
    # from the successor key, then a note by the retired one.
    token = reg.token(replace(ru, key=successor), scope="witness:submit")
    log.grow(10)
    assert refused(submit(reg, "ru-lotl", {"note": log.note(), "old_size": 9,
                                           "proof": log.proof(9)}, token=token),
                   422)["detail"] == "checkpoint rejected"
    assert submit(reg, "ru-lotl", {"note": log.note(key=successor), "old_size": 9,
                                   "proof": log.proof(9)}, token=token).status_code == 200


# --- malformed bodies -------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    return {"note": "x", "old_size": 0, "proof": []}


MALFORMED: list[tuple[str, bytes, int]] = [
    ("not JSON", b"{note: 1", 400),
    ("truncated JSON", b'{"note": "abc", "old_size": 0, "proof": [', 400),
    ("a JSON array", b"[]", 422),
    ("a JSON string", b'"note"', 422),
    ("empty object", b"{}", 422),
    ("unknown field", json.dumps({**_valid(), "size": 5}).encode(), 422),
    ("note not a string", json.dumps({**_valid(), "note": 5}).encode(), 422),
    ("empty note", json.dumps({**_valid(), "note": ""}).encode(), 422),
    ("note too long", json.dumps({**_valid(), "note": "a" * 16385}).encode(), 422),
    ("old_size a string", json.dumps({**_valid(), "old_size": "0"}).encode(), 422),
    ("old_size a boolean", json.dumps({**_valid(), "old_size": False}).encode(), 422),
    ("old_size a float", json.dumps({**_valid(), "old_size": 1.5}).encode(), 422),
    ("old_size negative", json.dumps({**_valid(), "old_size": -1}).encode(), 422),
    ("old_size too large", json.dumps({**_valid(), "old_size": 2**64}).encode(), 422),
    ("old_size null", json.dumps({**_valid(), "old_size": None}).encode(), 422),
    ("proof not a list", json.dumps({**_valid(), "proof": b64(bytes(32))}).encode(), 422),
    ("proof of numbers", json.dumps({**_valid(), "proof": [1]}).encode(), 422),
    ("not base64", json.dumps({**_valid(), "proof": ["!" * 44]}).encode(), 422),
    ("url-safe base64", json.dumps({**_valid(), "proof": [
        b64(b"\xfb" * 32).replace("+", "-").replace("/", "_")]}).encode(), 422),
    ("unpadded base64", json.dumps({**_valid(), "proof": [
        b64(bytes(32)).rstrip("=")]}).encode(), 422),
    ("non-canonical base64", json.dumps({**_valid(), "proof": [
        b64(bytes(32))[:-2] + "B="]}).encode(), 422),
    ("31-byte hash", json.dumps({**_valid(), "proof": [b64(bytes(31))]}).encode(), 422),
    ("33-byte hash", json.dumps({**_valid(), "proof": [b64(bytes(33))]}).encode(), 422),
    ("66 hashes", json.dumps({**_valid(), "proof": [b64(bytes(32))] * 66}).encode(), 422),
    ("lone surrogate", b'{"note": "\\ud800", "old_size": 0, "proof": []}', 422),
    ("body over 32 KiB", json.dumps({**_valid(), "pad": "a" * 40000}).encode(), 413),
]


@pytest.mark.parametrize(("case", "raw", "status"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_refused_precisely(reg: RegistryHarness, case: str, raw: bytes,
                                                status: int) -> None:
    refused(submit(reg, "ru-lotl", None, raw=raw), status)
    assert witnessed(reg, "ru-lotl") is None and refusals(reg) == []


def test_a_form_body_is_not_a_submission(reg: RegistryHarness) -> None:
    body = MemberLog(reg.members["ru-lotl"]).grow(3).body(0)
    refused(submit(reg, "ru-lotl", None, raw=b"note=x&old_size=0",
                   content_type="application/x-www-form-urlencoded"), 422)
    assert submit(reg, "ru-lotl", body).status_code == 200


def test_65_hashes_pass_the_schema_and_fail_the_proof(reg: RegistryHarness) -> None:
    log = MemberLog(reg.members["ru-lotl"]).grow(8)
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    body = {"note": log.grow(9).note(), "old_size": 8, "proof": [b64(bytes(32))] * 65}
    assert refused(submit(reg, "ru-lotl", body), 409)["reason"] == INCONSISTENT


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.parametrize("base", [0, 4])
def test_concurrent_submissions_never_leave_the_row_inconsistent(reg: RegistryHarness,
                                                                 base: int) -> None:
    """Eight different consistent checkpoints from the same state: one wins, seven retry."""
    ru = reg.members["ru-lotl"]
    log = MemberLog(ru).grow(12)
    if base:
        assert submit(reg, "ru-lotl", log.body(0, base)).status_code == 200
    token = reg.token(ru, scope="witness:submit")
    size_before = log_size(reg)
    barrier = threading.Barrier(8)
    results: dict[int, tuple[int, str]] = {}

    def race(size: int) -> None:
        body = json.dumps({"note": log.note(size), "old_size": base,
                           "proof": log.proof(base, size)}).encode()
        with httpx.Client(base_url=reg.url, timeout=30) as http:
            barrier.wait()
            response = http.post("/witness/ru-lotl", content=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        results[size] = (response.status_code, response.text)

    threads = [threading.Thread(target=race, args=(size,)) for size in range(5, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == list(range(5, 13))
    winners = [size for size, (status, _) in results.items() if status == 200]
    assert len(winners) == 1, results
    assert all(status == 409 for status, _ in results.values() if status != 200), results
    [winner] = winners
    row = witnessed(reg, "ru-lotl")
    assert row is not None and (row.size, row.root) == (winner, log.log.root(winner))
    assert row.note == json.loads(results[winner][1])["note"]
    assert cosigned_by_both(reg, row.note, ru).size == winner
    assert refusals(reg) == []  # consistent checkpoints are never evidence
    assert [e["size"] for e in log_events(reg, "witness.cosigned")] == (
        [base, winner] if base else [winner])
    assert log_size(reg) == size_before + 1


def test_the_swap_refuses_a_state_read_before_another_cosignature(reg: RegistryHarness) -> None:
    """The compare-and-swap itself: checks pass against a stale read, the swap does not."""
    ru = reg.members["ru-lotl"]
    log = MemberLog(ru).grow(20)
    assert submit(reg, "ru-lotl", log.body(0, 4)).status_code == 200
    with reg.sessions() as stale:
        held = stale.get(WitnessedCheckpoint, "ru-lotl")  # size 4, kept in the identity map
        assert held is not None and held.size == 4
        stale.commit()
        assert submit(reg, "ru-lotl", log.body(4, 10)).status_code == 200
        with pytest.raises(StaleCheckpoint, match="cosigned meanwhile"):
            witness_submit(stale, Submission("ru-lotl", log.note(15), 4,
                                             tuple(log.log.consistency_proof(4, 15))),
                           keys=KeySet([ru.key.public_key]), witness_key=reg.key,
                           now=reg.clock())
    row = witnessed(reg, "ru-lotl")
    assert row is not None and row.size == 10
    assert [e["size"] for e in log_events(reg, "witness.cosigned")] == [4, 10]


def test_concurrent_retrying_submitters_end_on_the_largest(reg: RegistryHarness) -> None:
    """Eight submitters that re-read the witness and retry: every cosignature extends the last."""
    ru = reg.members["ru-lotl"]
    log = MemberLog(ru).grow(40)
    token = reg.token(ru, scope="witness:submit")
    barrier = threading.Barrier(8)
    wins: list[int] = []
    errors: list[str] = []

    def submitter(size: int) -> None:
        with httpx.Client(base_url=reg.url, timeout=30) as http:
            barrier.wait()
            for _ in range(50):
                current = http.get("/witness/ru-lotl")
                old = current.json()["size"] if current.status_code == 200 else 0
                if old >= size:
                    return  # superseded by a bigger checkpoint
                response = http.post("/witness/ru-lotl", content=json.dumps(
                    {"note": log.note(size), "old_size": old,
                     "proof": log.proof(old, size)}).encode(),
                    headers={"Authorization": f"Bearer {token}",
                             "Content-Type": "application/json"})
                if response.status_code == 200:
                    wins.append(size)
                    return
                if response.status_code != 409 or response.json().get("reason"):
                    errors.append(response.text)
                    return
            errors.append(f"size {size} never settled")

    threads = [threading.Thread(target=submitter, args=(size,))
               for size in (3, 7, 12, 18, 25, 31, 36, 40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    row = witnessed(reg, "ru-lotl")
    assert row is not None and row.size == 40
    assert cosigned_by_both(reg, row.note, ru).root_hash == log.log.root()
    sizes = [e["size"] for e in log_events(reg, "witness.cosigned")]
    assert sorted(sizes) == sizes == sorted(wins)  # each cosignature extends the previous
    assert refusals(reg) == []


# --- the registry's own checkpoints -----------------------------------------------------


def test_log_checkpoint_and_status_cli(reg: RegistryHarness) -> None:
    directory = reg.settings.directory
    size = log_size(reg)
    signed = run_cli("registry", "--dir", directory, "log", "checkpoint")
    assert signed.exit_code == 0, signed.output
    assert f"Checkpoint at size {size}" in signed.output
    with reg.sessions() as session:
        [row] = session.scalars(select(LogCheckpoint))
        checkpoint, _ = open_note(row.note, {REGISTRY_NAME: reg.key.public_key},
                                  origin=REGISTRY_ORIGIN)
        assert (checkpoint.size, checkpoint.root_hash) == (size, LOG.root(session, size))
    assert row.note in signed.output
    again = run_cli("registry", "--dir", directory, "log", "checkpoint")
    assert again.exit_code == 0 and row.note in again.output
    with reg.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LogCheckpoint)) == 1
    reg.token(reg.members["ru-lotl"])  # one more entry
    status = run_cli("registry", "--dir", directory, "log", "status")
    assert status.exit_code == 0, status.output
    assert f"entries     {size + 1}" in status.output
    assert f"checkpoint  size {size}" in status.output and "1 entries since" in status.output


def test_witness_list_cli(reg: RegistryHarness) -> None:
    directory = reg.settings.directory
    assert "No checkpoint cosigned yet." in run_cli("registry", "--dir", directory,
                                                    "witness", "list").output
    log = MemberLog(reg.members["ru-lotl"]).grow(6)
    assert submit(reg, "ru-lotl", log.body(0)).status_code == 200
    listed = run_cli("registry", "--dir", directory, "witness", "list").output
    assert "ru-lotl" in listed and " 6 " in listed and b64(log.log.root())[:8] in listed
    [row] = json.loads(run_cli("registry", "--dir", directory, "witness", "list", "--format",
                               "json").output)
    assert (row["member"], row["size"], row["root"]) == ("ru-lotl", 6, b64(log.log.root()))
    assert "No checkpoint refused." in run_cli("registry", "--dir", directory,
                                               "witness", "refusals").output


def test_the_checkpointer_signs_when_the_log_grew(reg: RegistryHarness) -> None:
    stop = start_checkpointer(reg.settings.database_url, reg.key, 0.05)
    assert stop is not None
    try:
        engine = make_engine(reg.settings.database_url)
        factory = make_session_factory(engine)

        def latest_size() -> int:
            with factory() as session:
                row = LOG.latest_checkpoint(session)
                return int(row.size) if row is not None else 0

        size = log_size(reg)
        for _ in range(200):
            if latest_size() == size:
                break
            stop.wait(0.05)
        assert latest_size() == size
        reg.token(reg.members["ru-lotl"])
        for _ in range(200):
            if latest_size() == size + 1:
                break
            stop.wait(0.05)
        assert latest_size() == size + 1
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(LogCheckpoint)) == 2
        engine.dispose()
    finally:
        stop.set()
    assert start_checkpointer(reg.settings.database_url, reg.key, 0) is None


@pytest.mark.parametrize(("line", "expected"), [
    ("", 300), ("checkpoint_interval = 0", 0), ("checkpoint_interval = 60", 60),
    ("checkpoint_interval = -1", None), ("checkpoint_interval = 1.5", None),
    ("checkpoint_interval = true", None), ('checkpoint_interval = "60"', None)])
def test_the_checkpoint_interval_setting(reg: RegistryHarness, line: str,
                                         expected: int | None) -> None:
    config = reg.settings.directory / "registry.toml"
    text = config.read_text().replace("checkpoint_interval = 300", "#")
    config.write_text(text.replace("[registry]\n", f"[registry]\n{line}\n"))
    if expected is None:
        with pytest.raises(SettingsError, match="checkpoint_interval must be"):
            load_settings(reg.settings.directory)
    else:
        assert load_settings(reg.settings.directory).checkpoint_interval == expected


def test_the_app_starts_the_checkpointer_only_when_asked(reg: RegistryHarness) -> None:
    assert "corridor_checkpointer" not in reg.app.extensions
    app = create_app({"CORRIDOR_SETTINGS": reg.settings, "CORRIDOR_CHECKPOINTER": True})
    stop = app.extensions["corridor_checkpointer"]
    try:
        assert isinstance(stop, threading.Event) and not stop.is_set()
    finally:
        stop.set()
        app.extensions["corridor_db"][0].dispose()


# --- a real node ------------------------------------------------------------------------


def test_a_real_node_log_is_witnessed(federation: Any) -> None:
    """A node's own database log and key: cosigned, extended, then caught rewriting."""
    from node.log.exchange_log import LOG as NODE_LOG
    from node.settings import load_settings as load_node_settings

    fed = federation
    fed.join_and_admit()
    settings = load_node_settings(fed.nodes["ru-lotl"])
    key = load_signing_key(settings.keys_dir)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    token = fed.token_for("ru-lotl", "registry", "witness:submit")
    http = httpx.Client(base_url=fed.registry.url, timeout=10,
                        headers={"Authorization": f"Bearer {token}"})
    now = datetime.now(UTC)

    def grow_and_sign(n: int) -> Any:
        with factory() as session:
            for i in range(n):
                NODE_LOG.append(session, "test.event", now, n=i)
            session.commit()
            return NODE_LOG.sign_checkpoint(session, node_origin("ru-lotl"), "ru-lotl", key,
                                            now)

    try:
        with factory() as session:
            start = NODE_LOG.size(session)
        # The node may have had checkpoints witnessed already: start from the registry's.
        current = http.get("/witness/ru-lotl")
        old = current.json()["size"] if current.status_code == 200 else 0
        first = grow_and_sign(5)
        with factory() as session:
            proof = NODE_LOG.consistency_proof(session, old, first.size) if old else []
        response = http.post("/witness/ru-lotl", json={
            "note": first.note, "old_size": old, "proof": [b64(h) for h in proof]})
        assert response.status_code == 200, response.text
        second = grow_and_sign(7)
        with factory() as session:
            proof = NODE_LOG.consistency_proof(session, first.size, second.size)
        response = http.post("/witness/ru-lotl", json={
            "note": second.note, "old_size": first.size, "proof": [b64(h) for h in proof]})
        assert response.status_code == 200, response.text
        assert second.size == start + 12
        cosigned = response.json()["note"]
        _, names = verify_note(cosigned, {"ru-lotl": key.public_key})
        assert names == {"ru-lotl"}
        # The node's key signs a different tree of the same size: refused, kept.
        rewritten = MerkleLog([b"rewritten"] * second.size)
        note = sign_note(Checkpoint(node_origin("ru-lotl"), second.size,
                                    rewritten.root()).body(), "ru-lotl", key).decode()
        response = http.post("/witness/ru-lotl", json={"note": note, "old_size": second.size,
                                                       "proof": []})
        assert response.status_code == 409 and response.json()["reason"] == FORKED
        shown = fed.registry_cli("witness", "refusals")
        assert cosigned in shown.output and note in shown.output
    finally:
        http.close()
        engine.dispose()
