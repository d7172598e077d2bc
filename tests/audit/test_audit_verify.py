"""``verify_log`` against a real database log: every kind of tampering names the first bad entry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from audit.checks import AuditFailure, verify_log
from audit.sources import DatabaseSource
from corridor.db import make_session_factory
from corridor.tlog import REGISTRY_NAME, node_origin
from crypto.checkpoint import add_signature
from crypto.keys import KeySet, SigningKey
from crypto.merkle import MerkleLog, leaf_hash
from node.log.exchange_log import LOG

pytestmark = pytest.mark.storage

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
MEMBER = "ru-lotl"
SIZE = 20


@dataclass
class Logged:
    """A node log of SIZE entries, checkpointed by the node and cosigned by the registry."""

    engine: sa.Engine
    node_key: SigningKey
    registry_key: SigningKey

    @property
    def sessions(self) -> sa.orm.sessionmaker[sa.orm.Session]:
        return make_session_factory(self.engine)

    def source(self) -> DatabaseSource:
        return DatabaseSource(self.sessions, LOG, "test node")

    def checkpoint(self, *, cosign: bool = True) -> bytes:
        """Sign the current tree (and cosign it, as the witness would)."""
        with self.sessions.begin() as session:
            row = LOG.sign_checkpoint(session, node_origin(MEMBER), MEMBER, self.node_key, T0)
            if cosign:
                row.note = add_signature(row.note, REGISTRY_NAME,
                                         self.registry_key).decode("utf-8")
            return str(row.note).encode("utf-8")

    def verify(self, **options: object) -> object:
        return verify_log(self.source(), KeySet([self.registry_key.public_key]),
                          {MEMBER: KeySet([self.node_key.public_key])}, **options)  # type: ignore[arg-type]

    def sql(self, statement: str, **params: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement), params)


@pytest.fixture
def logged(engine: sa.Engine) -> Iterator[Logged]:
    log = Logged(engine, SigningKey.generate(), SigningKey.generate())
    with log.sessions.begin() as session:
        for n in range(SIZE):
            LOG.append(session, "package.served", T0, member="cn-fesp", agreement="a.1", n=n)
    log.checkpoint()
    yield log


def _fails_at(log: Logged, index: int, words: str) -> None:
    with pytest.raises(AuditFailure, match=words) as caught:
        log.verify()
    assert caught.value.index == index, str(caught.value)


def test_an_intact_log_verifies(logged: Logged) -> None:
    verdict = logged.verify()
    assert verdict.entries == SIZE  # type: ignore[attr-defined]
    assert verdict.witnessed  # type: ignore[attr-defined]


@pytest.mark.parametrize("index", [0, 7, SIZE - 1])
def test_an_edited_entry_is_named(logged: Logged, index: int) -> None:
    logged.sql("UPDATE log_entries SET leaf = replace(leaf, 'cn-fesp', 'kr-nie') "
               "WHERE idx = :i", i=index)
    _fails_at(logged, index, f"entry {index} was changed after it was logged")


@pytest.mark.parametrize("index", [0, 7])
def test_a_deleted_entry_is_named(logged: Logged, index: int) -> None:
    logged.sql("DELETE FROM log_entries WHERE idx = :i", i=index)
    _fails_at(logged, index, f"entry {index} is missing")


def test_a_deleted_last_entry_is_named(logged: Logged) -> None:
    logged.sql("DELETE FROM log_entries WHERE idx = :i", i=SIZE - 1)
    _fails_at(logged, SIZE - 1, f"covers {SIZE} entries but only {SIZE - 1}")


def test_a_deletion_hidden_by_renumbering_is_named(logged: Logged) -> None:
    logged.sql("DELETE FROM log_entries WHERE idx = 7")
    logged.sql("UPDATE log_entries SET idx = idx - 1 WHERE idx > 7")
    _fails_at(logged, 7, "entry 7 holds the event logged as entry 8")


def test_reordered_entries_are_named(logged: Logged) -> None:
    logged.sql("UPDATE log_entries SET idx = -1 WHERE idx = 5")
    logged.sql("UPDATE log_entries SET idx = 5 WHERE idx = 6")
    logged.sql("UPDATE log_entries SET idx = 6 WHERE idx = -1")
    _fails_at(logged, 5, "entry 5 holds the event logged as entry 6")


def test_an_edit_that_also_rewrote_the_leaf_hash_is_found_by_bisection(logged: Logged) -> None:
    with logged.sessions() as session:
        leaf = LOG.entries(session, 11, 12)[0].leaf
    forged = leaf.replace("cn-fesp", "kr-nie")
    logged.sql("UPDATE log_entries SET leaf = :leaf WHERE idx = 11", leaf=forged)
    logged.sql("UPDATE log_nodes SET hash = :h WHERE level = 0 AND idx = 11",
               h=leaf_hash(forged.encode()))
    with pytest.raises(AuditFailure, match="consistency proofs place the first difference") as e:
        logged.verify()
    # Leaves 10 and 11 share a parent; with 11's stored hash rewritten, the
    # tree can only tell that this pair changed.
    assert e.value.index in (10, 11)


def test_a_wholesale_rewrite_is_refused_by_the_signed_root(logged: Logged) -> None:
    """Entries, leaf hashes and interior nodes all rebuilt: only the signed root knows."""
    with logged.sessions() as session:
        leaves = [e.leaf for e in LOG.entries(session)]
    leaves[3] = leaves[3].replace("cn-fesp", "kr-nie")
    rebuilt = MerkleLog(leaf.encode() for leaf in leaves)
    logged.sql("UPDATE log_entries SET leaf = :leaf WHERE idx = 3", leaf=leaves[3])
    logged.sql("DELETE FROM log_nodes")
    with logged.engine.begin() as conn:
        for level in range(6):
            for idx in range(SIZE >> level):
                conn.execute(sa.text("INSERT INTO log_nodes (level, idx, hash) "
                                     "VALUES (:l, :i, :h)"),
                             {"l": level, "i": idx, "h": rebuilt.get_node(level, idx)})
    with pytest.raises(AuditFailure, match="do not hash to the signed root"):
        logged.verify()


def test_a_rewritten_history_with_a_new_checkpoint_breaks_consistency(logged: Logged) -> None:
    saved = logged.checkpoint()
    with logged.sessions.begin() as session:
        LOG.append(session, "package.served", T0, member="cn-fesp", n=99)
    logged.verify(since=saved)  # grew honestly: consistent
    # The node rewrites entry 2 and all stored hashes, and signs a fresh checkpoint.
    with logged.sessions() as session:
        leaves = [e.leaf for e in LOG.entries(session)]
    leaves[2] = leaves[2].replace("cn-fesp", "kr-nie")
    rebuilt = MerkleLog(leaf.encode() for leaf in leaves)
    logged.sql("UPDATE log_entries SET leaf = :leaf WHERE idx = 2", leaf=leaves[2])
    logged.sql("DELETE FROM log_nodes")
    logged.sql("DELETE FROM log_checkpoints")
    with logged.engine.begin() as conn:
        for level in range(6):
            for idx in range(len(leaves) >> level):
                conn.execute(sa.text("INSERT INTO log_nodes (level, idx, hash) "
                                     "VALUES (:l, :i, :h)"),
                             {"l": level, "i": idx, "h": rebuilt.get_node(level, idx)})
    logged.checkpoint()  # even a (wrongly) cosigned note cannot hide it from the saved one
    with pytest.raises(AuditFailure, match="not consistent with the saved one"):
        logged.verify(since=saved)


def test_a_shrunk_log_is_refused_against_the_saved_checkpoint(logged: Logged) -> None:
    with logged.sessions.begin() as session:
        LOG.append(session, "package.served", T0, n=100)
    saved = logged.checkpoint()
    logged.sql("DELETE FROM log_checkpoints WHERE size = :s", s=SIZE + 1)
    with pytest.raises(AuditFailure, match="the log shrank"):
        logged.verify(since=saved)


def test_an_unwitnessed_checkpoint_is_refused_unless_allowed(logged: Logged) -> None:
    with logged.sessions.begin() as session:
        LOG.append(session, "package.served", T0, n=100)
    logged.checkpoint(cosign=False)
    with pytest.raises(AuditFailure, match="not cosigned by the registry witness"):
        logged.verify()
    assert logged.verify(require_witness=False).entries == SIZE + 1  # type: ignore[attr-defined]


def test_a_checkpoint_signed_by_another_key_is_refused(logged: Logged) -> None:
    logged.node_key = SigningKey.generate()
    with pytest.raises(AuditFailure, match="checkpoint signature"):
        logged.verify()


def test_newer_entries_beyond_the_checkpoint_are_checked_too(logged: Logged) -> None:
    with logged.sessions.begin() as session:
        LOG.append(session, "package.served", T0, n=100)
        LOG.append(session, "package.served", T0, n=101)
    verdict = logged.verify()
    assert verdict.entries == SIZE + 2  # type: ignore[attr-defined]
    assert "2 newer entries" in verdict.notes[0]  # type: ignore[attr-defined]
    logged.sql("UPDATE log_entries SET leaf = replace(leaf, '101', '102') WHERE idx = :i",
               i=SIZE + 1)
    _fails_at(logged, SIZE + 1, "was changed after it was logged")
