"""What every agreement-bound summary endpoint does around its own work.

``counts``, ``census`` and ``overlap`` each check a token of their scope,
then the agreement, and log any refusal after the token verified under
their own kind (``counts.refused`` ...), so strangers cannot grow the log
while partners' refusals are on the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.orm import Session

from corridor.errors import CorridorError
from crypto.tokens import AccessClaims
from node.exchange.agreements import log_refusal
from node.exchange.auth import MissingScope, authorize

__all__ = ["authorized", "refusals_logged"]


def authorized(session: Session, scope: str, *, agreement_id: str, kind: str,
               now: datetime) -> AccessClaims:
    """The request's verified token claims for ``scope``; a token without it is logged.

    :raises InvalidToken, MissingScope, TrustUnavailable: as :func:`authorize`.
    """
    try:
        return authorize(scope)
    except MissingScope as e:
        log_refusal(session, claims=e.claims, agreement_id=agreement_id, error=e, now=now,
                    kind=kind)
        session.commit()
        raise


@contextmanager
def refusals_logged(session: Session, claims: AccessClaims, *, agreement_id: str, kind: str,
                    now: datetime) -> Iterator[None]:
    """Roll back and log (as ``kind``) a :class:`CorridorError` raised in the block; re-raise."""
    try:
        yield
    except CorridorError as e:
        session.rollback()
        log_refusal(session, claims=claims, agreement_id=agreement_id, error=e, now=now,
                    kind=kind)
        session.commit()
        raise
