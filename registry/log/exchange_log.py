"""The registry's exchange log (DESIGN.md §10): see :mod:`corridor.tlog`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from corridor.tlog import TransparencyLog
from registry.models import LogCheckpoint, LogEntry, LogHead, LogNode

__all__ = ["LOG", "append_refusal", "log_refusal"]

LOG = TransparencyLog(LogEntry, LogNode, LogHead, LogCheckpoint)

#: Longest reason (or caller-chosen value) a refusal entry keeps.
MAX_REASON = 200


def append_refusal(session: Session, type_: str, now: datetime, *, member: str,
                   reason: str, **fields: Any) -> None:
    """Append an authenticated member's refused request in the caller's transaction.

    String values are cut to :data:`MAX_REASON` characters: they may come from
    the caller.
    """
    LOG.append(session, type_, now, member=member, reason=reason[:MAX_REASON],
               **{k: v[:MAX_REASON] if isinstance(v, str) else v for k, v in fields.items()})


def log_refusal(session: Session, type_: str, now: datetime, *, member: str, reason: str,
                **fields: Any) -> None:
    """Roll back what the request did, then commit its refusal alone (:func:`append_refusal`)."""
    session.rollback()
    append_refusal(session, type_, now, member=member, reason=reason, **fields)
    session.commit()
