"""Checkpoints of the node's exchange log, and the registry witnessing them (DESIGN.md §10).

The node signs a checkpoint (C2SP tlog-checkpoint note, origin
``corridor/<member_id>``, key name ``<member_id>``) of its log, then asks the
registry to cosign it::

    GET  {registry}/witness/{member_id}  -> {"note": <last cosigned note>, "size": n}, or 404
    POST {registry}/witness/{member_id}     {"note": <our note>, "old_size": n,
                                             "proof": [<base64 hash>, ...]}
         -> 200 {"note": <cosigned note>}   409 problem+json (not consistent)

``proof`` proves that the log the registry last cosigned (``old_size``
entries) is a prefix of this one. The registry cosigns only a consistent
checkpoint, so the node cannot show different histories to different
auditors. A cosigned note is stored only once both signatures verify (the
node's own, and the registry's with a registry key of the trust list).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corridor.keystore import load_signing_key
from corridor.tlog import REGISTRY_NAME, node_origin
from crypto.checkpoint import Checkpoint, InvalidCheckpoint, verify_note
from crypto.keys import KeySet
from crypto.trustlist import TrustList
from node.exchange.oauth_client import TokenError
from node.exchange.registry_client import RegistryClient, RegistryError
from node.log.exchange_log import LOG
from node.settings import NodeSettings

__all__ = [
    "COSIGNED",
    "NOT_SUBMITTED",
    "REFUSED",
    "UNAVAILABLE",
    "WitnessResult",
    "checkpoint_and_submit",
    "sign_checkpoint",
    "submit_checkpoint",
]

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]

#: Outcomes of a submission.
COSIGNED, REFUSED, UNAVAILABLE, NOT_SUBMITTED = "cosigned", "refused", "unavailable", \
    "not submitted"


@dataclass(frozen=True)
class WitnessResult:
    """What became of the node's latest checkpoint.

    :ivar size: its tree size (0: the log is empty, nothing to witness).
    :ivar root: its root hash.
    :ivar outcome: :data:`COSIGNED`, :data:`REFUSED` (the registry found it
        inconsistent, or its answer did not verify), :data:`UNAVAILABLE` (the
        registry could not be asked; try again later) or :data:`NOT_SUBMITTED`.
    :ivar detail: why, for anything but a fresh cosignature.
    """

    size: int
    root: bytes
    outcome: str
    detail: str | None = None

    @property
    def root_b64(self) -> str:
        """The root hash in standard base64, as checkpoints write it."""
        return base64.b64encode(self.root).decode("ascii")


def sign_checkpoint(settings: NodeSettings, session_factory: SessionFactory,
                    now: datetime) -> Any:
    """Sign a checkpoint of the log as it is now and commit it; return its row.

    An existing checkpoint of the same size is returned as it is; ``None``
    while the log is empty.
    """
    key = load_signing_key(settings.keys_dir)
    with session_factory() as session:
        try:
            row = LOG.sign_checkpoint(session, node_origin(settings.member_id),
                                      settings.member_id, key, now)
            session.commit()
        except IntegrityError:  # another process signed this size first: use theirs
            session.rollback()
            row = LOG.latest_checkpoint(session)
        return row


def submit_checkpoint(settings: NodeSettings, client: RegistryClient,
                      session_factory: SessionFactory, trust_list: TrustList,
                      now: datetime) -> WitnessResult:
    """Ask the registry to cosign the latest checkpoint; store its answer.

    A cosigned note replaces the row's note (``cosigned_at`` = ``now``); a
    refusal is kept in ``witness_problem``. Nothing is stored when the
    registry cannot be asked.
    """
    with session_factory() as session:
        row = LOG.latest_checkpoint(session)
        if row is None:
            return WitnessResult(0, b"", NOT_SUBMITTED, "the log is empty")
        if row.cosigned_at is not None:
            return WitnessResult(row.size, row.root, COSIGNED, "already cosigned")
        try:
            old_size = _witnessed_size(session, client, trust_list, settings.member_id,
                                       row.size)
            proof = LOG.consistency_proof(session, old_size, row.size)
            cosigned = client.submit_checkpoint(row.note, old_size, proof)
        except _Inconsistent as e:
            return _refused(session, row, str(e))
        except RegistryError as e:
            if e.status in (409, 422):  # inconsistent, stale, or a note it cannot verify
                return _refused(session, row, e.detail or str(e))
            return WitnessResult(row.size, row.root, UNAVAILABLE, str(e))
        except TokenError as e:
            return WitnessResult(row.size, row.root, UNAVAILABLE,
                                 f"no token from the registry: {e.description or e.error}")
        body = Checkpoint(node_origin(settings.member_id), row.size, row.root).body()
        if _signed_body(cosigned, REGISTRY_NAME, trust_list.registry_keys) != body \
                or not _keeps_signatures(cosigned, row.note):
            return _refused(session, row, "the registry's cosigned note does not verify "
                                          "(another checkpoint, this node's signature "
                                          "missing, or not signed by the registry)")
        row.note, row.cosigned_at, row.witness_problem = cosigned, now, None
        session.commit()
        return WitnessResult(row.size, row.root, COSIGNED)


def checkpoint_and_submit(settings: NodeSettings, client: RegistryClient | None,
                          session_factory: SessionFactory, trust_list: TrustList | None,
                          now: datetime, *, only_if_grown: bool = False) -> WitnessResult:
    """Sign a checkpoint of the log now, then submit it (unless ``client`` is None).

    With ``only_if_grown`` (the refresher), nothing happens unless the log
    grew since the latest checkpoint or that one still awaits its
    cosignature (a refused one is not sent again until the log grows).
    """
    if only_if_grown:
        with session_factory() as session:
            size = LOG.size(session)
            latest = LOG.latest_checkpoint(session)
            if size == 0 or (latest is not None and latest.size == size and (
                    latest.cosigned_at is not None or latest.witness_problem is not None)):
                root = latest.root if latest is not None else b""
                return WitnessResult(size, root, NOT_SUBMITTED, "nothing new to witness")
    row = sign_checkpoint(settings, session_factory, now)
    if row is None:
        return WitnessResult(0, b"", NOT_SUBMITTED, "the log is empty")
    if client is None or trust_list is None:
        return WitnessResult(row.size, row.root, NOT_SUBMITTED, "not sent to the registry")
    return submit_checkpoint(settings, client, session_factory, trust_list, now)


class _Inconsistent(Exception):
    """What the registry witnessed is not a prefix of this node's log."""


def _witnessed_size(session: Session, client: RegistryClient, trust_list: TrustList,
                    member_id: str, size: int) -> int:
    """The size of the last checkpoint the registry cosigned, checked against this log.

    :raises _Inconsistent: the registry's note does not verify, is larger
        than this log, or its root differs from this log's at that size.
    """
    latest = client.witnessed_checkpoint()
    if latest is None:
        return 0
    note = latest.get("note")
    if not isinstance(note, str):
        raise _Inconsistent("the registry's last cosigned checkpoint has no note")
    body = _signed_body(note, REGISTRY_NAME, trust_list.registry_keys)
    if body is None:
        raise _Inconsistent("the registry's last cosigned checkpoint does not verify with "
                            "its keys in the trust list")
    try:
        witnessed = Checkpoint.from_body(body)
    except InvalidCheckpoint as e:
        raise _Inconsistent(f"the registry's last cosigned checkpoint is malformed "
                            f"({e.reason})") from e
    stated = latest.get("size")
    if witnessed.origin != node_origin(member_id) or (stated is not None
                                                      and stated != witnessed.size):
        raise _Inconsistent("the registry's last cosigned checkpoint is not this node's")
    if witnessed.size > size:
        raise _Inconsistent(f"the registry cosigned {witnessed.size} entries of this log, "
                            f"but it has only {size} in its latest checkpoint")
    if witnessed.size and LOG.root(session, witnessed.size) != witnessed.root_hash:
        raise _Inconsistent(f"this log's first {witnessed.size} entries differ from those "
                            "the registry cosigned")
    return witnessed.size


def _signed_body(note: str, name: str, keys: KeySet) -> bytes | None:
    """The note's text if one of ``keys`` signed it as ``name``, else None."""
    for kid in keys:
        try:
            body, names = verify_note(note, {name: keys.get(kid)})
        except InvalidCheckpoint:
            continue
        if name in names:
            return body
    return None


def _keeps_signatures(cosigned: str, note: str) -> bool:
    """Whether ``cosigned`` still carries every signature line of ``note`` (ours).

    Compared as text rather than verified, so a checkpoint signed before a key
    rotation is still recognised.
    """
    _, _, signatures = note.partition("\n\n")
    lines = set(cosigned.partition("\n\n")[2].splitlines())
    return bool(signatures) and all(line in lines for line in signatures.splitlines())


def _refused(session: Session, row: Any, problem: str) -> WitnessResult:
    row.witness_problem = problem[:2000]
    session.commit()
    log.warning("checkpoint of %s entries not witnessed: %s", row.size, problem)
    return WitnessResult(row.size, row.root, REFUSED, problem)
