"""The private overlap count between two nodes: how many shared identifiers, never which.

Two parks that hold the same kind of identifier for their animals (a
genotype from a common marker panel, a joint catalogue code) learn how many
animals they have in common, under an agreement whose tier names the
identifier column (``private_overlap``), with :mod:`crypto.psi`:

1. the requester A sends its identifiers hashed to the group and blinded
   with its secret ``a`` (sorted), in a message it signs;
2. the provider B blinds those again with its secret ``b`` and blinds its
   own identifiers with ``b`` (each list sorted), and signs that answer;
3. A blinds B's values with ``a``, counts the values both doubly blinded
   lists share, and sends its list, its count and B's signed answer back
   in a signed message; B counts on its side too (from the list it signed
   in step 2), and only if the two counts agree signs the **result**.

A keeps the result with both signatures (B's over the result, its own over
the same bytes) under ``received/overlap/``; B's log entry ``overlap.served``
and A's ``overlap.computed`` carry the result's digest and the message
digests. No identifier, hash of one or singly blinded value B could undo
crosses the wire. Every message is a compact JWS (``typ``
:data:`OVERLAP_TYP`) bound to the session, the agreement and both members;
B takes step 3 of a session once, and only within :data:`SESSION_SECONDS`
of its own step-2 answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor.errors import Conflict, CorridorError
from corridor.files import written_whole
from crypto.canonical import canonical_json
from crypto.errors import InvalidSignature
from crypto.jws import sign_compact, verify_compact
from crypto.keys import KeySet, SigningKey
from crypto.psi import (
    MAX_SET,
    PointInvalid,
    blind,
    decode_points,
    encode_points,
    hash_to_group,
    intersection_size,
    new_scalar,
)
from crypto.trustlist import TrustList
from node.exchange.fetch import FetchRefused, post_for_json, requested_from
from node.exchange.registry_client import RegistryClient
from node.log.exchange_log import LOG
from node.models import Dataset, Individual
from policies.engine import Plan

__all__ = [
    "OVERLAP_TYP",
    "Overlap",
    "OverlapRefused",
    "OverlapReplayed",
    "identifiers",
    "provider_answer",
    "provider_conclude",
    "run_overlap",
]

#: ``typ`` of every message of the protocol and of the result.
OVERLAP_TYP = "corridor-overlap+jws"
#: ``type`` member of the messages' payloads.
MESSAGE_TYPE = "corridor.overlap"
#: Seconds between the provider's answer and the requester's conclusion, at most.
SESSION_SECONDS = 600
#: Largest protocol message, in bytes: step 3 nests step 2 (two lists of MAX_SET
#: points, base64url twice) and adds a third list.
MAX_MESSAGE_BYTES = 260 * MAX_SET + 16_384


class OverlapRefused(CorridorError):
    """A protocol message that is malformed, misdirected, stale or replayed (422)."""

    status = 422
    title = "Overlap count refused"


class OverlapReplayed(Conflict):
    """Step 3 of a session that was already concluded (409)."""

    title = "Overlap session already concluded"


@dataclass(frozen=True)
class Overlap:
    """A concluded overlap count, as the requester keeps it."""

    path: Path
    result: Mapping[str, Any]
    count: int


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def _sign(payload: Mapping[str, Any], key: SigningKey) -> str:
    return sign_compact(canonical_json(dict(payload)), key, typ=OVERLAP_TYP)


def _open(jws: Any, keys: KeySet, *, expected: Mapping[str, Any]) -> dict[str, Any]:
    """Verify a message with ``keys``; its payload must carry every ``expected`` member."""
    if not isinstance(jws, str) or len(jws) > MAX_MESSAGE_BYTES:
        raise OverlapRefused("the message is missing, not a string, or oversize")
    try:
        verified = verify_compact(jws, keys, expected_typ=OVERLAP_TYP,
                                  max_size=MAX_MESSAGE_BYTES)
        payload = json.loads(verified.payload)
    except (InvalidSignature, ValueError) as e:
        raise OverlapRefused(f"the message does not verify ({e})") from e
    if not isinstance(payload, dict) or payload.get("type") != MESSAGE_TYPE:
        raise OverlapRefused("not an overlap message")
    for name, value in expected.items():
        if payload.get(name) != value:
            raise OverlapRefused(f"the message's {name} is {str(payload.get(name))[:60]!r}, "
                                 f"not {value!r}")
    return payload


def identifiers(session: Session, dataset: Dataset, plan: Plan | None, field: str) -> set[str]:
    """The non-empty values of ``field`` of the dataset's individuals (those the plan covers)."""
    rows = session.execute(select(Individual.scientificName, Individual.record)
                           .where(Individual.dataset_id == dataset.id))
    found = set()
    for taxon, record in rows:
        value = (record or {}).get(field)
        if value in (None, "") or (plan is not None and taxon
                                   and (not plan.in_taxa(taxon) or plan.is_dropped(taxon))):
            continue
        found.add(str(value).strip())
    if len(found) > MAX_SET:
        raise OverlapRefused(f"{len(found):,} identifiers: more than the {MAX_SET:,} the "
                             "protocol takes")
    return found


# --------------------------------------------------------------------- the provider (B)


def provider_answer(*, me: str, key: SigningKey, requester_keys: KeySet, requester: str,
                    agreement: str, message: Any, mine: set[str], now: datetime) -> str:
    """Step 2: blind the requester's points again, blind this node's own; sign the answer."""
    step1 = _open(message, requester_keys, expected={
        "step": 1, "agreement": agreement, "from": requester, "to": me})
    session_id = step1.get("session")
    if not isinstance(session_id, str) or len(session_id) != 36:
        raise OverlapRefused("the message names no session")
    try:
        theirs = decode_points(step1.get("points"))
    except PointInvalid as e:
        raise OverlapRefused(f"step 1: {e}") from e
    secret = new_scalar()
    double = blind(theirs, secret)
    own = blind((hash_to_group(x, context=session_id) for x in mine), secret)
    return _sign({"type": MESSAGE_TYPE, "step": 2, "session": session_id,
                  "agreement": agreement, "from": me, "to": requester, "at": _iso(now),
                  "step1": _digest(message), "double": encode_points(double),
                  "points": encode_points(own)}, key)


def provider_conclude(session: Session, *, me: str, key: SigningKey, my_keys: KeySet,
                      requester_keys: KeySet, requester: str, agreement: str, message: Any,
                      now: datetime) -> dict[str, Any]:
    """Step 3: check the requester's count against this node's; sign and log the result.

    :raises OverlapRefused: a message that does not verify or does not fit.
    :raises OverlapReplayed: this session was concluded already.
    :raises Conflict: the two counts differ.
    """
    step3 = _open(message, requester_keys, expected={
        "step": 3, "agreement": agreement, "from": requester, "to": me})
    step2 = _open(step3.get("step2"), my_keys, expected={
        "step": 2, "agreement": agreement, "from": me, "to": requester,
        "session": step3.get("session")})
    answered = datetime.strptime(str(step2["at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if now - answered > timedelta(seconds=SESSION_SECONDS):
        raise OverlapRefused(f"the session's answer is more than {SESSION_SECONDS} s old; "
                             "start again")
    session_id = str(step2["session"])
    for entry in LOG.entries(session, type_="overlap.served", member=requester):
        if entry.event().get("overlap_session") == session_id:
            raise OverlapReplayed(f"overlap session {session_id} was concluded already")
    try:
        double_mine = decode_points(step2["double"])
        double_theirs = decode_points(step3.get("double"))
    except PointInvalid as e:
        raise OverlapRefused(f"step 3: {e}") from e
    if len(double_theirs) != len(step2["points"]):
        raise OverlapRefused("step 3 does not blind every value of step 2")
    count = intersection_size(double_mine, double_theirs)
    if step3.get("count") != count:
        raise Conflict(f"the requester counts {step3.get('count')!r}, this node {count}: "
                       "the result is not signed")
    result = {"type": "corridor.overlap.result", "session": session_id,
              "agreement": agreement, "provider": me, "requester": requester,
              "sizes": {requester: len(double_mine), me: len(double_theirs)}, "count": count,
              "at": _iso(now), "messages": {"step2": _digest(step3["step2"]),
                                            "step3": _digest(message)}}
    signature = _sign(result, key)
    LOG.append(session, "overlap.served", now, member=requester, agreement=agreement,
               overlap_session=session_id, count=count, result_sha256=_digest(signature),
               step3_sha256=_digest(message))
    return {"result": result, "provider_jws": signature}


# --------------------------------------------------------------------- the requester (A)


def run_overlap(session: Session, client: RegistryClient, trust_list: TrustList, *,
                agreement_id: str, mine: set[str], key: SigningKey, out_dir: Path,
                now: datetime, http: httpx.Client) -> Overlap:
    """Run the three steps with the agreement's provider; keep and log the signed result.

    :raises FetchRefused: no token, the provider refused, or an answer does not verify.
    """
    row, provider, token = requested_from(session, client, trust_list, agreement_id,
                                          token=client.overlap_token)
    me = client.member_id
    url = provider.node_url.rstrip("/") + f"/agreements/{agreement_id}/overlap"
    session_id = str(uuid.uuid4())
    secret = new_scalar()
    sent = blind((hash_to_group(x, context=session_id) for x in mine), secret)
    step1 = _sign({"type": MESSAGE_TYPE, "step": 1, "session": session_id,
                   "agreement": agreement_id, "from": me, "to": row.provider, "at": _iso(now),
                   "points": encode_points(sent)}, key)
    answer = _post(http, url, token, {"step": 1, "message": step1}, row.provider)
    try:
        step2 = _open(answer.get("message"), provider.keys, expected={
            "step": 2, "session": session_id, "agreement": agreement_id,
            "from": row.provider, "to": me, "step1": _digest(step1)})
        double_mine = decode_points(step2.get("double"))
        theirs = decode_points(step2.get("points"))
    except (OverlapRefused, PointInvalid) as e:
        raise FetchRefused(f"{row.provider}'s answer does not verify: {e}") from e
    if len(double_mine) != len(sent):
        raise FetchRefused(f"{row.provider}'s answer does not blind every value sent")
    double_theirs = blind(theirs, secret)
    count = intersection_size(double_mine, double_theirs)
    step3 = _sign({"type": MESSAGE_TYPE, "step": 3, "session": session_id,
                   "agreement": agreement_id, "from": me, "to": row.provider,
                   "at": _iso(datetime.now(UTC)), "step2": answer["message"],
                   "double": encode_points(double_theirs), "count": count}, key)
    concluded = _post(http, url, client.overlap_token(row.provider, agreement_id),
                      {"step": 3, "message": step3}, row.provider)
    return _keep(session, concluded, provider.keys, me=me, key=key, provider=row.provider,
                 agreement_id=agreement_id, session_id=session_id, count=count,
                 step3=step3, out_dir=out_dir, now=now)


def _keep(session: Session, concluded: Mapping[str, Any], provider_keys: KeySet, *, me: str,
          key: SigningKey, provider: str, agreement_id: str, session_id: str, count: int,
          step3: str, out_dir: Path, now: datetime) -> Overlap:
    """Check the provider's signed result, countersign it, write it whole, log it."""
    result, signature = concluded.get("result"), concluded.get("provider_jws")
    if not isinstance(result, dict) or not isinstance(signature, str):
        raise FetchRefused(f"{provider}'s result is malformed")
    try:
        verified = verify_compact(signature, provider_keys, expected_typ=OVERLAP_TYP,
                                  max_size=MAX_MESSAGE_BYTES)
    except InvalidSignature as e:
        raise FetchRefused(f"{provider}'s result signature does not verify ({e})") from e
    if verified.payload != canonical_json(result):
        raise FetchRefused(f"{provider} signed another result than the one it sent")
    expected = {"session": session_id, "agreement": agreement_id, "provider": provider,
                "requester": me, "count": count}
    for name, value in expected.items():
        if result.get(name) != value:
            raise FetchRefused(f"{provider}'s result has {name} {result.get(name)!r}, "
                               f"not {value!r}")
    messages = result.get("messages")
    if not isinstance(messages, dict) or messages.get("step3") != _digest(step3):
        raise FetchRefused(f"{provider}'s result is not about this node's step 3")
    mine = _sign(result, key)
    out = out_dir / f"{session_id}.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    with written_whole(out) as part:
        part.write_bytes(canonical_json({"result": result, "provider_jws": signature,
                                         "requester_jws": mine}))
    LOG.append(session, "overlap.computed", now, member=provider, agreement=agreement_id,
               overlap_session=session_id, count=count, result_sha256=_digest(signature))
    session.commit()
    return Overlap(out, result, count)


def _post(http: httpx.Client, url: str, token: str, body: Mapping[str, Any],
          provider: str) -> dict[str, Any]:
    answer = post_for_json(http, url, token=token, body=dict(body),
                           max_bytes=MAX_MESSAGE_BYTES * 2, who=provider)
    if not isinstance(answer, dict):
        raise FetchRefused(f"{provider}'s answer is not an object")
    return answer
