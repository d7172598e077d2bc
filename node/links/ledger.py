"""The match ledger on one node: propose, receive, decide, retract, deliver.

A **link** says "my individual ``local_id`` is member ``other_member``'s
``other_id``". One node proposes it (signed); the other node's owner confirms
or rejects it (signed); either may retract it later (signed). Each node keeps
every message of each link verbatim (:class:`node.models.Link`) and logs each
message it sends or receives in its exchange log (``link.proposed``,
``link.confirmed``, ``link.rejected``, ``link.retracted``, with ``direction``
``sent`` or ``received`` and the message's digest; never an observation).

The ledger keeps one animal to one animal: a link is refused when either
individual already has a live link (proposed or confirmed) with that other
member, or when the two individuals are not of the same accepted taxon.
A node checks its own individual on every link it proposes or receives.

Delivery is separate from the action so that nothing is lost when the other
node is down: the message is committed with the action and kept in the
link's ``outbox`` until the other node has taken it (:func:`deliver`); the
receiving node takes the same message twice without a second effect.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor.errors import Conflict, CorridorError, NotFound
from corridor.keystore import KeystoreError
from corridor.outbound import partner_client
from corridor.pages import is_development_url
from crypto.keys import SigningKey
from crypto.trustlist import TrustList
from node.exchange.oauth_client import TokenError
from node.exchange.registry_client import RegistryError, client_for
from node.links.messages import (
    LinkMessage,
    MessageInvalid,
    message_digest,
    read_message,
    sign_message,
)
from node.log.exchange_log import LOG
from node.models import Dataset, Individual, Link
from node.settings import NodeSettings
from policies.links import (
    CONFIRMED,
    LIVE,
    PROPOSED,
    REJECTED,
    RETRACTED,
    HeldLink,
    link_refusal,
)
from policies.taxonomy import accepted_name

__all__ = [
    "CONFIRMED",
    "LIVE",
    "PROPOSED",
    "REJECTED",
    "RETRACTED",
    "Delivery",
    "LinkConflict",
    "LinkRefused",
    "MessageInvalid",
    "Received",
    "confirmed_links",
    "decide",
    "deliver",
    "get_link",
    "individual_taxon",
    "list_links",
    "propose",
    "receive",
    "retract",
    "send",
]

_LOGGED = {"propose": "link.proposed", "confirm": "link.confirmed", "reject": "link.rejected",
           "retract": "link.retracted"}


class LinkRefused(CorridorError):
    """A link the ledger's rules do not allow (422): unknown animal, two taxa, one-to-two."""

    status = 422
    title = "Link refused"


class LinkConflict(Conflict):
    """A message that contradicts the link's state (409)."""

    title = "Link state conflict"


@dataclass(frozen=True)
class Received:
    """What a received message did: the link, and whether it was new here."""

    link: Link
    applied: bool


# --------------------------------------------------------------------- queries


def individual_taxon(session: Session, individual_id: str) -> str | None:
    """The accepted taxon of one of this node's individuals (current datasets), or None."""
    names = session.scalars(
        select(Individual.scientificName).join(Dataset, Dataset.id == Individual.dataset_id)
        .where(Dataset.current.is_(True), Individual.individualID == individual_id)).all()
    taxa = {accepted_name(n) for n in names if n}
    return taxa.pop() if len(taxa) == 1 else None


def get_link(session: Session, link_id: str) -> Link:
    """One link of this node's ledger.

    :raises NotFound: no such link here.
    """
    link = session.get(Link, link_id)
    if link is None:
        raise NotFound(f"no link {link_id[:64]!r} in this node's ledger")
    return link


def list_links(session: Session, *, state: str | None = None,
               other: str | None = None) -> Sequence[Link]:
    """This node's links, newest first; optionally only one state or one other member."""
    statement = select(Link).order_by(Link.created_at.desc(), Link.link_id)
    if state is not None:
        statement = statement.where(Link.state == state)
    if other is not None:
        statement = statement.where(Link.other_member == other)
    return session.scalars(statement).all()


def confirmed_links(session: Session, other: str | None = None) -> Sequence[Link]:
    """The confirmed links (both signatures held), optionally with one member only."""
    return list_links(session, state=CONFIRMED, other=other)


def _held(session: Session, other: str, *, states: Sequence[str] = LIVE,
          excluding: str | None = None) -> list[HeldLink]:
    """The links in ``states`` this node holds with ``other`` (optionally all but one)."""
    rows = session.scalars(select(Link).where(Link.state.in_(states),
                                              Link.other_member == other))
    return [HeldLink(r.link_id, r.local_id, r.other_id, r.state) for r in rows
            if r.link_id != excluding]


def _check_rules(session: Session, *, local_id: str, other: str, other_id: str,
                 taxon: str, states: Sequence[str] = LIVE, excluding: str | None = None) -> None:
    """Refuse a link this node's ledger cannot hold (:func:`policies.links.link_refusal`)."""
    refusal = link_refusal(local_id=local_id, local_taxon=individual_taxon(session, local_id),
                           other_id=other_id, other_taxon=taxon, other=other,
                           held=_held(session, other, states=states, excluding=excluding))
    if refusal is not None:
        raise LinkRefused(refusal)


# --------------------------------------------------------------------- actions


def _record(session: Session, link: Link, message: LinkMessage, *, direction: str,
            now: datetime) -> None:
    """Log one message sent or received (the caller commits)."""
    LOG.append(session, _LOGGED[message.action], now, member=link.other_member,
               link=link.link_id, by=message.sender, direction=direction, taxon=link.taxon,
               message_sha256=message.digest)


def propose(session: Session, *, me: str, key: SigningKey, trust_list: TrustList, other: str,
            local_id: str, other_id: str, method: str, evidence: Sequence[str],
            confidence: float, reason: str, now: datetime) -> Link:
    """Propose "my ``local_id`` is ``other``'s ``other_id``": sign, store, log, queue.

    :raises LinkRefused: ``other`` is this node or not an active member, or
        a ledger rule refuses it.
    :raises MessageInvalid: a field out of bounds (method, confidence, lengths).
    """
    if other == me or trust_list.member(other) is None:
        raise LinkRefused(f"{other} is not another active member in trust list "
                          f"v{trust_list.version}")
    taxon = individual_taxon(session, local_id)
    if taxon is None:
        raise LinkRefused(f"{local_id} is not an individual of this node's current datasets")
    _check_rules(session, local_id=local_id, other=other, other_id=other_id, taxon=taxon)
    link_id = str(uuid.uuid4())
    message = sign_message(key, action="propose", link=link_id, sender=me, recipient=other,
                           at=now, taxon=taxon, from_id=local_id, to_id=other_id,
                           method=method, evidence=list(evidence), confidence=confidence,
                           reason=reason)
    link = Link(link_id=link_id, proposer=me, other_member=other, local_id=local_id,
                other_id=other_id, taxon=taxon, state=PROPOSED, method=method,
                confidence=float(confidence), proposal=message.jws, outbox=[message.jws],
                created_at=now, updated_at=now)
    session.add(link)
    session.flush()
    _record(session, link, message, direction="sent", now=now)
    return link


def decide(session: Session, *, me: str, key: SigningKey, link_id: str, confirm: bool,
           reason: str, now: datetime) -> Link:
    """Confirm or reject a link proposed to this node: sign, store, log, queue.

    :raises NotFound: no such link.
    :raises LinkConflict: this node proposed it, or it is no longer proposed.
    :raises LinkRefused: confirming would join one animal to two.
    """
    link = get_link(session, link_id)
    if link.proposer == me:
        raise LinkConflict(f"link {link_id} was proposed by this node: {link.other_member} "
                           "decides it")
    if link.state != PROPOSED:
        raise LinkConflict(f"link {link_id} is {link.state}, not proposed")
    if confirm:
        _check_rules(session, local_id=link.local_id, other=link.other_member,
                     other_id=link.other_id, taxon=link.taxon, states=(CONFIRMED,),
                     excluding=link.link_id)
    message = sign_message(key, action="confirm" if confirm else "reject", link=link_id,
                           sender=me, recipient=link.other_member, at=now,
                           proposal=message_digest(link.proposal), reason=reason)
    link.state = CONFIRMED if confirm else REJECTED
    link.decision = message.jws
    _queue(link, message, now)
    _record(session, link, message, direction="sent", now=now)
    return link


def retract(session: Session, *, me: str, key: SigningKey, link_id: str, reason: str,
            now: datetime) -> Link:
    """Retract a proposed or confirmed link (either party): sign, store, log, queue.

    :raises NotFound: no such link.
    :raises LinkConflict: it is already rejected or retracted.
    """
    link = get_link(session, link_id)
    if link.state not in LIVE:
        raise LinkConflict(f"link {link_id} is {link.state}: there is nothing to retract")
    if not reason.strip():
        raise LinkRefused("a retraction needs a reason")
    message = sign_message(key, action="retract", link=link_id, sender=me,
                           recipient=link.other_member, at=now,
                           proposal=message_digest(link.proposal), reason=reason)
    link.state = RETRACTED
    link.retraction = message.jws
    _queue(link, message, now)
    _record(session, link, message, direction="sent", now=now)
    return link


def _queue(link: Link, message: LinkMessage, now: datetime) -> None:
    link.outbox = [*link.outbox, message.jws]
    link.updated_at = now


# --------------------------------------------------------------------- receiving


def receive(session: Session, *, me: str, trust_list: TrustList, sender: str, jws: Any,
            now: datetime) -> Received:
    """Take a message ``sender`` (the authenticated caller) delivered to this node.

    The same message twice is taken once (``applied`` False the second time).

    :raises MessageInvalid: it does not verify, is malformed, or is not for this node.
    :raises LinkRefused: a proposal the ledger's rules refuse.
    :raises LinkConflict: a message about an unknown link or one that
        contradicts the link's state.
    """
    message = read_message(jws, trust_list, sender=sender, now=now)
    if message.recipient != me:
        raise MessageInvalid(f"the message is addressed to {message.recipient}, not to {me}")
    link = session.get(Link, message.link)
    if message.action == "propose":
        return _receive_proposal(session, link, message, now)
    if link is None or link.other_member != sender:
        raise LinkConflict(f"no link {message.link} with {sender} in this node's ledger")
    if message.payload["proposal"] != message_digest(link.proposal):
        raise LinkConflict(f"the {message.action} names another proposal than link "
                           f"{link.link_id}'s")
    if message.jws in (link.decision, link.retraction):
        return Received(link, applied=False)
    if message.action == "retract":
        if link.state not in LIVE:
            raise LinkConflict(f"link {link.link_id} is {link.state}: nothing to retract")
        link.state, link.retraction = RETRACTED, message.jws
    else:
        if link.proposer != me:
            raise LinkConflict(f"only the proposed party decides link {link.link_id}")
        if link.state != PROPOSED:
            raise LinkConflict(f"link {link.link_id} is {link.state}, not proposed")
        link.state = CONFIRMED if message.action == "confirm" else REJECTED
        link.decision = message.jws
    link.updated_at = now
    _record(session, link, message, direction="received", now=now)
    return Received(link, applied=True)


def _receive_proposal(session: Session, link: Link | None, message: LinkMessage,
                      now: datetime) -> Received:
    body = message.payload
    if link is not None:
        if link.proposal == message.jws:
            return Received(link, applied=False)
        raise LinkConflict(f"link {message.link} already exists with another proposal")
    _check_rules(session, local_id=body["to_id"], other=message.sender,
                 other_id=body["from_id"], taxon=body["taxon"])
    link = Link(link_id=message.link, proposer=message.sender, other_member=message.sender,
                local_id=body["to_id"], other_id=body["from_id"],
                taxon=accepted_name(body["taxon"]), state=PROPOSED, method=body["method"],
                confidence=float(body["confidence"]), proposal=message.jws, outbox=[],
                created_at=now, updated_at=now)
    session.add(link)
    session.flush()
    _record(session, link, message, direction="received", now=now)
    return Received(link, applied=True)


# --------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class Delivery:
    """How a delivery ended: ``problem`` None when every queued message was taken.

    ``refused``: the other node answered that it will not take the message
    (409 or 422); the message leaves the queue and a refused proposal makes
    the link ``rejected`` here. Otherwise the messages stay queued.
    """

    problem: str | None = None
    refused: bool = False


def deliver(session: Session, link: Link, *, trust_list: TrustList,
            token: Callable[[str], str], http: httpx.Client, now: datetime) -> Delivery:
    """Send the link's queued messages to the other node, oldest first.

    ``token(member)`` gives a ``links:write`` token for ``member``'s node.
    The caller commits.
    """
    member = trust_list.member(link.other_member)
    if member is None:
        return _undelivered(link, f"{link.other_member} is not an active member in trust list "
                                  f"v{trust_list.version}", now)
    url = member.node_url.rstrip("/") + "/links"
    while link.outbox:
        try:
            response = http.post(url, json={"message": link.outbox[0]},
                                 headers={"Authorization": f"Bearer {token(link.other_member)}"})
        except TokenError as e:
            return _undelivered(link, f"the registry gave no token for {link.other_member} "
                                      f"({e.description or e.error})", now)
        except httpx.HTTPError as e:
            return _undelivered(link, f"{url} could not be reached ({type(e).__name__}: {e})",
                                now)
        if response.status_code in (409, 422):  # a verdict: sending again will not change it
            sent, link.outbox = link.outbox[0], link.outbox[1:]
            what = "proposal" if sent == link.proposal else "message"
            if sent == link.proposal and link.state == PROPOSED:
                link.state = REJECTED
            return _undelivered(link, f"{link.other_member} refused the {what}: "
                                      f"{_problem(response)}", now, refused=True)
        if response.status_code != 200:
            return _undelivered(link, f"{link.other_member} did not take the message: "
                                      f"{_problem(response)}", now)
        link.outbox = link.outbox[1:]
    link.delivery_error = None
    link.updated_at = now
    return Delivery()


def _undelivered(link: Link, why: str, now: datetime, *, refused: bool = False) -> Delivery:
    link.delivery_error = why[:500]
    link.updated_at = now
    return Delivery(why, refused)


def _problem(response: httpx.Response) -> str:
    """The problem detail of a refusal, or its status."""
    try:
        body: dict[str, Any] = response.json()
        return f"{response.status_code} {body.get('detail') or body.get('title')}"
    except ValueError:
        return f"HTTP {response.status_code}"



def send(session: Session, settings: NodeSettings, link: Link, *,
         trust_list: TrustList) -> Delivery:
    """Deliver ``link``'s queued messages now, as this node (registry token, partner client).

    Commits what happened (queue, delivery error, a refused proposal's state).
    """
    if not link.outbox:
        return Delivery()
    try:
        client = client_for(settings)
    except (RegistryError, KeystoreError) as e:
        result = _undelivered(link, f"no registry to get a token from ({e})",
                              datetime.now(UTC))
    else:
        with client.http, partner_client(development=is_development_url(settings.url),
                                         timeout=30) as http:
            result = deliver(session, link, trust_list=trust_list, token=client.links_token,
                             http=http, now=datetime.now(UTC))
    session.commit()
    return result
