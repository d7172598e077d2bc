"""The registry as a witness of its members' logs, and the checkpoints of its own (DESIGN.md §10).

A member's node signs checkpoints of its exchange log (c2sp.org/tlog-checkpoint,
origin :func:`corridor.tlog.node_origin`, key name = the member id) and
submits each new one here with a consistency proof from the last one the
registry cosigned. The registry cosigns only a checkpoint consistent with that
one, so a node cannot show two different histories to two auditors: whoever
holds a registry-cosigned checkpoint knows every other cosigned checkpoint of
that node extends it or is extended by it.

Per member, ``witnessed_checkpoints`` holds the newest cosigned checkpoint. It
is replaced by a compare-and-swap on ``(size, root)``, so of two concurrent
submissions from the same state exactly one wins and the other is told to
retry. An inconsistent checkpoint (smaller tree, same size with another root,
a proof that does not verify) is refused and kept, with the cosigned one it
contradicts and the proof, in ``witness_refusals``: two notes signed by the
same member that cannot both be true are the evidence an auditor needs.

Each cosignature and each refusal is also an entry of the registry's own log
(``witness.cosigned``, ``witness.refused``), which the registry checkpoints
itself (:func:`sign_registry_checkpoint`, :func:`start_checkpointer`).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from corridor.db import make_engine, make_session_factory
from corridor.errors import Conflict, CorridorError
from corridor.lease import Lease
from corridor.tlog import REGISTRY_NAME, REGISTRY_ORIGIN, node_origin
from crypto.checkpoint import (
    CHECKPOINT_REJECTED,
    Checkpoint,
    InvalidCheckpoint,
    add_signature,
    key_id,
    open_note,
)
from crypto.keys import KeySet, SigningKey
from crypto.merkle import EMPTY_ROOT, InvalidProof, verify_consistency
from registry.log.exchange_log import LOG
from registry.models import LogCheckpoint, WitnessedCheckpoint, WitnessRefusal

__all__ = [
    "FORKED",
    "INCONSISTENT",
    "MAX_WITNESSED_SIZE",
    "SHRUNK",
    "CheckpointRejected",
    "InconsistentCheckpoint",
    "StaleCheckpoint",
    "Submission",
    "latest",
    "refusals",
    "sign_registry_checkpoint",
    "start_checkpointer",
    "submit",
    "witnessed",
]

log = logging.getLogger(__name__)

#: Largest tree size witnessed: ``witnessed_checkpoints.size`` is a 32-bit integer column.
MAX_WITNESSED_SIZE = 2**31 - 1

#: Refusal reasons (``witness.refused`` log entries, ``witness_refusals.reason``).
SHRUNK = "smaller-tree"
FORKED = "same-size-different-root"
INCONSISTENT = "inconsistent-proof"


class CheckpointRejected(CorridorError):
    """The note is malformed, not signed by the member's keys, or of another log.

    Opaque, like every signature failure (CONVENTIONS.md §5): the cause goes to the log.
    """

    status = 422
    title = "Checkpoint rejected"


class StaleCheckpoint(Conflict):
    """The submission starts from a checkpoint that is no longer the one cosigned."""

    title = "Witness state changed"


class InconsistentCheckpoint(Conflict):
    """The checkpoint contradicts the one the registry cosigned (kept as evidence)."""

    title = "Inconsistent checkpoint"


@dataclass(frozen=True)
class Submission:
    """A checkpoint a member asks the registry to cosign.

    :ivar member: the member whose log it is (the authenticated caller).
    :ivar note: the signed checkpoint note, as sent.
    :ivar old_size: the size of the checkpoint the member believes the registry
        cosigned last (0 for the first one).
    :ivar proof: RFC 9162 consistency proof from ``old_size`` to the new size.
    """

    member: str
    note: str
    old_size: int
    proof: tuple[bytes, ...]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def open_member_note(note: str, member: str, keys: KeySet) -> tuple[Checkpoint, str]:
    """Verify a member's checkpoint note; return it parsed and reduced to its signatures.

    The note must verify under the key name ``member`` with one of ``keys``
    (a member may have several active keys during a rotation) and carry the
    origin :func:`corridor.tlog.node_origin`. The returned note keeps only the
    signature lines of those keys that verified, so what the registry cosigns
    and stores carries no line it did not check.

    :raises CheckpointRejected: on any failure (the cause is logged).
    """
    origin = node_origin(member)
    checkpoint: Checkpoint | None = None
    verified: set[bytes] = set()
    reasons: list[str] = []
    for key in keys.verify_keys():
        try:
            checkpoint, _ = open_note(note, {member: key}, origin=origin)
        except InvalidCheckpoint as e:
            reasons.append(e.reason)
            continue
        verified.add(key_id(member, key))
    if checkpoint is None:
        log.warning("checkpoint of %s refused: %s", member,
                    "; ".join(sorted(set(reasons))) or "the member has no active key")
        raise CheckpointRejected(CHECKPOINT_REJECTED)
    if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
        log.warning("checkpoint of %s refused: empty tree with a non-empty root", member)
        raise CheckpointRejected(CHECKPOINT_REJECTED)
    # open_note checked the format: the signature block follows the last blank line.
    block = note[note.rfind("\n\n") + 2:-1].split("\n")
    own = [line for line in block if _line_key(line, member) in verified]
    reduced = checkpoint.body().decode("utf-8") + "\n" + "".join(f"{line}\n" for line in own)
    return checkpoint, reduced


def _line_key(line: str, member: str) -> bytes | None:
    """The key id of a signature line by ``member`` (None for another name)."""
    prefix = f"\u2014 {member} "
    if not line.startswith(prefix):
        return None
    return base64.b64decode(line[len(prefix):])[:4]


def latest(session: Session, member: str) -> WitnessedCheckpoint | None:
    """The newest checkpoint of ``member`` the registry cosigned, or None."""
    if len(member) > 40:
        return None
    return session.get(WitnessedCheckpoint, member)


def witnessed(session: Session) -> Sequence[WitnessedCheckpoint]:
    """Every member's newest cosigned checkpoint, by member."""
    return session.scalars(select(WitnessedCheckpoint)
                           .order_by(WitnessedCheckpoint.member)).all()


def refusals(session: Session, member: str | None = None) -> Sequence[WitnessRefusal]:
    """Refused checkpoints (of one member, if given), oldest first."""
    query = select(WitnessRefusal).order_by(WitnessRefusal.id)
    if member is not None:
        query = query.where(WitnessRefusal.member == member)
    return session.scalars(query).all()


def submit(session: Session, submission: Submission, *, keys: KeySet, witness_key: SigningKey,
           now: datetime) -> str:
    """Cosign a member's checkpoint if it is consistent with the last one cosigned.

    ``keys`` are the member's active keys. On success the new checkpoint
    replaces the stored one and ``witness.cosigned`` is logged; the caller
    commits. Returns the note with the registry's cosignature (name
    :data:`corridor.tlog.REGISTRY_NAME`).

    :raises CheckpointRejected: the note does not verify (nothing stored).
    :raises StaleCheckpoint: ``old_size`` is not the size cosigned last, or
        another submission replaced it meanwhile (nothing stored; fetch the
        registry's checkpoint and retry).
    :raises InconsistentCheckpoint: the checkpoint contradicts the cosigned one;
        the refusal and ``witness.refused`` are committed before this is raised.
    """
    checkpoint, note = open_member_note(submission.note, submission.member, keys)
    if checkpoint.size > MAX_WITNESSED_SIZE:
        raise CheckpointRejected(f"the registry witnesses logs of at most {MAX_WITNESSED_SIZE} "
                                 "entries")
    row = latest(session, submission.member)
    held = row.size if row is not None else 0
    if submission.old_size != held:
        raise StaleCheckpoint(
            f"the registry last cosigned a checkpoint of size {held} of {submission.member}; "
            "send old_size and a consistency proof from it", size=held)
    try:
        cosigned = add_signature(note, REGISTRY_NAME, witness_key).decode("utf-8")
    except ValueError as e:  # no room left for the cosignature under MAX_NOTE_SIZE
        log.warning("checkpoint of %s refused: %s", submission.member, e)
        raise CheckpointRejected(CHECKPOINT_REJECTED) from e
    if row is None:
        if submission.proof:
            raise CheckpointRejected("a first checkpoint goes with an empty proof")
        session.add(WitnessedCheckpoint(member=submission.member, size=checkpoint.size,
                                        root=checkpoint.root_hash, note=cosigned,
                                        cosigned_at=now))
        try:
            session.flush()
        except IntegrityError as e:
            session.rollback()
            raise StaleCheckpoint(
                f"another checkpoint of {submission.member} was cosigned meanwhile; "
                "fetch it and retry") from e
    else:
        if checkpoint.size < row.size:
            _refuse(session, row, submission, checkpoint, SHRUNK,
                    f"offered size {checkpoint.size} is smaller than the cosigned size "
                    f"{row.size}", now)
        if checkpoint.size == row.size:
            if checkpoint.root_hash != row.root:
                _refuse(session, row, submission, checkpoint, FORKED,
                        f"offered root differs from the cosigned root at size {row.size}", now)
            return cosigned  # the same tree head again: nothing changes
        try:
            verify_consistency(row.size, checkpoint.size, submission.proof, row.root,
                               checkpoint.root_hash)
        except InvalidProof as e:
            _refuse(session, row, submission, checkpoint, INCONSISTENT,
                    f"no valid consistency proof from size {row.size} to size "
                    f"{checkpoint.size} ({e.reason})", now)
        _swap(session, row, checkpoint, cosigned, now)
    LOG.append(session, "witness.cosigned", now, member=submission.member,
               size=checkpoint.size, root=_b64(checkpoint.root_hash))
    return cosigned


def _swap(session: Session, old: WitnessedCheckpoint, new: Checkpoint, note: str,
          now: datetime) -> None:
    """Replace ``old`` by ``new`` unless someone else replaced it first."""
    w = WitnessedCheckpoint
    result = session.connection().execute(
        update(w).where(w.member == old.member, w.size == old.size, w.root == old.root)
        .values(size=new.size, root=new.root_hash, note=note, cosigned_at=now))
    if result.rowcount != 1:
        session.rollback()
        raise StaleCheckpoint(f"another checkpoint of {old.member} was cosigned meanwhile; "
                              "fetch it and retry")


def _refuse(session: Session, row: WitnessedCheckpoint, submission: Submission,
            checkpoint: Checkpoint, reason: str, detail: str, now: datetime) -> NoReturn:
    """Keep both notes and the proof as evidence, log the refusal, commit, and raise."""
    log.warning("checkpoint of %s refused as inconsistent: %s", submission.member, detail)
    session.add(WitnessRefusal(member=submission.member, at=now, reason=f"{reason}: {detail}",
                               cosigned_note=row.note, offered_note=submission.note,
                               proof=[_b64(h) for h in submission.proof]))
    session.flush()
    LOG.append(session, "witness.refused", now, member=submission.member, reason=reason,
               offered_size=checkpoint.size, offered_root=_b64(checkpoint.root_hash),
               cosigned_size=row.size)
    session.commit()
    raise InconsistentCheckpoint(
        f"checkpoint refused: it is not consistent with the checkpoint of size {row.size} "
        f"the registry cosigned ({detail})", size=row.size, reason=reason)


# --- the registry's own checkpoints ----------------------------------------------------


def sign_registry_checkpoint(session: Session, key: SigningKey, now: datetime
                             ) -> LogCheckpoint | None:
    """Sign (and commit) a checkpoint of the registry's log at its current size.

    Returns the checkpoint of the current size (None while the log is empty).
    Signing twice at one size is harmless: the stored one is returned. Two
    processes signing the same size at once collide on its primary key; the
    loser rolls back and reads the winner's.
    """
    try:
        row: LogCheckpoint | None = LOG.sign_checkpoint(session, REGISTRY_ORIGIN, REGISTRY_NAME,
                                                        key, now)
        session.commit()
    except IntegrityError:
        session.rollback()
        row = LOG.latest_checkpoint(session)
    return row


def checkpoint_if_grown(session: Session, key: SigningKey, now: datetime) -> LogCheckpoint | None:
    """Sign a checkpoint if the log grew since the last one; return the new one, else None."""
    size = LOG.size(session)
    latest_row: Any = LOG.latest_checkpoint(session)
    if size == 0 or (latest_row is not None and latest_row.size >= size):
        session.rollback()  # end the read transaction
        return None
    return sign_registry_checkpoint(session, key, now)


def start_checkpointer(database_url: str, key: SigningKey, interval: float,
                       lease: Lease | None = None) -> threading.Event | None:
    """Sign the registry's checkpoint every ``interval`` seconds when the log grew.

    Runs in a daemon thread with its own engine; returns the event that stops
    it (None when ``interval`` is not positive). Every gunicorn worker may
    start one; with a ``lease`` only its holder signs (the others take over
    if it dies), and without one they still agree through the checkpoints table.
    """
    if interval <= 0:
        return None
    stop = threading.Event()

    def run() -> None:
        engine = make_engine(database_url)
        factory = make_session_factory(engine)
        try:
            while not stop.wait(interval):
                if lease is not None and not lease.held():
                    continue
                try:
                    with factory() as session:
                        row = checkpoint_if_grown(session, key, datetime.now(UTC))
                    if row is not None:
                        log.info("signed checkpoint of the registry log at size %d", row.size)
                except SQLAlchemyError as e:
                    log.warning("could not sign a checkpoint of the registry log "
                                "(will retry): %s", e)
                except Exception:
                    # Keep the thread alive: the next tick may well succeed.
                    log.exception("signing a checkpoint of the registry log failed")
        finally:
            engine.dispose()
            if lease is not None:
                lease.release()

    threading.Thread(target=run, name="registry-checkpointer", daemon=True).start()
    return stop
