"""The signed messages of the match ledger: propose, confirm, reject, retract.

Every message is a compact JWS (``typ`` :data:`LINK_TYP`, Ed25519, the sending
node's key) over canonical JSON::

    {"type": "corridor.link", "action": "propose", "link": "<uuid>",
     "from": "ru-lotl", "to": "cn-ntlnp", "at": "2026-12-07T09:30:00Z",
     "taxon": "Panthera pardus orientalis", "from_id": "PPO-RU-017", "to_id": "CN-L07",
     "method": "photo-id", "evidence": ["media:RU-M0001234"], "confidence": 0.9,
     "reason": "Same flank rosettes, left side"}

A decision (``confirm``, ``reject``) or a ``retract`` names the proposal by
the SHA-256 of its JWS (``"proposal": "sha256:…"``) and gives a ``reason``.
A confirmed link is the proposal signed by one node plus the confirmation
signed by the other: both signatures travel and are kept.

:func:`read_message` verifies a message with the sender's keys from the
stored trust list and checks its shape strictly; it never trusts a key or
URL carried in the message (:mod:`crypto.jws` refuses ``jwk``/``jku``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from corridor.errors import CorridorError
from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import sign_compact, verify_compact
from crypto.keys import SigningKey
from crypto.trustlist import TrustList

__all__ = [
    "ACTIONS",
    "LINK_TYP",
    "MAX_MESSAGE_BYTES",
    "METHODS",
    "LinkMessage",
    "MessageInvalid",
    "message_digest",
    "read_message",
    "sign_message",
]

#: ``typ`` of a match-ledger message.
LINK_TYP = "corridor-link+jws"
#: ``type`` member of every message payload.
MESSAGE_TYPE = "corridor.link"
#: What a message does to a link.
ACTIONS = ("propose", "confirm", "reject", "retract")
#: How the match was made: coat/flank pattern photo identification, a genotype, other.
METHODS = ("photo-id", "genotype", "other")
#: Largest message accepted, in bytes of its JWS.
MAX_MESSAGE_BYTES = 8 * 1024
#: At most this many evidence references per proposal, each at most 200 characters.
MAX_EVIDENCE = 20
#: Seconds a message's ``at`` may lie in the future (clock skew between nodes).
MAX_SKEW = 300

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ID = validate.Length(min=1, max=128)


class MessageInvalid(CorridorError):
    """A message that does not verify or is not a well-formed ledger message (422)."""

    status = 422
    title = "Link message refused"


@dataclass(frozen=True)
class LinkMessage:
    """A verified ledger message: its payload and the JWS it came in."""

    payload: Mapping[str, Any]
    jws: str

    @property
    def action(self) -> str:
        """``propose``, ``confirm``, ``reject`` or ``retract``."""
        return str(self.payload["action"])

    @property
    def link(self) -> str:
        """The link's id (chosen by its proposer)."""
        return str(self.payload["link"])

    @property
    def sender(self) -> str:
        """The member that signed it."""
        return str(self.payload["from"])

    @property
    def recipient(self) -> str:
        """The member it is addressed to."""
        return str(self.payload["to"])

    @property
    def digest(self) -> str:
        """``sha256:`` of the JWS (how later messages and logs name it)."""
        return message_digest(self.jws)


class _Common(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.Equal(MESSAGE_TYPE))
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    link = fields.String(required=True, validate=validate.Regexp(r"[0-9a-f-]{36}"))
    from_ = fields.String(required=True, data_key="from", validate=_ID)
    to = fields.String(required=True, validate=_ID)
    at = fields.String(required=True, validate=validate.Regexp(_TIME))


class _Proposal(_Common):
    taxon = fields.String(required=True, validate=validate.Length(min=1, max=255))
    from_id = fields.String(required=True, validate=_ID)
    to_id = fields.String(required=True, validate=_ID)
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    evidence = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                           required=True, validate=validate.Length(max=MAX_EVIDENCE))
    confidence = fields.Float(required=True, allow_nan=False,
                              validate=validate.Range(min=0, max=1))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class _Answer(_Common):
    proposal = fields.String(required=True, validate=validate.Regexp(_DIGEST))
    reason = fields.String(required=True, validate=validate.Length(max=500))


def message_digest(jws: str) -> str:
    """``sha256:<hex>`` of a message's JWS."""
    return "sha256:" + hashlib.sha256(jws.encode("ascii")).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_message(key: SigningKey, *, action: str, link: str, sender: str, recipient: str,
                 at: datetime, **body: Any) -> LinkMessage:
    """Sign one message (``body``: the action's members, see the module docstring).

    :raises MessageInvalid: the message would not pass :func:`read_message`'s checks.
    """
    payload = {"type": MESSAGE_TYPE, "action": action, "link": link, "from": sender,
               "to": recipient, "at": _iso(at), **body}
    _check_shape(payload)
    jws = sign_compact(canonical_json(payload), key, typ=LINK_TYP)
    if len(jws) > MAX_MESSAGE_BYTES:
        raise MessageInvalid(f"the message would be {len(jws):,} bytes, more than "
                             f"{MAX_MESSAGE_BYTES:,}: shorten the evidence or the reason")
    return LinkMessage(payload, jws)


def read_message(jws: Any, trust_list: TrustList, *, sender: str,
                 now: datetime) -> LinkMessage:
    """Verify a message from ``sender`` with its keys from ``trust_list``; check its shape.

    The sender is known before the message is read (the authenticated
    caller, or the party a stored link names); its payload must name it too.

    :raises MessageInvalid: not a string, oversize, not a JWS, a sender that
        is not an active member, a signature that does not verify with that
        member's keys, a malformed payload, another ``from``, or a time in
        the future.
    """
    if not isinstance(jws, str) or not jws.isascii():
        raise MessageInvalid("the message must be a compact JWS string")
    if len(jws) > MAX_MESSAGE_BYTES:
        raise MessageInvalid(f"the message is larger than {MAX_MESSAGE_BYTES:,} bytes")
    member = trust_list.member(sender)
    if member is None:
        raise MessageInvalid(f"the sender {sender[:40]!r} is not an active member in trust "
                             f"list v{trust_list.version}")
    try:
        verified = verify_compact(jws, member.keys, expected_typ=LINK_TYP,
                                  max_size=MAX_MESSAGE_BYTES)
    except InvalidSignature as e:
        raise MessageInvalid(f"the message's signature does not verify with {sender}'s "
                             f"keys ({e.reason})") from e
    try:
        payload = json.loads(verified.payload)
    except ValueError as e:
        raise MessageInvalid("the message's payload is not JSON") from e
    if not isinstance(payload, dict) or canonical_json(payload) != verified.payload:
        raise MessageInvalid("the message's payload is not canonical JSON")
    _check_shape(payload)
    if payload["from"] != sender:
        raise MessageInvalid(f"the message says it is from {payload['from']!r}, but "
                             f"{sender} signed it")
    sent = datetime.strptime(payload["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if (sent - now).total_seconds() > MAX_SKEW:
        raise MessageInvalid(f"the message is dated {payload['at']}, in the future")
    return LinkMessage(payload, jws)


def _check_shape(payload: Mapping[str, Any]) -> None:
    """Strict shape of a payload for its action; raise :class:`MessageInvalid` naming the fault."""
    action = payload.get("action")
    schema = _Proposal() if action == "propose" else _Answer()
    try:
        schema.load(dict(payload))
    except ValidationError as e:
        raise MessageInvalid(f"malformed {action!s:.20} message: {_first(e.messages)}") from e
    if payload["from"] == payload["to"]:
        raise MessageInvalid("a link joins two different members")
    if action == "propose" and type(payload["confidence"]) not in (int, float):
        raise MessageInvalid("malformed propose message: confidence must be a number")


def _first(messages: Any) -> str:
    """The first validation problem as ``field: message``."""
    if isinstance(messages, dict):
        for name, problem in messages.items():
            return f"{name}: {_first(problem)}"
    if isinstance(messages, list) and messages:
        return _first(messages[0])
    return str(messages)
