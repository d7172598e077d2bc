"""The database-backed exchange log: appends in the caller's transaction, proofs, concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from corridor.db import make_engine, make_session_factory
from corridor.tlog import leaf_bytes
from crypto.checkpoint import open_note
from crypto.keys import SigningKey
from crypto.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from node.log.exchange_log import LOG
from node.models import User

pytestmark = pytest.mark.storage

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_empty_log(engine: sa.Engine) -> None:
    with make_session_factory(engine)() as session:
        assert LOG.size(session) == 0
        assert LOG.root(session, 0) == EMPTY_ROOT
        assert LOG.sign_checkpoint(session, "corridor/x", "x", SigningKey.generate(), T0) is None


def test_appends_match_a_tree_built_from_scratch(engine: sa.Engine) -> None:
    factory = make_session_factory(engine)
    leaves = []
    for i in range(37):
        with factory.begin() as session:
            index = LOG.append(session, "test.event", T0, member="cn-fesp", n=i)
            assert index == i
        leaves.append(leaf_bytes(i, "test.event", T0, {"member": "cn-fesp", "n": i}))
    hashes = [leaf_hash(leaf) for leaf in leaves]
    with factory() as session:
        assert LOG.size(session) == 37
        for size in (1, 2, 5, 16, 31, 37):
            assert LOG.root(session, size) == root_from_leaf_hashes(hashes[:size])
        root = LOG.root(session, 37)
        for index in (0, 1, 17, 36):
            proof = LOG.inclusion_proof(session, index, 37)
            verify_inclusion(hashes[index], index, 37, proof, root)
        verify_consistency(12, 37, LOG.consistency_proof(session, 12, 37),
                           LOG.root(session, 12), root)
        entries = LOG.entries(session, 30)
        assert [e.index for e in entries] == list(range(30, 37))
        assert entries[0].leaf.encode() == leaves[30]
        assert entries[0].hash == hashes[30]
        assert entries[0].event()["n"] == 30
        assert [e.index for e in LOG.iter_entries(session, 37, batch=10)] == list(range(37))


def test_leaf_is_canonical_json_naming_its_index() -> None:
    leaf = leaf_bytes(7, "package.served", T0, {"rows": {"b": 2, "a": 1}, "agreement": "x"})
    assert leaf == (b'{"agreement":"x","at":"2026-11-22T09:00:00.000000Z","index":7,'
                    b'"rows":{"a":1,"b":2},"type":"package.served"}')
    with pytest.raises(ValueError, match="index"):
        leaf_bytes(1, "t", T0, {"index": 3})
    with pytest.raises(ValueError, match="naive"):
        leaf_bytes(1, "t", T0.replace(tzinfo=None), {})


def test_an_entry_rolls_back_with_its_action(engine: sa.Engine) -> None:
    factory = make_session_factory(engine)
    with factory.begin() as session:
        LOG.append(session, "first", T0)
    with pytest.raises(RuntimeError), factory.begin() as session:
        session.add(User(username="ann", password_hash="x", role="owner", created_at=T0))
        LOG.append(session, "user.added", T0, username="ann")
        raise RuntimeError("the action failed after its entry was written")
    with factory() as session:
        assert LOG.size(session) == 1
        assert session.get(User, "ann") is None
        assert [e.index for e in LOG.entries(session)] == [0]
    with factory.begin() as session:
        assert LOG.append(session, "second", T0) == 1


def test_checkpoint_is_signed_once_per_size(engine: sa.Engine) -> None:
    key = SigningKey.generate()
    factory = make_session_factory(engine)
    with factory.begin() as session:
        for i in range(5):
            LOG.append(session, "e", T0, n=i)
    with factory.begin() as session:
        row = LOG.sign_checkpoint(session, "corridor/ru-lotl", "ru-lotl", key, T0)
        assert row.size == 5
    with factory.begin() as session:
        again = LOG.sign_checkpoint(session, "corridor/ru-lotl", "ru-lotl", key, T0)
        assert again.note == row.note
        checkpoint, names = open_note(again.note, {"ru-lotl": key.public_key},
                                      origin="corridor/ru-lotl")
        assert (checkpoint.size, checkpoint.root_hash) == (5, LOG.root(session, 5))
        assert names == {"ru-lotl"}


def test_proof_beyond_the_log_is_refused(engine: sa.Engine) -> None:
    with make_session_factory(engine).begin() as session:
        LOG.append(session, "e", T0)
        with pytest.raises(ValueError, match="fewer than 2"):
            LOG.inclusion_proof(session, 0, 2)
        with pytest.raises(ValueError, match="fewer than 3"):
            LOG.consistency_proof(session, 1, 3)


_WORKER = """
import sys
from datetime import UTC, datetime
from corridor.db import make_engine, make_session_factory
from node.log.exchange_log import LOG
url, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = make_engine(url)
factory = make_session_factory(engine)
for n in range(count):
    with factory.begin() as session:
        LOG.append(session, "test.concurrent", datetime.now(UTC), worker=worker, n=n)
engine.dispose()
"""


def test_four_processes_append_without_gap_or_duplicate(engine: sa.Engine,
                                                        database_url: str) -> None:
    """Four OS processes (as gunicorn workers would be) append at once, one transaction each."""
    per_worker = 60
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, database_url, f"w{w}",
                                 str(per_worker)], stderr=subprocess.PIPE)
               for w in range(4)]
    for proc in workers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    total = 4 * per_worker
    with make_session_factory(make_engine(database_url))() as session:
        entries = list(LOG.iter_entries(session, total + 10))
        assert LOG.size(session) == total
        assert [e.index for e in entries] == list(range(total))
        events = [json.loads(e.leaf) for e in entries]
        assert [ev["index"] for ev in events] == list(range(total))
        for w in range(4):
            assert sorted(ev["n"] for ev in events if ev["worker"] == f"w{w}") == list(
                range(per_worker))
        recomputed = root_from_leaf_hashes([leaf_hash(e.leaf.encode()) for e in entries])
        assert LOG.root(session, total) == recomputed
        assert all(e.hash == leaf_hash(e.leaf.encode()) for e in entries)
