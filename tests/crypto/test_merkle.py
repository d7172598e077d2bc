"""RFC 9162 Merkle trees: hashing, proofs from stored subtrees, strict verification.

Everything is checked against a naive recursive implementation of the
RFC 9162 §2.1 definitions written here (MTH, PATH, SUBPROOF), and against the
RFC 6962 reference vectors the Go implementations share
(transparency-dev/merkle ``testonly/constants.go`` and
``proof/verify_test.go``).
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError
from crypto.merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    PROOF_REJECTED,
    InvalidProof,
    MerkleLog,
    Node,
    RootBuilder,
    appended_nodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    root_subtrees,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# --- reference vectors ----------------------------------------------------------
# transparency-dev/merkle testonly/constants.go (the RFC 6962 test data of
# certificate-transparency-go): leaf inputs, the root of every size 0..8 and
# every perfect-subtree hash, indexed [level][index].

REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
REFERENCE_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# transparency-dev/merkle proof/verify_test.go (leaf numbers there are 1-based;
# here they are 0-based indices).
REFERENCE_INCLUSION = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
REFERENCE_CONSISTENCY = [
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]


def _full(prefix: str) -> bytes:
    # The vectors above abbreviate proof hashes; every one is a reference node.
    (match,) = {h for level in REFERENCE_NODES for h in level if h.startswith(prefix)}
    return bytes.fromhex(match)


# --- naive RFC 9162 §2.1 reference, over a fixed list of leaf inputs -------------

MAX_N = 64
DATA = [b"leaf %d" % i for i in range(MAX_N)]


def _k(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) by the recursive definition of RFC 9162 §2.1.1."""
    n = hi - lo
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + DATA[lo]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()


def naive_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]), RFC 9162 §2.1.3.1."""
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*naive_path(m, lo, lo + k), mth(lo + k, hi)]
    return [*naive_path(m - k, lo + k, hi), mth(lo, lo + k)]


def naive_subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b), RFC 9162 §2.1.4.1."""
    n = hi - lo
    if m == n:
        return [] if whole else [mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, lo, lo + k, whole), mth(lo + k, hi)]
    return [*naive_subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]


def inclusion_shape(m: int, n: int) -> tuple[str, ...]:
    """On which side each audit path element joins, from the leaf up."""
    if n == 1:
        return ()
    k = _k(n)
    if m < k:
        return (*inclusion_shape(m, k), "right")
    return (*inclusion_shape(m - k, n - k), "left")


def consistency_shape(m: int, n: int, whole: bool = True) -> tuple[str, ...]:
    """The trace of the SUBPROOF recursion: it alone decides what a verifier computes."""
    if m == n:
        return ("whole" if whole else "part",)
    k = _k(n)
    if m <= k:
        return (*consistency_shape(m, k, whole), "right")
    return (*consistency_shape(m - k, n - k, False), "left")


LOG = MerkleLog(DATA)
LEAVES = [leaf_hash(d) for d in DATA]


def flip(value: bytes, bit: int) -> bytes:
    """``value`` with one bit inverted."""
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def inclusion_fails(leaf: bytes, index: int, size: int, proof: list[bytes],
                    root: bytes) -> bool:
    """Whether verify_inclusion raises InvalidProof (anything else propagates)."""
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except InvalidProof:
        return True
    return False


def consistency_fails(old: int, new: int, proof: list[bytes], old_root: bytes,
                      new_root: bytes) -> bool:
    """Whether verify_consistency raises InvalidProof (anything else propagates)."""
    try:
        verify_consistency(old, new, proof, old_root, new_root)
    except InvalidProof:
        return True
    return False


SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- hashing and roots ---------------------------------------------------------------


def test_leaf_and_node_hash_are_domain_separated() -> None:
    assert leaf_hash(b"") == REFERENCE_ROOTS[1] == hashlib.sha256(b"\x00").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != node_hash(b, a)
    assert leaf_hash(a + b) != node_hash(a, b)


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == REFERENCE_ROOTS[0] == hashlib.sha256(b"").digest()
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert MerkleLog().root() == EMPTY_ROOT
    assert tree_root(0, LOG.get_node) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(len(REFERENCE_ROOTS)))
def test_reference_roots(size: int) -> None:
    hashes = [leaf_hash(d) for d in REFERENCE_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == REFERENCE_ROOTS[size]
    assert MerkleLog(REFERENCE_LEAVES[:size]).root() == REFERENCE_ROOTS[size]
    assert MerkleLog(REFERENCE_LEAVES).root(size) == REFERENCE_ROOTS[size]


def test_reference_stored_nodes() -> None:
    log = MerkleLog(REFERENCE_LEAVES)
    for level, hashes in enumerate(REFERENCE_NODES):
        for index, expected in enumerate(hashes):
            assert log.get_node(level, index).hex() == expected
    with pytest.raises(IndexError):
        log.get_node(4, 0)


@pytest.mark.parametrize(("index", "size", "expected"), REFERENCE_INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    log = MerkleLog(REFERENCE_LEAVES)
    proof = log.inclusion_proof(index, size)
    assert proof == [_full(p) for p in expected]
    verify_inclusion(leaf_hash(REFERENCE_LEAVES[index]), index, size, proof,
                     REFERENCE_ROOTS[size])
    # The probes of proof/verify_test.go that must fail for these vectors.
    leaf, root = leaf_hash(REFERENCE_LEAVES[index]), REFERENCE_ROOTS[size]
    for i, n, lf, r, p in [
        (index - 1, size, leaf, root, proof),
        (index + 1, size, leaf, root, proof),
        (index ^ 2, size, leaf, root, proof),
        (index, size * 2, leaf, root, proof),
        (index, size // 2, leaf, root, proof),
        (index, size, SOME_HASH, root, proof),
        (index, size, leaf, EMPTY_ROOT, proof),
        (index, size, leaf, SOME_HASH, proof),
        (index, size, leaf, root, [*proof, root]),
        (index, size, leaf, root, [root, *proof]),
        (index, size, leaf, root, proof[:-1]),
        (index, size, leaf, root, [proof[0], SOME_HASH, *proof[1:]]),
    ]:
        assert inclusion_fails(lf, i, n, p, r)


@pytest.mark.parametrize(("old", "new", "expected"), REFERENCE_CONSISTENCY)
def test_reference_consistency_proofs(old: int, new: int, expected: list[str]) -> None:
    log = MerkleLog(REFERENCE_LEAVES)
    proof = log.consistency_proof(old, new)
    assert proof == [_full(p) for p in expected]
    verify_consistency(old, new, proof, REFERENCE_ROOTS[old], REFERENCE_ROOTS[new])
    assert consistency_fails(old, new, proof, REFERENCE_ROOTS[new], REFERENCE_ROOTS[old])


def test_root_from_leaf_hashes_matches_naive_mth_for_every_size() -> None:
    for n in range(MAX_N + 1):
        assert root_from_leaf_hashes(LEAVES[:n]) == mth(0, n)


def test_log_keeps_every_past_root() -> None:
    for n in range(MAX_N + 1):
        assert LOG.root(n) == mth(0, n)
        assert tree_root(n, LOG.get_node) == mth(0, n)
        fresh = MerkleLog(DATA[:n])
        assert fresh.root() == mth(0, n)
        assert len(fresh) == fresh.size == n


# --- exhaustive proofs for every shape up to 64 leaves -------------------------------


@pytest.mark.parametrize("size", range(1, MAX_N + 1))
def test_every_inclusion_proof_is_rfc_path_and_verifies(size: int) -> None:
    root = mth(0, size)
    for index in range(size):
        proof = LOG.inclusion_proof(index, size)
        assert proof == naive_path(index, 0, size)
        verify_inclusion(LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize("new", range(1, MAX_N + 1))
def test_every_consistency_proof_is_rfc_subproof_and_verifies(new: int) -> None:
    for old in range(0, new + 1):
        proof = LOG.consistency_proof(old, new)
        expected = [] if old == 0 else naive_subproof(old, 0, new, True)
        assert proof == expected
        verify_consistency(old, new, proof, mth(0, old), mth(0, new))


@pytest.mark.parametrize("size", range(1, MAX_N + 1))
def test_inclusion_corruptions_fail(size: int) -> None:
    root = mth(0, size)
    for index in range(size):
        proof = LOG.inclusion_proof(index, size)
        leaf = LEAVES[index]

        def check(i: int = index, n: int = size, lf: bytes = leaf, p: list[bytes] = proof,
                  r: bytes = root) -> bool:
            return inclusion_fails(lf, i, n, p, r)

        # Wrong index: a path's shape pins the leaf position, so every other
        # index fails (including index >= size).
        for wrong in range(size + 2):
            assert check(i=wrong) == (wrong != index)
        # Another leaf, another root.
        assert check(lf=LEAVES[(index + 1) % MAX_N])
        assert check(r=mth(0, size - 1))
        assert check(r=LEAVES[index] if size > 1 else SOME_HASH)
        # Truncated, padded (either end), swapped.
        if proof:
            assert check(p=proof[:-1])
            assert check(p=proof[1:])
        for extra in (root, leaf, SOME_HASH, bytes(32)):
            assert check(p=[*proof, extra])
            assert check(p=[extra, *proof])
        for j in range(len(proof) - 1):
            swapped = [*proof]
            swapped[j], swapped[j + 1] = swapped[j + 1], swapped[j]
            assert check(p=swapped)
        # Wrong size: RFC 9162 paths commit to the tree shape, not to the size
        # itself, so a size giving the same shape is indistinguishable here
        # (the signed checkpoint binds size and root). Every other size fails.
        for wrong in {size - 1, size + 1, size * 2, size // 2, MAX_TREE_SIZE}:
            if wrong > index:
                same = inclusion_shape(index, wrong) == inclusion_shape(index, size)
                assert check(n=wrong) != same, (index, size, wrong)


@pytest.mark.parametrize("new", range(2, MAX_N + 1))
def test_consistency_corruptions_fail(new: int) -> None:
    new_root = mth(0, new)
    for old in range(1, new):
        proof = LOG.consistency_proof(old, new)
        old_root = mth(0, old)

        def check(m: int = old, n: int = new, p: list[bytes] = proof,
                  r1: bytes = old_root, r2: bytes = new_root) -> bool:
            return consistency_fails(m, n, p, r1, r2)

        assert check(r1=new_root, r2=old_root)  # swapped roots
        assert check(r1=mth(0, old - 1))
        assert check(r2=mth(0, new - 1))
        assert check(m=new, n=old)  # old size larger than new
        assert check(p=[])
        assert check(p=proof[:-1])
        assert check(p=proof[1:])
        for extra in (old_root, new_root, proof[0], SOME_HASH):
            assert check(p=[*proof, extra])
            assert check(p=[extra, *proof])
        for j in range(len(proof) - 1):
            if proof[j] != proof[j + 1]:
                swapped = [*proof]
                swapped[j], swapped[j + 1] = swapped[j + 1], swapped[j]
                assert check(p=swapped)
        # Wrong sizes: as for inclusion, only a size pair whose SUBPROOF trace
        # is the same as the real one (so the very same computation) passes.
        shape = consistency_shape(old, new)
        for m, n in {(old - 1, new), (old + 1, new), (old ^ 2, new), (old, new + 1),
                     (old, new - 1), (old, new * 2), (old, new // 2), (0, new)}:
            if 0 <= m <= n:
                same = m > 0 and consistency_shape(m, n) == shape
                assert check(m=m, n=n) != same, (old, new, m, n)


INCLUSION_SAMPLE = [(0, 1), (0, 2), (1, 2), (5, 8), (6, 7), (13, 37), (62, 63), (63, 64)]
CONSISTENCY_SAMPLE = [(1, 2), (3, 7), (4, 8), (6, 8), (13, 37), (32, 64), (63, 64)]


@pytest.mark.parametrize(("index", "size"), INCLUSION_SAMPLE)
def test_inclusion_every_bit_flip_fails(index: int, size: int) -> None:
    proof, leaf, root = LOG.inclusion_proof(index, size), LEAVES[index], mth(0, size)
    for bit in range(256):
        assert inclusion_fails(flip(leaf, bit), index, size, proof, root)
        assert inclusion_fails(leaf, index, size, proof, flip(root, bit))
        for j in range(len(proof)):
            bad = [*proof]
            bad[j] = flip(bad[j], bit)
            assert inclusion_fails(leaf, index, size, bad, root)


@pytest.mark.parametrize(("old", "new"), CONSISTENCY_SAMPLE)
def test_consistency_every_bit_flip_fails(old: int, new: int) -> None:
    proof, r1, r2 = LOG.consistency_proof(old, new), mth(0, old), mth(0, new)
    for bit in range(256):
        assert consistency_fails(old, new, proof, flip(r1, bit), r2)
        assert consistency_fails(old, new, proof, r1, flip(r2, bit))
        for j in range(len(proof)):
            bad = [*proof]
            bad[j] = flip(bad[j], bit)
            assert consistency_fails(old, new, bad, r1, r2)


# --- edge cases and malformed input -------------------------------------------------


def test_inclusion_in_empty_tree_and_index_out_of_range_fail() -> None:
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (64, 64), (-1, 4)]:
        for leaf, root in [(SOME_HASH, EMPTY_ROOT), (LEAVES[0], LEAVES[0])]:
            assert inclusion_fails(leaf, index, size, [], root)


def test_single_leaf_tree() -> None:
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    assert inclusion_fails(LEAVES[0], 0, 1, [], LEAVES[1])
    assert inclusion_fails(LEAVES[0], 0, 1, [LEAVES[0]], LEAVES[0])


def test_consistency_size_zero_and_equal_sizes() -> None:
    r5, r6 = mth(0, 5), mth(0, 6)
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 5, [], EMPTY_ROOT, r5)
    verify_consistency(5, 5, [], r5, r5)
    assert consistency_fails(0, 0, [], EMPTY_ROOT, r5)
    assert consistency_fails(0, 0, [], r5, r5)  # size 0 has one root
    assert consistency_fails(0, 5, [], r5, r5)
    assert consistency_fails(0, 5, [EMPTY_ROOT], EMPTY_ROOT, r5)
    assert consistency_fails(5, 5, [], r5, r6)
    assert consistency_fails(5, 5, [r5], r5, r5)
    assert consistency_fails(1, 0, [], LEAVES[0], EMPTY_ROOT)
    assert consistency_fails(6, 5, LOG.consistency_proof(5, 6), r6, r5)
    assert consistency_fails(-1, 5, [], EMPTY_ROOT, r5)


@pytest.mark.parametrize(
    "bad",
    [
        {"leaf": b"\x00" * 31},
        {"leaf": b"\x00" * 33},
        {"leaf": bytearray(32)},
        {"root": b""},
        {"root": "00" * 32},
        {"index": 1.0},
        {"index": True},
        {"size": "8"},
        {"size": MAX_TREE_SIZE + 1},
        {"proof": [b"\x00" * 31, b"\x00" * 32, b"\x00" * 32]},
        {"proof": b"\x00" * 96},
        {"proof": [SOME_HASH] * 66},
        {"proof": [None, SOME_HASH, SOME_HASH]},
    ],
)
def test_malformed_inclusion_arguments_fail(bad: dict[str, object]) -> None:
    args: dict[str, object] = {"leaf": LEAVES[1], "index": 1, "size": 8,
                               "proof": LOG.inclusion_proof(1, 8), "root": mth(0, 8)}
    verify_inclusion(**args)  # type: ignore[arg-type]
    args.update(bad)
    with pytest.raises(InvalidProof):
        verify_inclusion(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"old_root": b"\x00" * 31},
        {"new_root": None},
        {"old_size": 3.0},
        {"new_size": -8},
        {"new_size": MAX_TREE_SIZE + 1},
        {"proof": [b"\x00"] * 4},
        {"proof": "abc"},
        {"proof": [SOME_HASH] * 66},
    ],
)
def test_malformed_consistency_arguments_fail(bad: dict[str, object]) -> None:
    args: dict[str, object] = {"old_size": 3, "new_size": 8,
                               "proof": LOG.consistency_proof(3, 8),
                               "old_root": mth(0, 3), "new_root": mth(0, 8)}
    verify_consistency(**args)  # type: ignore[arg-type]
    args.update(bad)
    with pytest.raises(InvalidProof):
        verify_consistency(**args)  # type: ignore[arg-type]


def test_invalid_proof_is_opaque() -> None:
    with pytest.raises(InvalidProof) as info:
        verify_inclusion(LEAVES[0], 0, 2, [], mth(0, 2))
    assert isinstance(info.value, CryptoError)
    assert str(info.value) == PROOF_REJECTED
    assert info.value.reason == "inclusion proof is too short"


def test_generation_refuses_impossible_arguments() -> None:
    for index, size in [(0, 0), (5, 5), (-1, 5)]:
        with pytest.raises(ValueError, match="leaf index"):
            inclusion_proof(index, size, LOG.get_node)
    for old, new in [(6, 5), (-1, 5)]:
        with pytest.raises(ValueError, match="tree sizes"):
            consistency_proof(old, new, LOG.get_node)
    with pytest.raises(ValueError):
        tree_root(-1, LOG.get_node)
    with pytest.raises(ValueError):
        root_subtrees(-1)
    with pytest.raises(ValueError):
        appended_nodes(-1, SOME_HASH, LOG.get_node)
    with pytest.raises(ValueError):
        appended_nodes(0, b"short", LOG.get_node)


# --- the stored-node abstraction -----------------------------------------------------


class CountingStore:
    """A dict of nodes, as a database table would hold them, counting reads."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0
        self.reads = 0

    def get_node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[(level, index)]

    def append(self, leaf: bytes) -> list[Node]:
        created = appended_nodes(self.size, leaf, self.get_node)
        for node in created:
            assert (node.level, node.index) not in self.nodes  # nodes are write-once
            self.nodes[(node.level, node.index)] = node.hash
        self.size += 1
        return created


def test_appended_nodes_close_one_subtree_per_trailing_one_bit() -> None:
    store = CountingStore()
    for index, leaf in enumerate(LEAVES):
        before = store.reads
        created = store.append(leaf)
        trailing_ones = (index ^ (index + 1)).bit_length() - 1
        assert len(created) == trailing_ones + 1
        assert store.reads - before == trailing_ones
        assert created[0] == Node(0, index, leaf)
        for node in created:
            width = 1 << node.level
            assert node.hash == mth(node.index * width, (node.index + 1) * width)
    assert len(store.nodes) == 2 * MAX_N - 1  # a perfect tree of 64 leaves


def test_store_built_from_appended_nodes_serves_every_proof() -> None:
    store = CountingStore()
    for leaf in LEAVES[:45]:
        store.append(leaf)
    for n in range(46):
        assert tree_root(n, store.get_node) == mth(0, n)
        keys = root_subtrees(n)
        assert len(keys) == bin(n).count("1")
        assert all(key in store.nodes for key in keys)
    for n in range(1, 46):
        for i in range(n):
            assert inclusion_proof(i, n, store.get_node) == naive_path(i, 0, n)
        for m in range(1, n + 1):
            assert consistency_proof(m, n, store.get_node) == naive_subproof(m, 0, n, True)


def test_root_subtrees_are_the_one_bits_of_the_size() -> None:
    assert root_subtrees(0) == []
    assert root_subtrees(8) == [(3, 0)]
    assert root_subtrees(13) == [(3, 0), (2, 2), (0, 12)]
    assert root_subtrees(2**40 + 3) == [(40, 0), (1, 2**39), (0, 2**40 + 2)]


def test_proofs_read_logarithmically_many_nodes() -> None:
    log = MerkleLog(str(i).encode() for i in range(3000))
    reads = 0

    def get_node(level: int, index: int) -> bytes:
        nonlocal reads
        reads += 1
        return log.get_node(level, index)

    bound = 2 * (3000).bit_length()
    for size in (1, 2, 1000, 2047, 2048, 2049, 2999, 3000):
        for index in {0, size // 3, size - 1}:
            reads = 0
            proof = inclusion_proof(index, size, get_node)
            assert reads <= bound
            verify_inclusion(log.leaf_hash(index), index, size, proof, log.root(size))
        for old in {1, size // 2, size - 1, size}:
            reads = 0
            proof = consistency_proof(old, size, get_node)
            assert reads <= bound
            verify_consistency(old, size, proof, log.root(old), log.root(size))
        reads = 0
        tree_root(size, get_node)
        assert reads == bin(size).count("1")


# --- MerkleLog ------------------------------------------------------------------------


def test_merkle_log_api() -> None:
    log = MerkleLog()
    assert log.size == len(log) == 0
    assert [log.append(d) for d in DATA[:5]] == [0, 1, 2, 3, 4]
    assert log.append_leaf_hash(LEAVES[5]) == 5
    assert log.leaf_hash(5) == LEAVES[5]
    assert log.root() == log.root(6) == mth(0, 6)
    assert log.inclusion_proof(2) == naive_path(2, 0, 6)
    assert log.consistency_proof(3) == naive_subproof(3, 0, 6, True)
    assert repr(log) == "MerkleLog(size=6)"
    for bad in (7, -1):
        with pytest.raises(ValueError):
            log.root(bad)
        with pytest.raises(ValueError):
            log.consistency_proof(1, bad)
    with pytest.raises(ValueError):
        log.inclusion_proof(6)
    with pytest.raises(ValueError):
        log.append_leaf_hash(b"not a hash")
    # Negative indices never wrap around to the end.
    for level, index in [(0, -1), (-1, 0), (0, 6), (3, 0)]:
        with pytest.raises(IndexError):
            log.get_node(level, index)


# --- properties -------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(st.binary(max_size=40), min_size=1, max_size=300),
    data=st.data(),
)
def test_random_logs_prove_what_they_hold(entries: list[bytes], data: st.DataObject) -> None:
    log = MerkleLog(entries)
    hashes = [leaf_hash(e) for e in entries]
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old")
    root = root_from_leaf_hashes(hashes[:size])
    assert log.root(size) == root
    verify_inclusion(hashes[index], index, size, log.inclusion_proof(index, size), root)
    old_root = root_from_leaf_hashes(hashes[:old])
    verify_consistency(old, size, log.consistency_proof(old, size), old_root, root)
    # A different entry at that index is never proven.
    other = leaf_hash(entries[index] + b"!")
    assert inclusion_fails(other, index, size, log.inclusion_proof(index, size), root)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100])
def test_root_builder_matches_the_tree_hash_at_every_size(size: int) -> None:
    hashes = [leaf_hash(b"entry %d" % i) for i in range(size)]
    builder = RootBuilder()
    assert builder.root() == EMPTY_ROOT
    for i, h in enumerate(hashes):
        builder.add(h)
        assert builder.size == i + 1
        assert builder.root() == root_from_leaf_hashes(hashes[: i + 1])
