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

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import sign_compact, sign_detached, verify_compact, verify_detached
from crypto.keys import KeySet, SigningKey
from policies.agreement_terms import check_narrowing, load_agreement_terms
from policies.errors import PolicyError

EVENT_TYP = "corridor-agreement-event+jwt"
#: ``typ`` of a party's detached signature over the agreement document.
DOCUMENT_TYP = "corridor-agreement+json"
#: Actions whose actor signs the agreement document (the provider's offer, the
#: requester's acceptance): together the two signatures make the agreement.
SIGNING_ACTIONS = frozenset({"approve", "narrow", "accept"})
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
    signature: str | None = None  # detached JWS over the agreement document (approve/accept)
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
        if self.signature:
            body["signature"] = self.signature
        return body


def last_day(terms: Mapping[str, Any]) -> date | None:
    """The last day an agreement is valid (``terms.until``, an ISO date, inclusive), if any."""
    until = terms.get("until")
    return date.fromisoformat(str(until)) if until else None


def is_past_end(terms: Mapping[str, Any], now: datetime) -> bool:
    """``now`` is after the last day of validity: the one expiry rule of both services."""
    end = last_day(terms)
    return end is not None and now.astimezone(UTC).date() > end


def revoked_reason(agreement_id: str, revocation: Event | None, *, actor: str,
                   at: datetime) -> str:
    """``agreement X was revoked by M at T UTC: why`` — the one wording of both services.

    ``actor`` and ``at`` stand in when the revocation event is not at hand.
    """
    when = revocation.at if revocation else at
    why = f": {revocation.reason}" if revocation and revocation.reason else ""
    return (f"agreement {agreement_id} was revoked by "
            f"{revocation.actor if revocation else actor} at {when:%Y-%m-%d %H:%M} UTC{why}")


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
        return self.state == ACTIVE and not self.is_past_end(now)

    def is_past_end(self, now: datetime) -> bool:
        """``now`` is after the last day of validity (:func:`is_past_end`)."""
        return is_past_end(self.terms, now)

    def last(self, *actions: str) -> Event | None:
        """The most recent event with one of ``actions`` (``None`` if there is none)."""
        return next((e for e in reversed(self.events) if e.action in actions), None)

    def document(self) -> dict[str, Any]:
        """The agreement document both parties sign: parties, terms and validity.

        Canonical JSON of this object is what the provider signs when it
        approves (or narrows) and the requester signs when it accepts.

        :raises AgreementError: the provider has not decided yet.
        """
        offer = self.last("approve", "narrow")
        if offer is None:
            raise AgreementError("state", f"agreement {self.id} has no offer from its provider")
        return {"type": "corridor-data-use-agreement", "agreement": self.id,
                "provider": self.provider, "requester": self.requester,
                "terms": dict(self.terms), "valid_from": _utc(offer.at)[:10],
                "until": self.terms.get("until")}

    def signed_document(self) -> dict[str, Any]:
        """The document with both parties' signatures (verify it with :func:`verify_document`).

        :raises AgreementError: the requester has not accepted yet.
        """
        offer, accept = self.last("approve", "narrow"), self.last("accept")
        if offer is None or accept is None or accept.seq < offer.seq:
            raise AgreementError("state", f"agreement {self.id} has not been accepted")
        return {"document": self.document(), "signatures": [
            {"member": self.provider, "role": PROVIDER, "jws": offer.signature},
            {"member": self.requester, "role": REQUESTER, "jws": accept.signature}]}


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_event(event: Event, key: SigningKey) -> Event:
    """Sign an event with its actor's key; returns the event carrying its JWS."""
    jws = sign_compact(canonical_json(event.claims()), key, typ=EVENT_TYP)
    return replace(event, jws=jws)


def sign_document(document: Mapping[str, Any], key: SigningKey) -> str:
    """A party's detached signature over an agreement document."""
    return sign_detached(canonical_json(document), key, typ=DOCUMENT_TYP)


def verify_document(signed: Mapping[str, Any], *, keys_for: Callable[[str], KeySet]
                    ) -> dict[str, Any]:
    """Verify a signed agreement document offline; return the document.

    Both parties must have signed: the provider and the requester the
    document names, each with one of its keys from ``keys_for`` (the trust list).

    :raises AgreementError: a signature is missing, wrong or from someone else.
    """
    document = signed.get("document") if isinstance(signed, Mapping) else None
    signatures = signed.get("signatures") if isinstance(signed, Mapping) else None
    if not isinstance(document, Mapping) or not isinstance(signatures, list):
        raise AgreementError("document", "not a signed agreement document")
    payload = canonical_json(dict(document))
    by_role = {s.get("role"): s for s in signatures if isinstance(s, Mapping)}
    for role in (PROVIDER, REQUESTER):
        member = document.get(role)
        entry = by_role.get(role)
        if entry is None or entry.get("member") != member or not isinstance(member, str):
            raise AgreementError("signatures", f"the {role}'s signature is missing")
        try:
            verify_detached(str(entry.get("jws")), payload, keys_for(member),
                            max_size=MAX_EVENT_BYTES, expected_typ=DOCUMENT_TYP)
        except InvalidSignature as e:
            raise AgreementError("signatures", f"the {role} {member}'s signature does not "
                                               "verify") from e
    return dict(document)


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
        if action == "narrow" and terms is not None:
            check_narrowing(terms, agreement.terms)
        after = _step(agreement, event, operator)
        if action in SIGNING_ACTIONS:
            event = replace(event, signature=sign_document(after.document(), key))
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
           operator: str | None = None) -> Agreement:
    """Verify a whole history and return the agreement it describes.

    ``keys_for(member_id)`` gives a party's keys (from the trust list). The
    request must carry valid terms (:func:`~policies.agreement_terms.load_agreement_terms`),
    a counter-offer may only narrow them (:func:`~policies.agreement_terms.check_narrowing`),
    and every offer and acceptance must carry its actor's signature over the
    agreement document.

    Raises:
        AgreementError: a signature, a link, an order or a transition is wrong.
        PolicyError: the terms are malformed or a counter-offer widens them.
    """
    agreement = extend(None, jws_events, keys_for=keys_for, operator=operator)
    if agreement is None:
        raise AgreementError("events", "an agreement needs at least its request")
    return agreement


def extend(agreement: Agreement | None, jws_events: Sequence[str], *,
           keys_for: Callable[[str], KeySet], operator: str | None = None) -> Agreement | None:
    """Verify ``jws_events`` as the continuation of ``agreement``; return the new state.

    What :func:`replay` checks, for the new events only: a service that
    verified and stored a history extends it without re-verifying old
    signatures (whose keys may since have been rotated out of the trust list).

    Raises:
        AgreementError, PolicyError: as :func:`replay`.
    """
    for jws in jws_events:
        agreement = _apply(agreement, _verified_event(jws, keys_for), operator,
                           lambda a, e: _check_document_signature(a, e, keys_for))
    return agreement


def restore_stored_history(jws_events: Sequence[str],
                           operator: str | None = None) -> Agreement:
    """Rebuild an agreement from a history **this service verified when it stored it**.

    Links, order and transitions are checked again; signatures are not (the
    keys that made them may have been retired since). Never call this on a
    history received from anyone else: use :func:`replay`.

    Raises:
        AgreementError: the stored history is broken.
    """
    agreement: Agreement | None = None
    for jws in jws_events:
        agreement = _apply(agreement, _parse_event(jws), operator, lambda a, e: None)
    if agreement is None:
        raise AgreementError("events", "an agreement needs at least its request")
    return agreement


def _apply(agreement: Agreement | None, event: Event, operator: str | None,
           check_signature: Callable[[Agreement, Event], None]) -> Agreement:
    """One step of a replay: link, order, terms and transition checks, then the new state."""
    previous = agreement.head if agreement is not None else ""
    seq = len(agreement.events) if agreement is not None else 0
    if event.seq != seq or event.prev != previous:
        raise AgreementError("events", f"event {seq} is out of order or not linked "
                                       "to the one before it")
    if agreement is None:
        if event.action != "request" or event.role != REQUESTER or not event.terms:
            raise AgreementError("events", "the first event must be the requester's "
                                           "request with its terms")
        try:
            provider = load_agreement_terms(event.terms).provider
        except PolicyError as e:
            raise AgreementError("terms", f"the request's terms are not valid ({e})") from e
        if provider == event.actor:
            raise AgreementError("terms", "a request names a provider other than the "
                                          "requester")
        return Agreement(event.agreement, event.actor, provider, REQUESTED, event.terms,
                         (event,))
    if event.agreement != agreement.id:
        raise AgreementError("events", "an event of another agreement is mixed in")
    if event.action == "narrow" and event.terms is not None:
        check_narrowing(event.terms, agreement.terms)
    agreement = _step(agreement, event, operator)
    if event.action in SIGNING_ACTIONS:
        check_signature(agreement, event)
    return agreement


def _check_document_signature(agreement: Agreement, event: Event,
                              keys_for: Callable[[str], KeySet]) -> None:
    """An offer or acceptance must sign the document as it stands after it."""
    try:
        verify_detached(event.signature or "", canonical_json(agreement.document()),
                        keys_for(event.actor), max_size=MAX_EVENT_BYTES,
                        expected_typ=DOCUMENT_TYP)
    except InvalidSignature as e:
        raise AgreementError("events", f"event {event.seq} ({event.action}) does not carry "
                                       "its actor's signature over the agreement") from e


def _verified_event(jws: str, keys_for: Callable[[str], KeySet]) -> Event:
    """Parse an event, then check its signature with its claimed actor's keys."""
    event = _parse_event(jws)
    try:
        verify_compact(jws, keys_for(event.actor), max_size=MAX_EVENT_BYTES,
                       expected_typ=EVENT_TYP)
    except InvalidSignature as e:
        raise AgreementError("events", "an event's signature does not verify with its "
                                       "actor's keys") from e
    return event


def _parse_event(jws: str) -> Event:
    """Read an event's claims (the signature is checked by the caller, if at all)."""
    try:
        if len(jws) > MAX_EVENT_BYTES:
            raise ValueError("event too large")
        payload = jws.split(".")[1]
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return Event(
            agreement=str(body["agreement"]), seq=int(body["seq"]), action=str(body["action"]),
            actor=str(body["actor"]), role=str(body["role"]),
            at=datetime.fromisoformat(body["at"]), prev=str(body["prev"]),
            terms=body.get("terms"), reason=body.get("reason"),
            signature=body.get("signature"), jws=jws)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise AgreementError("events", f"an event is malformed ({type(e).__name__})") from e
