"""Agreements at the registry: a relay and a record, never the decider (DESIGN.md §6).

Requesters file requests here; providers' nodes pull the requests addressed to
them and push back their signed decisions; requesters pull the answers. The
registry verifies every event with the actor's registered keys and keeps the
history, so it can refuse impossible requests at once and stop issuing tokens
for an agreement that is not active. What a provider's node enforces is its
own copy: a registry that lies can at worst withhold a request.

A member sees only agreements it is a party to; to anyone else an agreement
does not exist (404, never 403), so ids cannot be probed.

Each event the registry accepts is appended to its exchange log as
``agreement.event`` in the transaction that stores it (a request is the
first event, action ``request``); a refused event leaves no entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corridor.agreement_store import AgreementStore
from corridor.errors import BadRequest, Conflict, Forbidden, NotFound
from corridor.tlog import LogEvent
from crypto.keys import KeySet
from policies.agreement_terms import load_agreement_terms
from policies.agreements import (
    ACTIVE,
    REVOKED,
    Agreement,
    AgreementError,
    Event,
    extend,
    is_past_end,
    last_day,
    restore_stored_history,
    revoked_reason,
)
from policies.errors import PolicyError
from registry.exchange.catalog import get_entry
from registry.log.exchange_log import LOG
from registry.membership.members import active_keys
from registry.models import MEMBER_ACTIVE, Member
from registry.models import Agreement as AgreementRow
from registry.models import AgreementEvent as AgreementEventRow

__all__ = ["AGREEMENT_ID", "STORE", "append_events", "fetchable", "file_request", "view"]

STORE = AgreementStore(AgreementRow, AgreementEventRow)
#: ``<requester>.<16 hex digits>``: ids live in the requester's namespace, so
#: nobody can take (or learn of, by collision) another member's agreement id.
AGREEMENT_ID = re.compile(r"(?P<member>[a-z]{2}-[a-z0-9][a-z0-9-]{0,37})\.[0-9a-f]{16}")
MAX_EVENTS_PER_PUSH = 20


class RequestRefused(Forbidden):
    """A request the provider's published terms can never allow."""

    title = "Request refused"


def _keys_for(session: Session) -> Any:
    def keys_for(member_id: str) -> KeySet:
        return active_keys(session, member_id) if len(member_id) <= 40 else KeySet()
    return keys_for


def view(row: AgreementRow, history: Sequence[str]) -> dict[str, Any]:
    """An agreement as the API shows it to a party."""
    return {"id": row.id, "requester": row.requester, "provider": row.provider,
            "dataset": row.dataset, "state": row.state, "terms": row.terms,
            "updated_at": row.updated_at, "events": list(history)}


def _party_row(session: Session, agreement_id: str, caller: str,
               lock: bool = False) -> AgreementRow:
    row: AgreementRow | None = STORE.get(session, agreement_id, lock=lock)
    if row is None or caller not in (row.requester, row.provider):
        raise NotFound(f"no agreement {agreement_id[:80]}")
    return row


def party_view(session: Session, agreement_id: str, caller: str) -> dict[str, Any]:
    """One agreement, for one of its parties (404 for anyone else)."""
    row = _party_row(session, agreement_id, caller)
    return view(row, STORE.history(session, row.id))


def file_request(session: Session, event_jws: str, *, caller: str, now: datetime) -> AgreementRow:
    """Verify and store a new request, refusing at once what the provider never allows.

    :raises BadRequest: malformed or badly signed, or not the caller's own request.
    :raises NotFound: no such dataset in the catalog (or its provider is not active).
    :raises RequestRefused: purpose, tier or duration outside what the provider publishes.
    :raises Conflict: the id is taken (only the caller's own ids can collide).
    """
    agreement = _verify(session, None, [event_jws])
    if agreement.requester != caller:
        raise BadRequest("a request must be signed by the member filing it")
    match = AGREEMENT_ID.fullmatch(agreement.id)
    if match is None or match["member"] != caller:
        raise BadRequest(f"agreement ids are {caller}.<16 hex digits>")
    terms = load_agreement_terms(agreement.terms)
    provider = session.get(Member, terms.provider)
    if provider is None or provider.status != MEMBER_ACTIVE:
        raise NotFound(f"no dataset {terms.dataset} in the catalog")
    entry = get_entry(session, terms.provider, terms.dataset_name)
    document = entry.document
    if terms.terms.tier not in document.get("tiers", []):
        raise RequestRefused(f"tier {terms.terms.tier!r} is not offered for {terms.dataset} "
                             f"(offered: {', '.join(document.get('tiers', [])) or 'none'})")
    access = document.get("access") or {}
    purposes = access.get("purposes")
    if purposes is not None and terms.terms.purpose not in purposes:
        raise RequestRefused(f"purpose {terms.terms.purpose!r} is not allowed by the policy of "
                             f"{terms.dataset} (allowed: {', '.join(purposes)})")
    days = (terms.until - now.date()).days
    if days < 0:
        raise RequestRefused(f"until {terms.until} is in the past")
    limit = access.get("max_duration_days")
    if limit is not None and days > int(limit):
        raise RequestRefused(f"{days} days is longer than the policy of {terms.dataset} "
                             f"allows ({limit} days)")
    if STORE.get(session, agreement.id) is not None:
        raise Conflict(f"agreement id {agreement.id} is already used; pick another")
    return _save(session, agreement, agreement.events, now)


def append_events(session: Session, agreement_id: str, events: Sequence[str], *, caller: str,
                  now: datetime) -> AgreementRow:
    """Append a party's signed events (a decision, an acceptance, a revocation...).

    Events the registry already holds (a retried push) are skipped when they
    are byte-identical; every new event must be signed by the caller.

    :raises NotFound: no such agreement, or the caller is not a party.
    :raises BadRequest: an event is malformed, forged, out of order or not allowed.
    :raises Conflict: the history changed meanwhile (sync, then retry).
    """
    if not events or len(events) > MAX_EVENTS_PER_PUSH:
        raise BadRequest(f"send 1 to {MAX_EVENTS_PER_PUSH} events")
    row = _party_row(session, agreement_id, caller, lock=True)
    history = STORE.history(session, row.id)
    first_new = _first_new(history, events)
    new = list(events[first_new:])
    if not new:
        return row
    stored = STORE.restore(session, row.id)
    agreement = _verify(session, stored, new)
    added = agreement.events[len(history):]
    if any(e.actor != caller for e in added):
        raise BadRequest("each member pushes only the events it signed")
    return _save(session, agreement, added, now)


def _first_new(history: Sequence[str], events: Sequence[str]) -> int:
    """How many leading ``events`` the registry already has (a retried push)."""
    known = set(history)
    index = 0
    while index < len(events) and events[index] in known:
        index += 1
    return index


def _verify(session: Session, stored: Agreement | None, events: Sequence[str]) -> Agreement:
    try:
        agreement = extend(stored, events, keys_for=_keys_for(session))
    except AgreementError as e:
        if e.field == "events" and "out of order" in e.reason:
            raise Conflict(f"{e.reason}; sync, then retry") from e
        raise BadRequest(f"agreement refused: {e}") from e
    except PolicyError as e:
        raise BadRequest(f"agreement refused: {e}") from e
    if agreement is None:
        raise BadRequest("no events")
    return agreement


def _save(session: Session, agreement: Agreement, added: Sequence[Event],
          now: datetime) -> AgreementRow:
    """Store the verified agreement and log its ``added`` events (the caller commits)."""
    try:
        row: AgreementRow = STORE.save(session, agreement, now)
    except IntegrityError as e:
        session.rollback()
        raise Conflict("the agreement changed meanwhile; sync, then retry") from e
    # After the rows are written: the log's head lock is then held only until the commit.
    LOG.append_many(session, [_log_event(agreement, event, now) for event in added])
    return row


def _log_event(agreement: Agreement, event: Event, now: datetime) -> LogEvent:
    """The ``agreement.event`` log entry of one accepted event (no terms, no data)."""
    return LogEvent("agreement.event", now, member=agreement.requester, agreement=agreement.id,
                    fields={"provider": agreement.provider, "action": event.action,
                            "actor": event.actor, "seq": event.seq,
                            "event_sha256": hashlib.sha256(event.jws.encode("ascii")).hexdigest()})


def fetchable(session: Session, agreement_id: str, *, client: str, provider: str,
              now: datetime) -> str | None:
    """Why ``client`` may not get a fetch token for ``agreement_id`` (None: it may).

    The answer never reveals agreements the client is not the requester of.
    """
    row = STORE.get(session, agreement_id)
    if row is None or row.requester != client or row.provider != provider:
        return "no such agreement between you and this provider"
    if row.state == REVOKED:
        revocation = restore_stored_history(STORE.history(session, row.id)).last("revoke")
        return revoked_reason(agreement_id, revocation, actor=row.provider, at=row.updated_at)
    if row.state != ACTIVE:
        return f"agreement {agreement_id} is {row.state}, not active"
    if is_past_end(row.terms, now):
        return f"agreement {agreement_id} expired after {last_day(row.terms)}"
    return None


def of_member(session: Session, caller: str, *, role: str | None,
              states: Sequence[str]) -> list[dict[str, Any]]:
    """The caller's agreements (as requester, provider, or either), newest first."""
    return [view(row, STORE.history(session, row.id))
            for row in STORE.of_member(session, caller, role=role, states=states)]
