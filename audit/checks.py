"""What an auditor proves about one service's log, and what it matches across services.

:func:`verify_log` takes a :class:`LogSource` (a service's HTTP API or its
directory, :mod:`audit.sources`) and the keys the auditor trusts,
and checks, in order:

1. the latest checkpoint is signed by the service's own key, and, for a
   node, cosigned by the registry witness (so the node cannot show other
   auditors another history);
2. it is consistent with the checkpoint the auditor saved last time (the
   service's consistency proof, verified per RFC 9162);
3. every entry, read in order: indexes without gap or repeat, each leaf is
   canonical JSON naming its own index, and hashes to the leaf hash stored
   when it was appended;
4. the root recomputed from all the entries equals the signed root.

The first failure names the first bad index where one can be named: from
the entry checks, or, when the entries agree with their stored hashes but
not with the signed root (both were rewritten), by bisecting with the
service's consistency proofs against prefix roots the auditor computes.

:func:`reconcile` matches every ``package.served`` and ``counts.served``
entry with the recipient's ``package.received`` or ``counts.received`` entry
and with the ``token.issued`` entry of the registry, lists every package that
started leaving a node without being served whole (``package.started``
followed by ``package.unfinished``, or by nothing at all), and every
agreement token nothing was served for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from corridor.errors import CorridorError
from corridor.tlog import REGISTRY_NAME, REGISTRY_ORIGIN, LogEntry
from crypto.canonical import canonical_json
from crypto.checkpoint import Checkpoint, InvalidCheckpoint, open_note, verify_note
from crypto.keys import KeySet
from crypto.merkle import InvalidProof, MerkleLog, RootBuilder, leaf_hash, verify_consistency

__all__ = [
    "AuditFailure",
    "Exchanges",
    "LogSource",
    "Mismatch",
    "Reconciliation",
    "Verdict",
    "reconcile",
    "verify_log",
]


class AuditFailure(CorridorError):
    """A log failed verification; ``index`` is the first bad entry when it can be named."""

    status = 409
    title = "Audit failed"

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class LogSource(Protocol):
    """One service's log as an auditor reads it."""

    label: str

    def checkpoint_note(self) -> bytes | None:
        """The latest signed checkpoint note, or None if the service has none."""

    def entries(self, start: int, end: int | None = None) -> Iterator[LogEntry]:
        """Entries from ``start`` (to ``end``, exclusive, or to the end), in index order."""

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The service's consistency proof between two sizes."""


@dataclass
class Verdict:
    """What :func:`verify_log` established about one log."""

    label: str
    origin: str
    checkpoint: Checkpoint
    note: bytes
    signed_by: str
    witnessed: bool
    since_size: int | None = None
    entries: int = 0
    notes: list[str] = field(default_factory=list)


# --- keys ------------------------------------------------------------------------------


def _open_with(note: bytes, name: str, keys: KeySet) -> Checkpoint:
    """Open ``note`` signed under ``name`` by any of ``keys``."""
    last: InvalidCheckpoint | None = None
    for key in keys.verify_keys():
        try:
            checkpoint, _ = open_note(note, {name: key})
            return checkpoint
        except InvalidCheckpoint as e:
            last = e
    raise AuditFailure(f"checkpoint signature: {last or 'no key to check it with'}")


def _cosigned(note: bytes, registry_keys: KeySet) -> bool:
    for key in registry_keys.verify_keys():
        try:
            verify_note(note, {REGISTRY_NAME: key})
            return True
        except InvalidCheckpoint:
            continue
    return False


def _origin(note: bytes) -> str:
    """The origin line of a note, before any signature is checked (to pick the keys)."""
    first = note.split(b"\n", 1)[0]
    try:
        return first.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AuditFailure("checkpoint: the origin line is not UTF-8") from e


def signer_of(origin: str) -> str:
    """The key name a log's checkpoints are signed under: the member id, or the registry's."""
    if origin == REGISTRY_ORIGIN:
        return REGISTRY_NAME
    prefix = "corridor/"
    if not origin.startswith(prefix) or "/" in origin[len(prefix):]:
        raise AuditFailure(f"checkpoint: {origin!r:.80} is not a Corridor log origin")
    return origin[len(prefix):]


# --- verification ------------------------------------------------------------------------


def verify_log(source: LogSource, registry_keys: KeySet,
               member_keys: Mapping[str, KeySet], *, since: bytes | None = None,
               require_witness: bool = True,
               progress: Callable[[int, int], None] | None = None) -> Verdict:
    """Verify one service's log end to end (module docstring); raise :class:`AuditFailure`.

    :param registry_keys: the registry's keys, from the auditor's pinned anchor.
    :param member_keys: each member's keys, from a trust list verified against the anchor.
    :param since: the checkpoint note the auditor saved last time, if any.
    :param require_witness: refuse a node checkpoint the registry has not cosigned.
    :param progress: called as ``progress(entries_read, checkpoint_size)`` now and then.
    """
    note = source.checkpoint_note()
    if note is None:
        raise AuditFailure("the service has no checkpoint yet")
    origin = _origin(note)
    name = signer_of(origin)
    keys = registry_keys if name == REGISTRY_NAME else member_keys.get(name)
    if keys is None:
        raise AuditFailure(f"checkpoint: {name} is not a member in the trust list")
    checkpoint = _open_with(note, name, keys)
    witnessed = name != REGISTRY_NAME and _cosigned(note, registry_keys)
    if name != REGISTRY_NAME and require_witness and not witnessed:
        raise AuditFailure(f"checkpoint of {checkpoint.size} entries is not cosigned by the "
                           "registry witness: the node could show others another history")
    verdict = Verdict(source.label, origin, checkpoint, note, name, witnessed)
    if since is not None:
        _check_since(source, checkpoint, since, name, keys, verdict)
    _check_entries(source, checkpoint, verdict, progress)
    return verdict


def _check_since(source: LogSource, checkpoint: Checkpoint, since: bytes, name: str,
                 keys: KeySet, verdict: Verdict) -> None:
    saved = _open_with(since, name, keys)
    if saved.origin != checkpoint.origin:
        raise AuditFailure(f"the saved checkpoint is of {saved.origin}, not {checkpoint.origin}")
    verdict.since_size = saved.size
    if saved.size > checkpoint.size:
        raise AuditFailure(f"the log shrank: the saved checkpoint has {saved.size} entries, "
                           f"the latest {checkpoint.size}", index=checkpoint.size)
    try:
        proof = source.consistency_proof(saved.size, checkpoint.size) \
            if 0 < saved.size < checkpoint.size else []
        verify_consistency(saved.size, checkpoint.size, proof, saved.root_hash,
                           checkpoint.root_hash)
    except (InvalidProof, ValueError) as e:
        raise AuditFailure(f"the latest checkpoint ({checkpoint.size} entries) is not "
                           f"consistent with the saved one ({saved.size}): the history was "
                           f"rewritten ({e})") from e


def _entry_problem(entry: LogEntry, expected: int) -> str | None:
    """What is wrong with the entry read at position ``expected``, if anything."""
    if entry.index != expected:
        if entry.index > expected:
            return f"entry {expected} is missing (the next stored entry is {entry.index})"
        return f"entry {entry.index} appears again after entry {expected - 1}"
    data = entry.leaf.encode("utf-8")
    try:
        event = json.loads(data)
    except ValueError:
        return f"entry {expected} is not JSON"
    if not isinstance(event, dict) or canonical_json(event) != data:
        return f"entry {expected} is not a canonical JSON object"
    if event.get("index") != expected:
        return (f"entry {expected} holds the event logged as entry {event.get('index')!r:.20} "
                "(entries were moved)")
    if entry.hash != leaf_hash(data):
        return f"entry {expected} was changed after it was logged (its leaf hash differs)"
    return None


def _check_entries(source: LogSource, checkpoint: Checkpoint, verdict: Verdict,
                   progress: Callable[[int, int], None] | None) -> None:
    builder = RootBuilder()
    hashes: list[bytes] = []
    signed_root: bytes | None = None
    for entry in source.entries(0):
        problem = _entry_problem(entry, builder.size)
        if problem is not None:
            raise AuditFailure(problem, index=builder.size)
        digest = leaf_hash(entry.leaf.encode("utf-8"))
        builder.add(digest)
        if builder.size <= checkpoint.size:
            hashes.append(digest)
        if builder.size == checkpoint.size:
            signed_root = builder.root()
        if progress is not None and builder.size % 1000 == 0:
            progress(builder.size, checkpoint.size)
    verdict.entries = builder.size
    if builder.size < checkpoint.size:
        raise AuditFailure(f"the checkpoint covers {checkpoint.size} entries but only "
                           f"{builder.size} are stored", index=builder.size)
    if checkpoint.size == 0:
        signed_root = MerkleLog().root()
    if signed_root != checkpoint.root_hash:
        index = _bisect(source, checkpoint, hashes)
        raise AuditFailure(f"the {checkpoint.size} entries do not hash to the signed root: "
                           "entries and their stored hashes were rewritten; the service's own "
                           f"consistency proofs place the first difference at entry {index} "
                           "(or a neighbour in its subtree: those stored hashes were rewritten "
                           "too, so the tree cannot tell which of them changed)", index=index)
    newer = builder.size - checkpoint.size
    if newer:
        verdict.notes.append(f"{newer} newer entries are not in a checkpoint yet "
                             "(checked for order and stored hashes only)")


def _bisect(source: LogSource, checkpoint: Checkpoint, hashes: Sequence[bytes]) -> int:
    """The first index whose prefix is no longer consistent with the signed checkpoint.

    Uses the service's consistency proofs (untrusted; each is verified
    against the signed root), built from its stored nodes. A proof may carry
    a rewritten hash of a neighbour of the changed entry, so the answer is
    exact only up to the smallest subtree whose stored hashes were rewritten
    (a sibling pair when only one leaf hash was); if every stored hash was
    rebuilt, every prefix fails and this answers 0.
    """
    tree = MerkleLog()
    for digest in hashes:
        tree.append_leaf_hash(digest)

    def consistent(size: int) -> bool:
        try:
            proof = source.consistency_proof(size, checkpoint.size)
            verify_consistency(size, checkpoint.size, proof, tree.root(size),
                               checkpoint.root_hash)
            return True
        except (InvalidProof, ValueError, AuditFailure):
            return False

    good, bad = 0, checkpoint.size  # prefix `good` is consistent, prefix `bad` is not
    while bad - good > 1:
        middle = (good + bad) // 2
        if consistent(middle):
            good = middle
        else:
            bad = middle
    return bad - 1


# --- reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One thing that does not match across the logs."""

    kind: str  # missing receipt | digest mismatch | served without token | ...
    where: str
    detail: str
    serious: bool = True


@dataclass
class Exchanges:
    """How many exchanges of one kind (packages, counts results) were served, received, matched."""

    served: int = 0
    received: int = 0
    matched: int = 0


#: What an exchange is called in its log entries (``package.served``, ...) and in a report.
KINDS = {"package": "package", "counts": "counts result"}


@dataclass
class Reconciliation:
    """The result of :func:`reconcile`: packages, counts results and tokens matched."""

    packages: Exchanges = field(default_factory=Exchanges)
    counts: Exchanges = field(default_factory=Exchanges)
    tokens: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def served(self) -> int:
        """Packages served."""
        return self.packages.served

    @property
    def received(self) -> int:
        """Packages received."""
        return self.packages.received

    @property
    def matched(self) -> int:
        """Packages fully matched."""
        return self.packages.matched

    @property
    def ok(self) -> bool:
        """True when nothing serious is unmatched (unused tokens are listed, not failures)."""
        return not any(m.serious for m in self.mismatches)


def _events(entries: Sequence[LogEntry], type_: str) -> list[dict[str, Any]]:
    return [e for e in (entry.event() for entry in entries) if e.get("type") == type_]


def reconcile(registry: Sequence[LogEntry], nodes: Mapping[str, Sequence[LogEntry]]) -> \
        Reconciliation:
    """Match packages and counts results served and received, and tokens issued.

    :param registry: the registry's entries.
    :param nodes: each audited node's entries, by member id.
    """
    result = Reconciliation()
    tokens = {t.get("jti"): t for t in _events(registry, "token.issued")
              if t.get("agreement") is not None}
    result.tokens = len(tokens)
    used: set[Any] = set()
    for kind, tally in (("package", result.packages), ("counts", result.counts)):
        _reconcile_kind(result, kind, tally, nodes, tokens, used)
    for provider, entries in nodes.items():
        result.mismatches.extend(_unfinished(provider, entries))
    refused = _refusals(nodes)
    for jti, token in tokens.items():
        audience = str(token.get("audience"))
        if jti in used or audience not in nodes:
            continue
        what = (f"agreement token {jti} for {token.get('member')} at {audience} "
                f"(agreement {token.get('agreement')})")
        if (audience, jti) in refused:
            entry = refused[(audience, jti)]
            result.mismatches.append(Mismatch(
                "token refused", f"{audience} entry {entry.get('index')}",
                f"{what} was presented and refused ({entry.get('type')}, status "
                f"{entry.get('status')}: {entry.get('reason')})", serious=False))
        else:
            result.mismatches.append(Mismatch(
                "token never used", f"registry entry {token.get('index')}",
                f"{what} was never presented: {audience} logged no package, counts or "
                "refusal with it", serious=False))
    return result


def _refusals(nodes: Mapping[str, Sequence[LogEntry]]) -> dict[tuple[str, Any], dict[str, Any]]:
    """(node, token id) -> the node's last refusal of a request made with that token."""
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for member, entries in nodes.items():
        for event in (entry.event() for entry in entries):
            if str(event.get("type", "")).endswith(".refused") and event.get("token_jti"):
                found[(member, event["token_jti"])] = event
    return found


def _reconcile_kind(result: Reconciliation, kind: str, tally: Exchanges,
                    nodes: Mapping[str, Sequence[LogEntry]],
                    tokens: Mapping[Any, Mapping[str, Any]], used: set[Any]) -> None:
    """Match every ``KIND.served`` with its ``KIND.received`` and its token, both ways."""
    received: dict[tuple[str, str, int], dict[str, Any]] = {}
    for member, entries in nodes.items():
        for event in _events(entries, f"{kind}.received"):
            received[(str(event.get("member")), member, event.get("served_index", -1))] = event
    tally.received = len(received)
    for provider, entries in nodes.items():
        for served in _events(entries, f"{kind}.served"):
            tally.served += 1
            if _match_served(result, kind, provider, served, nodes, received, tokens, used):
                tally.matched += 1
    for (provider, recipient, index), event in received.items():
        if provider in nodes and not any(
                e.get("index") == index for e in _events(nodes[provider], f"{kind}.served")):
            result.mismatches.append(Mismatch(
                "received but not served", f"{recipient} entry {event.get('index')}",
                f"{recipient} logged a {KINDS[kind]} from {provider} (its entry {index}) that "
                f"{provider}'s log does not show as served"))


def _unfinished(provider: str, entries: Sequence[LogEntry]) -> Iterator[Mismatch]:
    """Packages ``provider`` started to send and did not serve whole.

    Bytes of those left the node (rows a partner may hold) without a signed
    descriptor or a receipt, so each is serious: the auditor has to account
    for it. A ``package.started`` with no later entry at all means the
    service stopped mid-package.
    """
    served = {e.get("started_index") for e in _events(entries, "package.served")}
    unfinished = {e.get("started_index"): e for e in _events(entries, "package.unfinished")}
    for started in _events(entries, "package.started"):
        index = started.get("index")
        where = f"{provider} entry {index}"
        whom = f"a package for {started.get('member')} under {started.get('agreement')}"
        stop = unfinished.get(index)
        if stop is not None and stop.get("served_index") is None:
            rows = stop.get("rows_sent") or {}
            counted = ", ".join(f"{n:,} {name}" for name, n in sorted(rows.items()) if n)
            yield Mismatch(
                "started, unfinished", where,
                f"{whom} stopped after {stop.get('bytes_sent', 0):,} bytes"
                f"{' (' + counted + ')' if counted else ''}: {stop.get('reason')} "
                f"(entry {stop.get('index')})")
        elif stop is None and index not in served:
            yield Mismatch(
                "started, never finished", where,
                f"{whom} started and its log has neither package.served nor "
                "package.unfinished for it (still streaming, or the service stopped mid-package)")


def _match_served(result: Reconciliation, kind: str, provider: str, served: Mapping[str, Any],
                  nodes: Mapping[str, Sequence[LogEntry]],
                  received: Mapping[tuple[str, str, int], Mapping[str, Any]],
                  tokens: Mapping[Any, Mapping[str, Any]], used: set[Any]) -> bool:
    """Check one served exchange against its token and its receipt; True if all match."""
    what = KINDS[kind]
    recipient = str(served.get("member"))
    where = f"{provider} entry {served.get('index')}"
    ok = True
    token = tokens.get(served.get("token_jti"))
    if token is None:
        ok = False
        result.mismatches.append(Mismatch(
            "served without token", where,
            f"{what} for {recipient} under {served.get('agreement')} names token "
            f"{served.get('token_jti')}, which the registry did not log as issued"))
    else:
        used.add(served.get("token_jti"))
        expected = (recipient, provider, served.get("agreement"))
        actual = (token.get("member"), token.get("audience"), token.get("agreement"))
        if actual != expected:
            ok = False
            result.mismatches.append(Mismatch(
                "token mismatch", where,
                f"the token was issued to {actual[0]} for {actual[1]} under {actual[2]}, "
                f"the {what} went to {recipient} under {served.get('agreement')}"))
    if recipient not in nodes:
        result.mismatches.append(Mismatch(
            "recipient not audited", where,
            f"{recipient}'s log was not given: its receipt is not checked", serious=False))
        return False
    receipt = received.get((provider, recipient, int(served.get("index", -1))))
    if receipt is None:
        result.mismatches.append(Mismatch(
            "missing receipt", where,
            f"{provider} served a {what} to {recipient} under {served.get('agreement')}, "
            f"and {recipient}'s log has no receipt for it"))
        return False
    for key in ("agreement", "content_sha256"):
        if receipt.get(key) != served.get(key):
            ok = False
            result.mismatches.append(Mismatch(
                "digest mismatch" if key == "content_sha256" else "agreement mismatch", where,
                f"{key}: served {served.get(key)!r:.80}, received "
                f"{receipt.get(key)!r:.80} ({recipient} entry {receipt.get('index')})"))
    return ok
