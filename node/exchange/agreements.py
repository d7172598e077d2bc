"""Agreements at a node: its own copy, the owner's decisions, and what a fetch may get.

The node keeps every agreement it is a party to, verified event by event with
the keys of its stored trust list. As **provider**, that copy is the law
(DESIGN.md §6): a package is served only for an agreement that is active here,
whatever the registry says, and its plan is compiled from this node's policy
and the agreement's terms alone. Decisions are signed here and stored first;
the registry is told afterwards (at once when it answers, else at the next
sync), so a revocation takes effect even while the registry is down.

Every event this node stores, signed here or pulled from the registry, is
also appended to the node's exchange log (DESIGN.md §10) in the same
transaction (:func:`log_agreement_events`), as are the package endpoint's
outcomes (:func:`log_served`, :func:`log_refusal`). Leaves hold ids, digests,
counts and reasons, never data.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corridor.agreement_store import ID_LENGTH, AgreementStore
from corridor.errors import Conflict, CorridorError, Forbidden, NotFound
from corridor.keystore import public_keys
from corridor.tlog import LogEvent
from crypto.canonical import canonical_json
from crypto.keys import KeySet, SigningKey
from crypto.tokens import AccessClaims
from crypto.trustlist import TrustList
from node.data.policy_store import get_policy
from node.exchange.package import ExportResult, dataset_plan
from node.log.exchange_log import LOG
from node.models import Agreement as AgreementRow
from node.models import AgreementEvent as AgreementEventRow
from node.models import Dataset
from policies.agreement_terms import AgreementTerms, load_agreement_terms
from policies.agreements import (
    ACTIVE,
    APPROVED,
    PROVIDER,
    REQUESTER,
    REVOKED,
    Agreement,
    AgreementError,
    Event,
    event_digest,
    extend,
    is_past_end,
    last_day,
    next_event,
    revoked_reason,
)
from policies.engine import Plan
from policies.terms import check_terms

log = logging.getLogger(__name__)

STORE = AgreementStore(AgreementRow, AgreementEventRow)
#: Which actions each side takes (the state machine checks the rest).
PROVIDER_ACTIONS = ("approve", "narrow", "refuse", "revoke")
REQUESTER_ACTIONS = ("accept", "withdraw")
#: Longest refusal reason kept in a log leaf, in characters.
MAX_LOGGED_REASON = 300
#: Longest cursor kept as it is in a log leaf; longer ones are logged as their digest.
MAX_LOGGED_CURSOR = 512


class AgreementNotInForce(Forbidden):
    """The agreement exists between these parties but does not allow a fetch now."""

    title = "Agreement not in force"


class WrongAgreement(Forbidden):
    """The token was issued for another agreement."""

    title = "Token is for another agreement"


@dataclass
class SyncReport:
    """What one exchange with the registry changed."""

    pushed: int = 0
    new_requests: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def new_agreement_id(member_id: str) -> str:
    """A fresh agreement id in ``member_id``'s namespace (``member.<16 hex>``)."""
    return f"{member_id}.{secrets.token_hex(8)}"


def keys_from(trust_list: TrustList) -> Callable[[str], KeySet]:
    """Verify events with the member keys of ``trust_list`` (unknown members: no keys)."""
    def keys_for(member_id: str) -> KeySet:
        entry = trust_list.member(member_id)
        return entry.keys if entry is not None else KeySet()
    return keys_for


def local(session: Session, agreement_id: str, member_id: str) -> AgreementRow:
    """One of this node's agreements.

    :raises NotFound: no such agreement here.
    """
    row: AgreementRow | None = STORE.get(session, agreement_id)
    if row is None or member_id not in (row.requester, row.provider):
        raise NotFound(f"no agreement {agreement_id[:80]} at this node")
    return row


def restore(session: Session, row: AgreementRow) -> Agreement:
    """The agreement rebuilt from this node's stored history."""
    agreement = STORE.restore(session, row.id)
    assert agreement is not None  # a summary row always has its events
    return agreement


def store_view(session: Session, view: Mapping[str, Any], *, me: str,
               keys_for: Callable[[str], KeySet], now: datetime) -> tuple[AgreementRow, bool]:
    """Merge an agreement as the registry holds it into this node's copy.

    Events this node already holds must match the registry's byte for byte;
    new ones are verified with ``keys_for`` before they are stored (and
    logged, in the caller's transaction). Events this node signed and has
    not pushed yet are kept. ``verified_at`` records ``now``: the pages say
    how fresh the state they show is.

    :raises AgreementError: the registry's history contradicts this node's,
        or an event does not verify.
    :returns: the row, and whether anything changed.
    """
    remote = [str(e) for e in view.get("events", [])]
    row: AgreementRow | None = STORE.get(session, str(view.get("id", "")))
    held = STORE.history(session, row.id) if row is not None else []
    common = min(len(held), len(remote))
    if held[:common] != remote[:common]:
        raise AgreementError("events", f"the registry's history of {row.id if row else '?'} "
                                       "differs from this node's")
    if len(remote) <= len(held):
        if row is None:
            raise AgreementError("events", "the registry sent an agreement without events")
        if row.pushed < len(remote):
            row.pushed = len(remote)
        row.verified_at = now
        return row, False
    before = restore(session, row) if row is not None else None
    agreement = extend(before, remote[len(held):], keys_for=keys_for)
    assert agreement is not None
    if me not in (agreement.requester, agreement.provider):
        raise AgreementError("actor", f"{me} is not a party to {agreement.id}")
    role = PROVIDER if agreement.provider == me else REQUESTER
    saved: AgreementRow = STORE.save(session, agreement, now, role=role, pushed=len(remote))
    saved.verified_at = now
    log_agreement_events(session, agreement, len(held), me=me, now=now)
    return saved, True


def act(session: Session, *, me: str, key: SigningKey, keys_dir: Path, agreement_id: str,
        action: str, now: datetime, terms: Mapping[str, Any] | None = None,
        reason: str | None = None) -> AgreementRow:
    """Sign this node's next event on an agreement and store it (the caller pushes it).

    An offer (approve or narrow) is checked against the dataset's policy
    first: an owner cannot grant more than the policy allows. The event is
    logged in the same transaction (:func:`log_agreement_events`): commit next.

    :raises NotFound: no such agreement here.
    :raises AgreementError: the state machine forbids the action.
    :raises PolicyError: the offered terms break the policy or widen the request.
    """
    row = local(session, agreement_id, me)
    allowed = PROVIDER_ACTIONS if row.provider == me else REQUESTER_ACTIONS
    if action not in allowed:
        raise AgreementError("action", f"as the {row.role} of {row.id} this node cannot "
                                       f"{action} it")
    agreement = restore(session, row)
    if action in ("approve", "narrow"):
        offered = load_agreement_terms(terms if terms is not None else agreement.terms)
        policy, _ = get_policy(session, offered.dataset_name)
        check_terms(policy, offered.policy_terms(now.date()), row.requester)
    event = next_event(agreement, action=action, actor=me,
                       role=PROVIDER if row.provider == me else REQUESTER, at=now, key=key,
                       terms=terms if action == "narrow" else None, reason=reason)
    updated = extend(agreement, [event.jws], keys_for=lambda m: public_keys(keys_dir))
    assert updated is not None
    try:
        saved: AgreementRow = STORE.save(session, updated, now)
    except IntegrityError as e:
        session.rollback()
        raise Conflict(f"agreement {agreement_id} changed meanwhile; try again") from e
    log_agreement_events(session, updated, len(agreement.events), me=me, now=now)
    return saved


# --- the exchange log (DESIGN.md §10) ----------------------------------------------------


def _log_event(agreement: Agreement, event: Event, me: str, now: datetime) -> LogEvent:
    """The log entry of one agreement event, as this node (a party) records it."""
    role = REQUESTER if agreement.requester == me else PROVIDER
    other = agreement.provider if role == REQUESTER else agreement.requester
    # The signed event's digest ties the entry to the agreement's own history.
    fields: dict[str, Any] = {"seq": event.seq, "event": event_digest(event.jws)}
    if event.action == "request":
        terms = event.terms or {}
        type_ = "request.received" if role == PROVIDER else "request.filed"
        fields.update(dataset=terms.get("dataset"), purpose=terms.get("purpose"),
                      tier=terms.get("tier"), until=terms.get("until"))
    elif event.action in ("approve", "narrow", "refuse"):
        type_ = "request.decided"
        fields.update(decision=event.action, reason=event.reason)
    elif event.action == "accept":
        type_ = "agreement.signed"
        fields["role"] = role
        # What both signatures cover; nothing after the acceptance changes it.
        fields["document_sha256"] = hashlib.sha256(
            canonical_json(agreement.document())).hexdigest()
    elif event.action == "withdraw":
        type_ = "request.withdrawn"
        fields.update(by=event.actor, reason=event.reason)
    elif event.action == "revoke":
        type_ = "agreement.revoked"
        fields.update(by=event.actor, reason=event.reason)
    else:  # "expire", the only other action the state machine knows
        type_ = "agreement.expired"
        fields["by"] = event.actor
    return LogEvent(type_, now, other, agreement.id, fields)


def log_agreement_events(session: Session, agreement: Agreement, known: int, *, me: str,
                         now: datetime) -> list[int]:
    """Append one log entry per event of ``agreement`` after the first ``known``.

    Called in the transaction that stores those events, just before the
    caller commits: the events and their entries are kept or lost together.
    Types: ``request.filed`` (requester) / ``request.received`` (provider),
    ``request.decided``, ``agreement.signed``, ``request.withdrawn``,
    ``agreement.revoked``, ``agreement.expired``; ``member`` is the other party.
    """
    return LOG.append_many(session, [_log_event(agreement, event, me, now)
                                     for event in agreement.events[known:]])


def bounded(text: str | None) -> str | None:
    """A cursor as a log leaf keeps it: itself if short, else ``sha256:<hex>`` of it.

    Cursors come from the other party (``since``, or the provider's signed
    descriptor); a leaf stays small whatever they send.
    """
    if text is None or len(text) <= MAX_LOGGED_CURSOR:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def log_refusal(session: Session, *, claims: AccessClaims, agreement_id: str,
                error: CorridorError, now: datetime, kind: str = "fetch.refused") -> int:
    """Log a package (or counts) request refused after its token verified (``kind``).

    Only callers holding a valid token reach this: refusals of unauthenticated
    requests are not logged, so strangers cannot grow the log. The caller commits.
    """
    reason = str(error.detail or error.title)[:MAX_LOGGED_REASON]
    return LOG.append(session, kind, now, member=claims.client_id,
                      agreement=agreement_id[:ID_LENGTH], status=error.status, reason=reason,
                      token_jti=claims.jti)


def log_served(session: Session, *, me: str, claims: AccessClaims, agreement_id: str,
               since: str | None, result: ExportResult, now: datetime,
               started_index: int | None = None) -> int:
    """Log a package as served (``package.served``) if its agreement is still in force.

    The entry is appended first: that takes the log's write lock, which a
    revocation also takes to log itself, so the agreement read next reflects
    every revocation logged before this package. A revoked (or expired)
    agreement raises and the caller rolls the entry back. The caller commits.
    ``started_index`` names the ``package.started`` entry of the same package.

    :raises NotFound, WrongAgreement, AgreementNotInForce: as :func:`authorize_fetch`.
    """
    index = LOG.append(session, "package.served", now, member=claims.subject,
                       agreement=agreement_id, token_jti=claims.jti,
                       plan_digest=result.plan_digest, rows=dict(result.rows),
                       since=bounded(since), cursor=bounded(result.cursor or None),
                       content_sha256=result.content_sha256, started_index=started_index)
    authorize_fetch(session, me=me, claims=claims, agreement_id=agreement_id, now=now)
    return index


def unpushed(session: Session, row: AgreementRow) -> list[str]:
    """This node's events the registry does not have yet."""
    return STORE.history(session, row.id)[row.pushed:]


def pending_push(session: Session, me: str) -> list[AgreementRow]:
    """Agreements with events still to send to the registry."""
    return [row for row in STORE.of_member(session, me) if row.pushed < row.events]


def authorize_fetch(session: Session, *, me: str, claims: AccessClaims, agreement_id: str,
                    now: datetime, catch_up: Callable[[str], None] | None = None
                    ) -> AgreementRow:
    """The agreement a verified fetch token may use here, or the reason it may not.

    ``catch_up(agreement_id)`` pulls the agreement's events from the registry
    now: a valid token for an agreement this node holds as approved means the
    requester has most likely just accepted, and the partner should not wait
    for the next poll. The acceptance is verified like any synced event.

    :raises NotFound: not an agreement of this node with the token's subject
        (another member's agreement is not confirmed to exist).
    :raises WrongAgreement: the token names another agreement.
    :raises AgreementNotInForce: revoked, expired, refused, withdrawn or not yet accepted.
    """
    row: AgreementRow | None = STORE.get(session, agreement_id)
    if row is None or row.provider != me or row.requester != claims.subject:
        raise NotFound(f"no agreement {agreement_id[:80]} with {claims.subject}")
    if claims.extra.get("agreement") != agreement_id:
        raise WrongAgreement("this token was issued for another agreement")
    if row.state == APPROVED and catch_up is not None:
        catch_up(agreement_id)
        row = STORE.get(session, agreement_id)
        assert row is not None
    if row.state == REVOKED:
        revocation = restore(session, row).last("revoke")
        at = revocation.at if revocation else row.updated_at
        raise AgreementNotInForce(
            revoked_reason(row.id, revocation, actor=me, at=row.updated_at), state=REVOKED,
            revoked_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if row.state == APPROVED:
        raise AgreementNotInForce(f"agreement {row.id} is approved, not active: the requester "
                                  "has not accepted it, or the registry could not be asked "
                                  "whether it has", state=row.state)
    if row.state != ACTIVE:
        raise AgreementNotInForce(f"agreement {row.id} is {row.state}, not active",
                                  state=row.state)
    if is_past_end(row.terms, now):
        end = last_day(row.terms)
        assert end is not None
        raise AgreementNotInForce(f"agreement {row.id} expired at the end of {end}",
                                  state="expired", expired_at=end.isoformat())
    return row


def plan_for(session: Session, row: AgreementRow, *, keys_dir: Path, now: datetime
             ) -> tuple[Dataset, Plan, AgreementTerms]:
    """Compile the plan of an agreement: this node's policy and the agreement's terms only.

    :raises PolicyError: the policy no longer allows these terms.
    :raises NotFound: the dataset is gone.
    """
    terms = load_agreement_terms(row.terms)
    dataset, plan = dataset_plan(session, terms.dataset_name,
                                 terms.policy_terms(row.requested_at.date()), row.requester, now,
                                 keys_dir=keys_dir, pseudonym_scope=f"agreement:{row.id}")
    return dataset, plan, terms


__all__ = [
    "PROVIDER_ACTIONS",
    "REQUESTER_ACTIONS",
    "STORE",
    "AgreementNotInForce",
    "SyncReport",
    "WrongAgreement",
    "act",
    "authorize_fetch",
    "bounded",
    "keys_from",
    "local",
    "log_agreement_events",
    "log_refusal",
    "log_served",
    "new_agreement_id",
    "pending_push",
    "plan_for",
    "restore",
    "store_view",
    "unpushed",
]
