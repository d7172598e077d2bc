"""A service's exchange log in its own database: entries, Merkle nodes, head and checkpoints.

Node and registry keep the same four tables (declared on each service's own
base with the mixins below, like :mod:`corridor.agreement_store`):

* ``log_entries``: one row per event; ``leaf`` is the canonical JSON (RFC
  8785) that is hashed, and it names its own ``index``, so an entry moved to
  another position no longer matches;
* ``log_nodes``: every completed perfect subtree ``(level, idx) -> hash``
  (level 0 = the leaf hashes), so roots and proofs read O(log n) rows
  (:mod:`crypto.merkle`);
* ``log_head``: one row holding the size. An append starts by incrementing it,
  which takes the write lock (a row lock on PostgreSQL, the database's
  RESERVED lock on SQLite) until the caller's transaction ends: concurrent
  workers get consecutive indexes, never the same one, never a gap;
* ``log_checkpoints``: the signed tree heads, with the registry's cosignature
  once it witnessed them.

:meth:`TransparencyLog.append` runs inside the caller's transaction, so the
action and its entry are committed (or rolled back) together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from corridor.db import UTCDateTime, table_of
from crypto.canonical import canonical_json
from crypto.checkpoint import Checkpoint, sign_note
from crypto.keys import SigningKey
from crypto.merkle import (
    EMPTY_ROOT,
    GetNode,
    appended_nodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_subtrees,
    tree_root,
)

__all__ = [
    "REGISTRY_NAME",
    "REGISTRY_ORIGIN",
    "LogCheckpointColumns",
    "LogEntry",
    "LogEntryColumns",
    "LogEvent",
    "LogHeadColumns",
    "LogNodeColumns",
    "TransparencyLog",
    "leaf_bytes",
    "node_origin",
]

#: Largest number of entries one ``entries`` read returns.
MAX_PAGE = 1000
#: Key name of the registry in checkpoint signature lines (its own log and its cosignatures).
REGISTRY_NAME = "corridor-registry"
#: Origin line of the registry's checkpoints.
REGISTRY_ORIGIN = "corridor/registry"


def node_origin(member_id: str) -> str:
    """Origin line of a node's checkpoints (its key name in signature lines is ``member_id``)."""
    return f"corridor/{member_id}"


class LogEntryColumns:
    """Columns of ``log_entries``. ``type``, ``member``, ``agreement`` and ``at`` repeat
    fields of the leaf for filtering; the leaf is what is hashed and served."""

    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    member: Mapped[str | None] = mapped_column(String(40), index=True)
    agreement: Mapped[str | None] = mapped_column(String(80), index=True)
    leaf: Mapped[str] = mapped_column(Text)


class LogNodeColumns:
    """Columns of ``log_nodes``: completed perfect subtrees, written once."""

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHeadColumns:
    """Columns of ``log_head``: a single row (``id = 1``, created by the migration)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)


class LogCheckpointColumns:
    """Columns of ``log_checkpoints``: one signed note per tree size."""

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cosigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    witness_problem: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class LogEvent:
    """An event to append: its type and time, the other party, the agreement, other fields."""

    type: str
    at: datetime
    member: str | None = None
    agreement: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogEntry:
    """One stored entry: its index, leaf text and the leaf hash stored when it was appended."""

    index: int
    leaf: str
    hash: bytes

    def event(self) -> dict[str, Any]:
        """The leaf decoded (an object; an unreadable leaf decodes as ``{}``)."""
        try:
            value = json.loads(self.leaf)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def leaf_bytes(index: int, type_: str, at: datetime, fields: Mapping[str, Any]) -> bytes:
    """The canonical JSON leaf of an event: its fields plus ``index``, ``type`` and ``at``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the log")
    reserved = {"index", "type", "at"} & fields.keys()
    if reserved:
        raise ValueError(f"event fields may not be named {sorted(reserved)}")
    stamp = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return canonical_json({**fields, "index": index, "type": type_, "at": stamp})


class TransparencyLog:
    """One service's log, read and appended through its four mapped classes."""

    def __init__(self, entry: Any, node: Any, head: Any, checkpoint: Any) -> None:
        """Use the service's models (typed ``Any``: each service has its own classes)."""
        self.entry, self.node, self.head, self.checkpoint = entry, node, head, checkpoint
        entries, nodes, heads = table_of(entry), table_of(node), table_of(head)
        # Statements built once: an append is four round trips with no ORM work.
        self._bump = (update(heads).where(heads.c.id == 1)
                      .values(size=heads.c.size + bindparam("n")).returning(heads.c.size))
        self._insert_entry = insert(entries)
        self._insert_nodes = insert(nodes)
        self._select_node = select(nodes.c.hash).where(
            (nodes.c.level == bindparam("level")) & (nodes.c.idx == bindparam("idx")))
        self._select_nodes = (select(nodes.c.level, nodes.c.idx, nodes.c.hash)
                              .where(tuple_(nodes.c.level, nodes.c.idx)
                                     .in_(bindparam("keys", expanding=True))))

    # --- appending -------------------------------------------------------------

    def append(self, session: Session, type_: str, at: datetime, *,
               member: str | None = None, agreement: str | None = None,
               **fields: Any) -> int:
        """Append one event in ``session``'s transaction; return its index.

        ``member`` (the other party) and ``agreement`` are part of the leaf
        when given. The caller commits; until then the log is locked for
        other writers, so call this last, just before the commit.
        """
        return self.append_many(session, [LogEvent(type_, at, member, agreement, fields)])[0]

    def append_many(self, session: Session, events: Sequence[LogEvent]) -> list[int]:
        """Append events, in order, in ``session``'s transaction; return their indexes.

        One size bump, one read of the O(log n) nodes left of the first new
        leaf, and two batched inserts, however many events.
        """
        if not events:
            return []
        conn = session.connection()
        size = conn.execute(self._bump, {"n": len(events)}).scalar()
        if size is None:
            raise RuntimeError("log_head row missing: the database was not migrated")
        first = size - len(events)
        # New leaves combine with their own new nodes and with a few older ones
        # (subtrees of the tree of `first` leaves): those are read on first use.
        known: dict[tuple[int, int], bytes] = {}

        def get_node(level: int, index: int) -> bytes:
            if (level, index) not in known:
                found = conn.execute(self._select_node, {"level": level, "idx": index}).scalar()
                if found is None:
                    raise LookupError(f"log node {(level, index)} is missing: the stored "
                                      "tree is damaged")
                known[(level, index)] = bytes(found)
            return known[(level, index)]

        entry_rows, node_rows = [], []
        for index, event in enumerate(events, start=first):
            fields = dict(event.fields)
            if event.member is not None:
                fields["member"] = event.member
            if event.agreement is not None:
                fields["agreement"] = event.agreement
            leaf = leaf_bytes(index, event.type, event.at, fields)
            entry_rows.append({"idx": index, "type": event.type, "at": event.at,
                               "member": event.member, "agreement": event.agreement,
                               "leaf": leaf.decode("utf-8")})
            for node in appended_nodes(index, leaf_hash(leaf), get_node):
                known[(node.level, node.index)] = node.hash
                node_rows.append({"level": node.level, "idx": node.index, "hash": node.hash})
        conn.execute(self._insert_entry, entry_rows)
        conn.execute(self._insert_nodes, node_rows)
        return list(range(first, size))

    # --- reading -----------------------------------------------------------------

    def size(self, session: Session) -> int:
        """Number of committed entries (as this transaction sees them)."""
        return int(session.scalar(select(self.head.size).where(self.head.id == 1)) or 0)

    def counts_by_type(self, session: Session) -> dict[str, int]:
        """How many entries of each type the log holds (``package.served``: 12, ...)."""
        e = self.entry
        return {type_: int(n) for type_, n in
                session.execute(select(e.type, func.count()).group_by(e.type))}

    def _nodes_by_key(self, session: Session,
                      keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        rows = session.connection().execute(self._select_nodes, {"keys": keys})
        found = {(level, idx): bytes(h) for level, idx, h in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            raise LookupError(f"log node {missing[0]} is missing: the stored tree is damaged")
        return found

    def reader(self, session: Session) -> GetNode:
        """A ``get_node`` for :mod:`crypto.merkle` reading (and caching) stored nodes."""
        cache: dict[tuple[int, int], bytes] = {}

        def get_node(level: int, index: int) -> bytes:
            key = (level, index)
            if key not in cache:
                cache.update(self._nodes_by_key(session, [key]))
            return cache[key]
        return get_node

    def root(self, session: Session, size: int) -> bytes:
        """The root hash at ``size`` (one query)."""
        if size == 0:
            return EMPTY_ROOT
        nodes = self._nodes_by_key(session, root_subtrees(size))
        return tree_root(size, lambda lv, i: nodes[(lv, i)])

    def inclusion_proof(self, session: Session, index: int, size: int) -> list[bytes]:
        """Proof that entry ``index`` is in the tree of ``size`` entries."""
        self._check_size(session, size)
        return inclusion_proof(index, size, self.reader(session))

    def consistency_proof(self, session: Session, old: int, new: int) -> list[bytes]:
        """Proof that the tree of ``old`` entries is a prefix of the tree of ``new``."""
        self._check_size(session, new)
        return consistency_proof(old, new, self.reader(session))

    def _check_size(self, session: Session, size: int) -> None:
        if size > self.size(session):
            raise ValueError(f"the log has fewer than {size} entries")

    def entries(self, session: Session, start: int = 0, end: int | None = None, *,
                type_: str | None = None, member: str | None = None,
                limit: int = MAX_PAGE) -> list[LogEntry]:
        """Entries with ``start <= index < end`` (and the given type/member), in order."""
        e, n = self.entry, self.node
        query = (select(e.idx, e.leaf, n.hash)
                 .outerjoin(n, (n.level == 0) & (n.idx == e.idx))
                 .where(e.idx >= start).order_by(e.idx).limit(limit))
        if end is not None:
            query = query.where(e.idx < end)
        if type_ is not None:
            query = query.where(e.type == type_)
        if member is not None:
            query = query.where(e.member == member)
        return [LogEntry(i, leaf, bytes(h or b"")) for i, leaf, h in session.execute(query)]

    def types_since(self, session: Session, since: datetime) -> Iterator[tuple[str, datetime]]:
        """(type, time) of every entry logged at or after ``since``, oldest first."""
        e = self.entry
        query = select(e.type, e.at).where(e.at >= since).order_by(e.idx)
        for type_, at in session.execute(query.execution_options(yield_per=5000)):
            yield type_, at if at.tzinfo else at.replace(tzinfo=UTC)

    def iter_entries(self, session: Session, end: int, batch: int = 5000) -> Iterator[LogEntry]:
        """Every entry below ``end`` in index order, read in batches (memory stays flat)."""
        start = 0
        while start < end:
            page = self.entries(session, start, end, limit=batch)
            if not page:
                return
            yield from page
            start = page[-1].index + 1

    # --- checkpoints -----------------------------------------------------------

    def latest_checkpoint(self, session: Session) -> Any:
        """The newest stored checkpoint row, or None."""
        return session.scalars(select(self.checkpoint)
                               .order_by(self.checkpoint.size.desc()).limit(1)).first()

    def checkpoint_at(self, session: Session, size: int) -> Any:
        """The stored checkpoint of exactly ``size`` entries, or None."""
        return session.get(self.checkpoint, size)

    def sign_checkpoint(self, session: Session, origin: str, name: str, key: SigningKey,
                        now: datetime) -> Any:
        """Sign and store a checkpoint of the current tree, unless one exists at this size.

        Returns the checkpoint row of the current size (new or existing), or
        None while the log is empty. The caller commits.
        """
        size = self.size(session)
        if size == 0:
            return None
        existing = self.checkpoint_at(session, size)
        if existing is not None:
            return existing
        root = self.root(session, size)
        note = sign_note(Checkpoint(origin, size, root).body(), name, key)
        row = self.checkpoint(size=size, root=root, note=note.decode("utf-8"), signed_at=now)
        session.add(row)
        session.flush()
        return row
