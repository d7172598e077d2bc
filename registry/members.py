"""Membership: signed join requests, the operator's decisions, key rotation.

A join request is a compact JWS (``typ`` = ``corridor-join+jwt``) signed by
one of the keys it carries, which proves the requester holds that key. The
registry never fetches the node URL it is given (DESIGN.md §5); it only
checks its form: ``https://``, or ``http://`` on a loopback address when the
registry runs in development mode.

Every change is appended to the registry's exchange log (:data:`registry.log.LOG`)
in the transaction that makes it: ``member.joined``, ``member.status``,
``member.key_added`` and ``member.key_rotated``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor.config import SettingsError, validate_identity
from corridor.web import BadRequest, Conflict, CorridorError, NotFound
from crypto.errors import InvalidKey, InvalidSignature
from crypto.jws import verify_compact
from crypto.keys import KeySet, VerifyKey
from registry.log import LOG
from registry.models import (
    MEMBER_ACTIVE,
    MEMBER_PENDING,
    MEMBER_SUSPENDED,
    Member,
    MemberKey,
)

JOIN_TYP = "corridor-join+jwt"
KEY_PROOF_TYP = "corridor-key-proof+jwt"
MAX_REQUEST_AGE = 600  # seconds a signed request stays acceptable


class InvalidRequest(BadRequest):
    """A signed request is malformed, badly signed or stale."""

    title = "Invalid signed request"


def check_node_url(url: str, *, development: bool) -> str:
    """Accept ``https://`` URLs, and ``http://`` loopback URLs in development mode."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and development and parts.hostname:
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return url.rstrip("/")
    raise InvalidRequest(
        f"node URL {url!r} must be https://" + (" (or http:// on loopback)" if development else ""))


@dataclass(frozen=True)
class JoinRequest:
    """A verified membership request."""

    member_id: str
    name: str
    country: str
    node_url: str
    keys: KeySet
    jws: str


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError as e:
        raise InvalidRequest("request payload is not JSON") from e
    if not isinstance(value, dict):
        raise InvalidRequest("request payload must be a JSON object")
    return value


def _fresh(claims: dict[str, Any], now: datetime) -> None:
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidRequest("request has no iat")
    age = now.timestamp() - iat
    if age > MAX_REQUEST_AGE or age < -60:
        raise InvalidRequest("request is stale or from the future; check the clock")


def verify_join_request(jws: str, *, now: datetime, development: bool) -> JoinRequest:
    """Check a self-signed membership request.

    Raises:
        InvalidRequest: malformed, badly signed, stale, or with a bad identity or URL.
    """
    try:
        # The payload is read before verification only to learn which keys to try;
        # the signature is then checked against exactly those keys.
        claims = _json_object(_unverified_payload(jws))
        keys = KeySet.from_jwks(claims.get("keys"))  # type: ignore[arg-type]
        verified = verify_compact(jws, keys, max_size=64 * 1024, expected_typ=JOIN_TYP)
    except (InvalidKey, InvalidSignature) as e:
        raise InvalidRequest("join request signature does not verify with its own keys") from e
    claims = _json_object(verified.payload)
    _fresh(claims, now)
    try:
        member_id, name, country = str(claims["member_id"]), str(claims["name"]), \
            str(claims["country"])
        validate_identity(member_id, country)
    except KeyError as e:
        raise InvalidRequest(f"join request lacks {e.args[0]!r}") from e
    except SettingsError as e:
        raise InvalidRequest(str(e)) from e
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("institution name must be 1-200 characters")
    url = check_node_url(str(claims.get("node_url", "")), development=development)
    return JoinRequest(member_id, name, country, url, keys, jws)


def _unverified_payload(jws: str) -> bytes:
    import base64

    try:
        segment = jws.split(".")[1]
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (IndexError, ValueError) as e:
        raise InvalidRequest("not a compact JWS") from e


def record_join_request(session: Session, request: JoinRequest, now: datetime) -> Member:
    """Store a pending request (or refresh a pending one); refuse if the id is taken.

    Logs ``member.joined`` (``member``, ``country``, ``name``, ``kids``: the key ids the
    request carries) in the caller's transaction.
    """
    member = session.get(Member, request.member_id)
    if member is not None and member.status != MEMBER_PENDING:
        raise Conflict(f"member {request.member_id} already exists ({member.status})")
    if member is None:
        member = Member(member_id=request.member_id, status=MEMBER_PENDING)
        session.add(member)
    member.name, member.country = request.name, request.country
    member.node_url, member.request_jws, member.requested_at = request.node_url, request.jws, now
    for old in session.scalars(select(MemberKey).where(MemberKey.member_id == request.member_id)):
        session.delete(old)
    session.flush()
    kids = []
    for key in request.keys.verify_keys():
        session.add(MemberKey(member_id=request.member_id, kid=key.kid, jwk=key.to_jwk(),
                              added_at=now))
        kids.append(key.kid)
    # Rows first, log last: the log's head lock is then held only until the commit.
    session.flush()
    LOG.append(session, "member.joined", now, member=request.member_id,
               country=request.country, name=request.name, kids=sorted(kids))
    return member


def get_member(session: Session, member_id: str) -> Member:
    """A member by id, or NotFound."""
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"no member {member_id!r}")
    return member


def set_status(session: Session, member_id: str, status: str, now: datetime) -> Member:
    """Admit (active) or suspend a member; logs ``member.status`` (``status``, ``previous``)."""
    if status not in (MEMBER_ACTIVE, MEMBER_SUSPENDED):
        raise ValueError(status)
    member = get_member(session, member_id)
    if member.status == status:
        raise Conflict(f"member {member_id} is already {status}")
    previous = member.status
    member.status, member.decided_at = status, now
    session.flush()
    LOG.append(session, "member.status", now, member=member_id, status=status,
               previous=previous)
    return member


def list_members(session: Session) -> Sequence[Member]:
    """All members and applicants, by id."""
    return session.scalars(select(Member).order_by(Member.member_id)).all()


def active_keys(session: Session, member_id: str) -> KeySet:
    """A member's keys that are not retired."""
    rows = session.scalars(select(MemberKey).where(
        MemberKey.member_id == member_id, MemberKey.retired_at.is_(None)))
    return KeySet([VerifyKey.from_jwk(r.jwk) for r in rows])


def add_key(session: Session, member_id: str, jwk: dict[str, Any], proof: str,
            now: datetime) -> MemberKey:
    """Add a key for rotation; ``proof`` is a JWS by the new key over the member id and kid.

    Logs ``member.key_added`` (``kid``).
    """
    try:
        key = VerifyKey.from_jwk(jwk)
        verified = verify_compact(proof, KeySet([key]), max_size=8192,
                                  expected_typ=KEY_PROOF_TYP)
    except (InvalidKey, InvalidSignature) as e:
        raise InvalidRequest("new key or its proof of possession is invalid") from e
    claims = _json_object(verified.payload)
    _fresh(claims, now)
    if claims.get("member_id") != member_id or claims.get("kid") != key.kid:
        raise InvalidRequest("proof of possession names another member or key")
    if session.get(MemberKey, (member_id, key.kid)) is not None:
        raise Conflict(f"key {key.kid} is already registered")
    row = MemberKey(member_id=member_id, kid=key.kid, jwk=key.to_jwk(), added_at=now)
    session.add(row)
    session.flush()
    LOG.append(session, "member.key_added", now, member=member_id, kid=key.kid)
    return row


def retire_key(session: Session, member_id: str, kid: str, now: datetime) -> MemberKey:
    """Retire a key; a member always keeps at least one active key.

    Retiring is the last step of a rotation: logs ``member.key_rotated`` (``kid``: the
    retired key, ``active``: the key ids that remain).
    """
    row = session.get(MemberKey, (member_id, kid))
    if row is None or row.retired_at is not None:
        raise NotFound(f"no active key {kid!r} for {member_id}")
    remaining = sorted(k for k in active_keys(session, member_id) if k != kid)
    if not remaining:
        raise Conflict("cannot retire the last active key; add its successor first")
    row.retired_at = now
    session.flush()
    LOG.append(session, "member.key_rotated", now, member=member_id, kid=kid, active=remaining)
    return row


__all__ = ["CorridorError", "InvalidRequest", "JoinRequest"]
