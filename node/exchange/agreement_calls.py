"""What every agreement-bound summary endpoint does around its own work.

``counts``, ``census`` and ``overlap`` each check a token of their scope,
then the agreement, and log any refusal after the token verified under
their own kind (``counts.refused`` ...), so strangers cannot grow the log
while partners' refusals are on the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from corridor.errors import CorridorError
from crypto.tokens import AccessClaims
from node.exchange.agreement_sync import refresh_one
from node.exchange.agreements import authorize_fetch, log_refusal
from node.exchange.auth import MissingScope, authorize
from node.exchange.oauth_client import TokenError
from node.exchange.registry_client import RegistryClient, RegistryError
from node.exchange.trust_store import current_trust_store
from node.models import Agreement as AgreementRow
from node.settings import current_settings, current_signing_key
from policies.errors import PolicyError

__all__ = ["authorized", "in_force", "refusals_logged"]

log = logging.getLogger(__name__)
#: Seconds a fetch may wait for the registry while catching up on an acceptance.
CATCH_UP_TIMEOUT = 5.0


def in_force(session: Session, claims: AccessClaims, agreement_id: str,
             now: datetime) -> AgreementRow:
    """The agreement ``claims`` may use at this node, caught up with the registry if needed.

    :raises NotFound, WrongAgreement, AgreementNotInForce: as :func:`authorize_fetch`.
    """
    settings = current_settings()
    return authorize_fetch(session, me=settings.member_id, claims=claims,
                           agreement_id=agreement_id, now=now,
                           catch_up=lambda agreement: _catch_up(session, agreement, now))


def _catch_up(session: Session, agreement_id: str, now: datetime) -> None:
    """Pull one agreement from the registry (its acceptance, verified); log a failure."""
    settings = current_settings()
    trust_list = current_trust_store().current()
    if not settings.registry_url or trust_list is None:
        return
    with httpx.Client(timeout=CATCH_UP_TIMEOUT) as http:
        client = RegistryClient(settings.registry_url, member_id=settings.member_id,
                                key=current_signing_key(), http=http, clock=lambda: now)
        try:
            refresh_one(session, client, trust_list, agreement_id, now)
        except (RegistryError, TokenError, PolicyError, CorridorError) as e:
            session.rollback()
            log.warning("could not catch up on %s at the registry: %s", agreement_id, e)


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
