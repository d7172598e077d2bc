"""Agreement histories in a service's database: the same tables in the node and the registry.

Each service keeps, per agreement, one summary row (state, parties, terms:
what queries and enforcement read) and its events, one row each, keyed by
``(agreement_id, seq)`` so the database itself refuses a second event with
the same number (two concurrent decisions cannot both land). Events are only
ever appended; the summary is rewritten from the verified history.

The two services declare their tables with the mixins below on their own
``DeclarativeBase`` (they may not import each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from corridor.db import UTCDateTime
from policies.agreements import Agreement, restore_stored_history

__all__ = ["AgreementColumns", "AgreementEventColumns", "AgreementStore"]

ID_LENGTH = 80


class AgreementColumns:
    """Columns of the ``agreements`` summary table."""

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    requester: Mapped[str] = mapped_column(String(40), index=True)
    provider: Mapped[str] = mapped_column(String(40), index=True)
    dataset: Mapped[str] = mapped_column(String(110))
    state: Mapped[str] = mapped_column(String(16), index=True)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    events: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AgreementEventColumns:
    """Columns of the ``agreement_events`` table (append-only)."""

    agreement_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    jws: Mapped[str] = mapped_column(Text)


class AgreementStore:
    """Reads and appends agreement histories through a service's two models."""

    def __init__(self, summary: Any, event: Any) -> None:
        """Use ``summary`` (an :class:`AgreementColumns` model) and ``event`` (its events).

        Both are typed ``Any``: they are each service's own mapped classes.
        """
        self.summary = summary
        self.event = event

    def get(self, session: Session, agreement_id: str, *, lock: bool = False) -> Any:
        """The summary row of one agreement (``lock``: SELECT ... FOR UPDATE where supported)."""
        if len(agreement_id) > ID_LENGTH:
            return None
        query = select(self.summary).where(self.summary.id == agreement_id)
        if lock:
            query = query.with_for_update()
        return session.scalars(query).first()

    def history(self, session: Session, agreement_id: str) -> list[str]:
        """The agreement's events (compact JWS), oldest first."""
        return list(session.scalars(
            select(self.event.jws).where(self.event.agreement_id == agreement_id)
            .order_by(self.event.seq)))

    def restore(self, session: Session, agreement_id: str,
                operator: str | None = None) -> Agreement | None:
        """The agreement rebuilt from its stored (already verified) history."""
        history = self.history(session, agreement_id)
        return restore_stored_history(history, operator) if history else None

    def save(self, session: Session, agreement: Agreement, now: datetime,
             **extra: Any) -> Any:
        """Append ``agreement``'s events not yet stored and rewrite its summary.

        ``agreement`` must extend the stored history (the caller verified it).
        The caller commits; an ``IntegrityError`` at commit means another
        writer appended first.
        """
        row = self.get(session, agreement.id)
        known = row.events if row is not None else 0
        if known > len(agreement.events):
            raise ValueError(f"agreement {agreement.id} would lose stored events")
        for event in agreement.events[known:]:
            session.add(self.event(agreement_id=agreement.id, seq=event.seq,
                                   action=event.action, actor=event.actor, at=event.at,
                                   jws=event.jws))
        if row is None:
            row = self.summary(id=agreement.id,
                               requested_at=agreement.events[0].at, **extra)
            session.add(row)
        else:
            for name, value in extra.items():
                setattr(row, name, value)
        row.requester, row.provider = agreement.requester, agreement.provider
        row.dataset = str(agreement.terms.get("dataset", ""))
        row.state, row.terms = agreement.state, dict(agreement.terms)
        row.events, row.updated_at = len(agreement.events), now
        session.flush()
        return row

    def of_member(self, session: Session, member: str, *, role: str | None = None,
                  states: Sequence[str] = ()) -> list[Any]:
        """Agreements ``member`` is a party to (as ``role``, if given), newest first."""
        query = select(self.summary)
        if role == "requester":
            query = query.where(self.summary.requester == member)
        elif role == "provider":
            query = query.where(self.summary.provider == member)
        else:
            query = query.where((self.summary.requester == member)
                                | (self.summary.provider == member))
        if states:
            query = query.where(self.summary.state.in_(states))
        return list(session.scalars(query.order_by(self.summary.updated_at.desc())))
