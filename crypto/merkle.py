"""RFC 9162 Merkle tree hashing, proofs and their verification (SHA-256).

The tree is the one of RFC 9162 §2.1.1 (the same as RFC 6962 §2.1): a leaf
hashes as ``SHA-256(0x00 || data)``, an interior node as
``SHA-256(0x01 || left || right)``, and a tree of ``n`` leaves splits at the
largest power of two smaller than ``n``.

Storage model
-------------
A log keeps the hash of every *perfect subtree* it has completed: node
``(level, index)`` covers the ``2**level`` leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf
hashes. Such a node never changes once its last leaf is appended, so the
nodes of every past tree size are still there. Any subtree hash the proofs of
RFC 9162 need is either one of these nodes or folds from at most
``log2(n)`` of them, so the functions here take a :data:`GetNode` callback
``get_node(level, index) -> bytes`` and make O(log n) calls to it:

* :func:`appended_nodes` lists the nodes that appending one leaf completes
  (the leaf itself plus one per trailing 1-bit of its index), so a database
  log stores them in the same transaction as the entry;
* :func:`tree_root`, :func:`inclusion_proof` and :func:`consistency_proof`
  read stored nodes only.

:class:`MerkleLog` is an in-memory log on the same functions.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows
the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raises the
opaque :class:`InvalidProof` whatever failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from crypto.errors import CryptoError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "PROOF_REJECTED",
    "GetNode",
    "InvalidProof",
    "MerkleLog",
    "Node",
    "RootBuilder",
    "appended_nodes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "root_subtrees",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE = 32
#: Root hash of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Largest tree size accepted by the verifiers (tree sizes are uint64 on the wire).
MAX_TREE_SIZE = 2**64 - 1
#: Public message of every proof verification failure.
PROOF_REJECTED = "Merkle proof verification failed"

# A proof for a tree of at most MAX_TREE_SIZE leaves has at most 64 hashes
# (inclusion) or 64 + 1 (consistency); anything longer is refused before any
# per-element work.
_MAX_PROOF_LENGTH = 65

_LEAF_PREFIX = b"\x00"  # RFC 9162 §2.1.1
_NODE_PREFIX = b"\x01"  # RFC 9162 §2.1.1
_sha256 = hashlib.sha256

#: ``get_node(level, index)``: the stored hash of the perfect subtree covering
#: leaves ``[index * 2**level, (index + 1) * 2**level)``.
GetNode = Callable[[int, int], bytes]


class InvalidProof(CryptoError):
    """An inclusion or consistency proof was rejected, for whatever reason.

    ``str(error)`` is always :data:`PROOF_REJECTED`; the actual cause is in
    :attr:`reason`, for server logs only.
    """

    def __init__(self, reason: str) -> None:
        """Create the error.

        :param reason: why verification failed; for logs, never for clients.
        """
        super().__init__(PROOF_REJECTED)
        #: The real cause of the failure (log it, do not show it).
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Node:
    """A stored perfect-subtree hash.

    ``hash`` is the root of the ``2**level`` leaves from ``index * 2**level``.
    """

    level: int
    index: int
    hash: bytes


# --- hashing ----------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 leaf hash ``SHA-256(0x00 || data)``."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 interior node hash ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash (RFC 9162 §2.1.1) of a list of leaf hashes.

    Built level by level, an unpaired last node moving up unchanged: that is
    exactly the tree the "largest power of two smaller than n" split gives.
    The empty list has the root :data:`EMPTY_ROOT`.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    sha256, prefix = _sha256, _NODE_PREFIX
    while len(level) > 1:
        paired = [
            sha256(prefix + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --- reading stored nodes -----------------------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    # The split point k of RFC 9162 §2.1.1, for n >= 2.
    return 1 << ((n - 1).bit_length() - 1)


def _range_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, left to right, whose fold is ``MTH(D[start:end])``.

    Only valid for the ranges the RFC 9162 recursion produces: ``start`` is a
    multiple of a power of two at least ``end - start``, so each piece is
    aligned on its own size.
    """
    keys = []
    position, remaining = start, end - start
    while remaining:
        level = remaining.bit_length() - 1
        keys.append((level, position >> level))
        position += 1 << level
        remaining -= 1 << level
    return keys


def _range_hash(start: int, end: int, get_node: GetNode) -> bytes:
    # MTH(D[start:end]) = H(first piece, MTH(rest)): fold the pieces from the right.
    keys = _range_subtrees(start, end)
    level, index = keys[-1]
    acc = get_node(level, index)
    for level, index in reversed(keys[:-1]):
        acc = node_hash(get_node(level, index), acc)
    return acc


def root_subtrees(size: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` of the stored nodes the root of a tree of ``size`` folds from.

    One per 1-bit of ``size``, largest first; lets a database log fetch them
    in one query before calling :func:`tree_root`.

    :raises ValueError: if ``size`` is negative.
    """
    if size < 0:
        raise ValueError("tree size must not be negative")
    return _range_subtrees(0, size)


def tree_root(size: int, get_node: GetNode) -> bytes:
    """Return the root hash of the first ``size`` leaves from stored nodes.

    Makes one ``get_node`` call per 1-bit of ``size``.

    :raises ValueError: if ``size`` is negative.
    """
    if size < 0:
        raise ValueError("tree size must not be negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, get_node)


def appended_nodes(index: int, leaf: bytes, get_node: GetNode) -> list[Node]:
    """Return the nodes that appending leaf number ``index`` (0-based) completes.

    ``leaf`` is the new entry's :func:`leaf_hash`; ``get_node`` must already
    know every node of the leaves before ``index``. The result is the leaf
    node ``(0, index)`` followed by one parent per trailing 1-bit of
    ``index`` (each closes a perfect subtree), so amortized two nodes and at
    most ``log2(index) + 1``.

    :raises ValueError: if ``index`` is negative or ``leaf`` not a hash.
    """
    if index < 0:
        raise ValueError("leaf index must not be negative")
    if len(leaf) != HASH_SIZE:
        raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
    nodes = [Node(0, index, leaf)]
    level, position, acc = 0, index, leaf
    while position & 1:
        # A right child: its left sibling is complete, and so is their parent.
        acc = node_hash(get_node(level, position - 1), acc)
        level, position = level + 1, position >> 1
        nodes.append(Node(level, position, acc))
    return nodes


# --- proof generation -----------------------------------------------------------


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """Return the inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    The audit path of RFC 9162 §2.1.3.1, ordered from the leaf up. Walks the
    §2.1.3.1 recursion from the root down: every sibling is a stored node
    except at most one right-hand subtree at the tree's right edge, folded
    from at most ``log2(size)`` nodes; O(log n) ``get_node`` calls in all.

    :raises ValueError: unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError("leaf index must be in [0, size)")
    path: list[bytes] = []  # root to leaf
    offset, m, n = 0, index, size
    while n > 1:
        k = _largest_power_of_two_below(n)
        if m < k:
            # PATH(m, D[0:k]) : MTH(D[k:n])
            path.append(_range_hash(offset + k, offset + n, get_node))
            n = k
        else:
            # PATH(m - k, D[k:n]) : MTH(D[0:k]); D[0:k] is a perfect subtree.
            level = k.bit_length() - 1
            path.append(get_node(level, offset >> level))
            offset, m, n = offset + k, m - k, n - k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """Return the proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``.

    The consistency proof of RFC 9162 §2.1.4.1 (``SUBPROOF(m, D[n], true)``),
    empty when ``old_size`` is 0 or equal to ``new_size``. O(log n)
    ``get_node`` calls.

    :raises ValueError: unless ``0 <= old_size <= new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError("tree sizes must satisfy 0 <= old_size <= new_size")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []  # collected top-down, reversed at the end
    offset, m, n, whole = 0, old_size, new_size, True
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:
            # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            path.append(_range_hash(offset + k, offset + n, get_node))
            n = k
        else:
            # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            level = k.bit_length() - 1
            path.append(get_node(level, offset >> level))
            offset, m, n, whole = offset + k, m - k, n - k, False
    if not whole:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        path.append(_range_hash(offset, offset + m, get_node))
    path.reverse()
    return path


# --- verification -----------------------------------------------------------------


def _check_size(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidProof(f"{name} is not an integer")
    if not 0 <= value <= MAX_TREE_SIZE:
        raise InvalidProof(f"{name} is out of range")
    return value


def _check_hash(value: object, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise InvalidProof(f"{name} is not a {HASH_SIZE}-byte hash")
    return value


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    if isinstance(proof, bytes | str) or len(proof) > _MAX_PROOF_LENGTH:
        raise InvalidProof("proof is not a list of at most 65 hashes")
    return [_check_hash(p, "proof element") for p in proof]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. The proof must have exactly the length the tree shape
    dictates: a truncated or padded proof fails.

    :raises InvalidProof: on any failure (the reason is in ``.reason``).
    """
    leaf = _check_hash(leaf, "leaf hash")
    root = _check_hash(root, "root hash")
    index = _check_size(index, "leaf index")
    size = _check_size(size, "tree size")
    path = _check_proof(proof)
    # Step 1.
    if index >= size:
        raise InvalidProof("leaf index is not below the tree size")
    # Steps 2 and 3.
    fn, sn, r = index, size - 1, leaf
    # Step 4.
    for p in path:
        if sn == 0:  # 4a
            raise InvalidProof("inclusion proof is too long")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # 4c
    # Step 5.
    if sn != 0:
        raise InvalidProof("inclusion proof is too short")
    if r != root:
        raise InvalidProof("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``.

    ``old_root`` and ``new_root`` are the roots of the two trees.

    RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``; the cases that
    section leaves out are decided strictly: equal sizes need equal roots and
    an empty proof; an old size of 0 needs the empty-tree root and an empty
    proof (every tree extends the empty one).

    :raises InvalidProof: on any failure (the reason is in ``.reason``).
    """
    old_root = _check_hash(old_root, "old root hash")
    new_root = _check_hash(new_root, "new root hash")
    old_size = _check_size(old_size, "old tree size")
    new_size = _check_size(new_size, "new tree size")
    path = _check_proof(proof)
    if old_size > new_size:
        raise InvalidProof("old tree size is larger than the new one")
    if old_size == 0 or old_size == new_size:
        if path:
            raise InvalidProof("consistency proof must be empty for these sizes")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise InvalidProof("old root is not the empty tree's")
        if old_size == new_size and old_root != new_root:
            raise InvalidProof("roots of equal tree sizes differ")
        return
    # Step 1.
    if not path:
        raise InvalidProof("consistency proof is empty")
    # Step 2.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Steps 3 and 4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # 6a
            raise InvalidProof("consistency proof is too long")
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1  # 6c
    # Step 7.
    if sn != 0:
        raise InvalidProof("consistency proof is too short")
    if fr != old_root:
        raise InvalidProof("consistency proof does not lead to the old root")
    if sr != new_root:
        raise InvalidProof("consistency proof does not lead to the new root")


# --- streaming root -----------------------------------------------------------------


class RootBuilder:
    """The root of a growing list of leaf hashes in O(log n) memory.

    Keeps only the roots of the perfect subtrees the leaves so far complete
    (one per 1-bit of the size), so a verifier can stream millions of
    entries and compare the root at any size with a signed checkpoint.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        """Start with no leaves."""
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels decreasing
        self.size = 0

    def add(self, leaf: bytes) -> None:
        """Append one leaf by its :func:`leaf_hash`."""
        level, acc = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == level:
            acc = node_hash(stack.pop()[1], acc)
            level += 1
        stack.append((level, acc))
        self.size += 1

    def root(self) -> bytes:
        """The Merkle Tree Hash of the leaves so far (:data:`EMPTY_ROOT` when none)."""
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            acc = node_hash(left, acc)
        return acc


# --- in-memory log ------------------------------------------------------------------


class MerkleLog:
    """An append-only in-memory Merkle log keeping every perfect-subtree hash.

    Built on :func:`appended_nodes`, :func:`tree_root`,
    :func:`inclusion_proof` and :func:`consistency_proof` exactly as a
    database-backed log would be; roots and proofs are available for every
    past size.
    """

    __slots__ = ("_levels",)

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        """Create a log, optionally appending ``entries`` in order."""
        self._levels: list[list[bytes]] = [[]]
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def __len__(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Append an entry; return its leaf index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a leaf by its :func:`leaf_hash`; return its leaf index.

        :raises ValueError: if ``leaf`` is not a 32-byte hash.
        """
        levels = self._levels
        index = len(levels[0])
        for node in appended_nodes(index, leaf, self.get_node):
            if node.level == len(levels):
                levels.append([])
            levels[node.level].append(node.hash)
        return index

    def get_node(self, level: int, index: int) -> bytes:
        """Return the stored hash of perfect subtree ``(level, index)``.

        :raises IndexError: if that subtree is not complete.
        """
        if level < 0 or index < 0 or level >= len(self._levels):
            raise IndexError(f"no node ({level}, {index})")
        return self._levels[level][index]

    def leaf_hash(self, index: int) -> bytes:
        """Return the leaf hash of entry ``index``.

        :raises IndexError: if there is no such entry.
        """
        return self.get_node(0, index)

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError("tree size must be in [0, log size]")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Return the root hash of the first ``size`` leaves (default: all).

        :raises ValueError: if ``size`` is negative or beyond the log.
        """
        return tree_root(self._size(size), self.get_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf ``index`` in the tree of ``size`` (default: all).

        :raises ValueError: unless ``0 <= index < size <= log size``.
        """
        return inclusion_proof(index, self._size(size), self.get_node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the consistency proof from ``old_size`` to ``new_size`` (default: all).

        :raises ValueError: unless ``0 <= old_size <= new_size <= log size``.
        """
        return consistency_proof(old_size, self._size(new_size), self.get_node)

    def __repr__(self) -> str:
        """Show the size."""
        return f"MerkleLog(size={self.size})"
