"""Data-use agreements: a state machine whose history is a chain of signed events.

DESIGN.md §6::

    requested --owner approves--> approved --requester accepts--> active --> expired
        |                  \\--owner narrows terms--> (requester must accept)  \\--> revoked
        \\--owner refuses--> refused      requested|approved --requester withdraws--> withdrawn

Every transition is an :class:`Event` signed by its actor's key (compact JWS,
``typ`` = ``corridor-agreement-event+jwt``) and chained to the previous one by
its SHA-256, so history cannot be reordered, dropped or rewritten without
breaking a signature or a link. :func:`replay` verifies a whole history with
the parties' keys (from the trust list) and returns the agreement's state;
anyone holding the trust list can do this offline.

Pure: no IO, no clock (``at`` comes in with each event).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import sign_compact, verify_compact
from crypto.keys import KeySet, SigningKey
from policies.errors import PolicyError

EVENT_TYP = "corridor-agreement-event+jwt"
MAX_EVENT_BYTES = 64 * 1024

REQUESTED, APPROVED, ACTIVE = "requested", "approved", "active"
EXPIRED, REVOKED, REFUSED, WITHDRAWN = "expired", "revoked", "refused", "withdrawn"
FINAL_STATES = frozenset({EXPIRED, REVOKED, REFUSED, WITHDRAWN})

REQUESTER, PROVIDER, OPERATOR = "requester", "provider", "operator"

# action -> (states it may start from, state it leads to, roles that may take it)
TRANSITIONS: Mapping[str, tuple[frozenset[str], str, frozenset[str]]] = {
    "request": (frozenset({""}), REQUESTED, frozenset({REQUESTER})),
    "approve": (frozenset({REQUESTED}), APPROVED, frozenset({PROVIDER})),
    "narrow": (frozenset({REQUESTED, APPROVED}), APPROVED, frozenset({PROVIDER})),
    "refuse": (frozenset({REQUESTED, APPROVED}), REFUSED, frozenset({PROVIDER})),
    "accept": (frozenset({APPROVED}), ACTIVE, frozenset({REQUESTER})),
    "withdraw": (frozenset({REQUESTED, APPROVED}), WITHDRAWN, frozenset({REQUESTER})),
    "revoke": (frozenset({ACTIVE}), REVOKED, frozenset({PROVIDER, OPERATOR})),
    "expire": (frozenset({ACTIVE}), EXPIRED, frozenset({PROVIDER, OPERATOR})),
}


class AgreementError(PolicyError):
    """A transition or a history is not allowed (the reason says which rule)."""


@dataclass(frozen=True)
class Event:
    """One signed step in an agreement's history."""

    agreement: str
    seq: int
    action: str
    actor: str           # member id (or the registry's id for the operator)
    role: str            # requester | provider | operator
    at: datetime
    prev: str            # "sha256:<hex>" of the previous event's JWS, "" for the first
    terms: Mapping[str, Any] | None = None
    reason: str | None = None
    jws: str = ""

    def claims(self) -> dict[str, Any]:
        """The signed payload."""
        body: dict[str, Any] = {
            "agreement": self.agreement, "seq": self.seq, "action": self.action,
            "actor": self.actor, "role": self.role,
            "at": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "prev": self.prev,
        }
        if self.terms is not None:
            body["terms"] = dict(self.terms)
        if self.reason:
            body["reason"] = self.reason
        return body


def event_digest(jws: str) -> str:
    """The link a following event carries to this one."""
    return "sha256:" + hashlib.sha256(jws.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Agreement:
    """An agreement's state after replaying its verified history."""

    id: str
    requester: str
    provider: str
    state: str
    terms: Mapping[str, Any]
    events: tuple[Event, ...] = field(default_factory=tuple)

    @property
    def head(self) -> str:
        """Digest of the last event (what the next event must point to)."""
        return event_digest(self.events[-1].jws) if self.events else ""

    def is_active(self, now: datetime) -> bool:
        """Active and within its validity (``terms.until``, an ISO date, inclusive)."""
        if self.state != ACTIVE:
            return False
        until = self.terms.get("until")
        return until is None or now.astimezone(UTC).date().isoformat() <= str(until)


def sign_event(event: Event, key: SigningKey) -> Event:
    """Sign an event with its actor's key; returns the event carrying its JWS."""
    jws = sign_compact(canonical_json(event.claims()), key, typ=EVENT_TYP)
    return Event(**{**event.__dict__, "jws": jws})


def next_event(agreement: Agreement | None, *, action: str, actor: str, role: str,
               at: datetime, key: SigningKey, terms: Mapping[str, Any] | None = None,
               reason: str | None = None, agreement_id: str | None = None,
               operator: str | None = None) -> Event:
    """Build and sign the next event, refusing transitions the state machine forbids.

    ``operator`` is the registry's id, the only non-party that may act (revoke, expire).
    """
    if agreement is None:
        if action != "request" or agreement_id is None:
            raise AgreementError("action", "an agreement starts with a request (and an id)")
        event = Event(agreement_id, 0, action, actor, role, at, "", terms, reason)
    else:
        event = Event(agreement.id, len(agreement.events), action, actor, role, at,
                      agreement.head, terms, reason)
        _step(agreement, event, operator)
    return sign_event(event, key)


def _party_role(agreement: Agreement | None, event: Event, operator: str | None) -> str:
    """The role the actor really has in this agreement (never what the event claims)."""
    if agreement is None:
        return REQUESTER
    if event.actor == agreement.requester:
        return REQUESTER
    if event.actor == agreement.provider:
        return PROVIDER
    if operator is not None and event.actor == operator:
        return OPERATOR
    raise AgreementError("actor", f"{event.actor} is not a party to agreement {agreement.id}")


def _step(agreement: Agreement, event: Event, operator: str | None = None) -> Agreement:
    """Apply one (already authenticated) event to the agreement."""
    if event.action not in TRANSITIONS:
        raise AgreementError("action", f"unknown action {event.action!r}")
    sources, target, roles = TRANSITIONS[event.action]
    role = _party_role(agreement, event, operator)
    if role != event.role:
        raise AgreementError("role", f"{event.actor} acts as {role}, not {event.role}")
    if role not in roles:
        raise AgreementError("action", f"the {role} may not {event.action} an agreement")
    if agreement.state not in sources:
        raise AgreementError("state", f"cannot {event.action} an agreement that is "
                                      f"{agreement.state}")
    terms = agreement.terms
    if event.action == "narrow":
        if event.terms is None:
            raise AgreementError("terms", "narrowing needs the narrowed terms")
        terms = event.terms
    return Agreement(agreement.id, agreement.requester, agreement.provider, target, terms,
                     (*agreement.events, event))


def replay(jws_events: Sequence[str], *, keys_for: Callable[[str], KeySet],
           operator: str | None = None,
           check_terms: Callable[[Mapping[str, Any], Mapping[str, Any] | None], None]
           | None = None) -> Agreement:
    """Verify a whole history and return the agreement it describes.

    ``keys_for(member_id)`` gives a party's keys (from the trust list).
    ``check_terms(new, old)`` may refuse narrowed terms that widen the old
    ones (the policy engine's rule); the first request carries the terms.

    Raises:
        AgreementError: a signature, a link, an order or a transition is wrong.
    """
    agreement: Agreement | None = None
    previous = ""
    for seq, jws in enumerate(jws_events):
        event = _verified_event(jws, keys_for)
        if event.seq != seq or event.prev != previous:
            raise AgreementError("events", f"event {seq} is out of order or not linked "
                                           "to the one before it")
        if agreement is None:
            if event.action != "request" or event.role != REQUESTER or not event.terms:
                raise AgreementError("events", "the first event must be the requester's "
                                               "request with its terms")
            provider = str(event.terms.get("provider", ""))
            if not provider or provider == event.actor:
                raise AgreementError("terms", "a request names a provider other than the "
                                              "requester")
            agreement = Agreement(event.agreement, event.actor, provider, REQUESTED,
                                  event.terms, (event,))
        else:
            if event.agreement != agreement.id:
                raise AgreementError("events", "an event of another agreement is mixed in")
            if event.action == "narrow" and check_terms is not None and event.terms is not None:
                check_terms(event.terms, agreement.terms)
            agreement = _step(agreement, event, operator)
        previous = event_digest(jws)
    if agreement is None:
        raise AgreementError("events", "an agreement needs at least its request")
    return agreement


def _verified_event(jws: str, keys_for: Callable[[str], KeySet]) -> Event:
    """Parse an event, then check its signature with its claimed actor's keys."""
    try:
        payload = jws.split(".")[1]
        import base64

        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        actor = str(claims["actor"])
        verified = verify_compact(jws, keys_for(actor), max_size=MAX_EVENT_BYTES,
                                  expected_typ=EVENT_TYP)
        body = json.loads(verified.payload)
        return Event(
            agreement=str(body["agreement"]), seq=int(body["seq"]), action=str(body["action"]),
            actor=str(body["actor"]), role=str(body["role"]),
            at=datetime.fromisoformat(body["at"]), prev=str(body["prev"]),
            terms=body.get("terms"), reason=body.get("reason"), jws=jws)
    except InvalidSignature as e:
        raise AgreementError("events", "an event's signature does not verify with its "
                                       "actor's keys") from e
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise AgreementError("events", f"an event is malformed ({type(e).__name__})") from e
