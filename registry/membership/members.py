"""Membership: signed join requests, the operator's decisions, key rotation.

A join request is a compact JWS (``typ`` = ``corridor-join+jwt``) signed by
one of the keys it carries, which proves the requester holds that key. The
registry never fetches the node URL it is given (DESIGN.md §5); it only
checks its form (:func:`check_node_url`): ``https://`` with a public DNS name
on port 443, or a loopback address when the registry runs in development
mode, so that no member can point other members' nodes into their own
networks.

Every change is appended to the registry's exchange log (:data:`registry.log.exchange_log.LOG`)
in the transaction that makes it: ``member.joined``, ``member.status``,
``member.key_added`` and ``member.key_rotated``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from corridor.config import SettingsError, validate_identity
from corridor.errors import BadRequest, Conflict, CorridorError, NotFound
from corridor.web import MAX_JSON_DEPTH, json_depth
from crypto.errors import InvalidKey, InvalidSignature
from crypto.jws import verify_compact
from crypto.keys import KeySet, VerifyKey
from registry.log.exchange_log import LOG
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

log = logging.getLogger(__name__)


class InvalidRequest(BadRequest):
    """A signed request is malformed, badly signed or stale."""

    title = "Invalid signed request"


class InvalidNodeUrl(InvalidRequest):
    """A well-formed, well-signed request whose node URL the registry will not list."""

    status = 422
    title = "Node URL refused"


#: Longest node URL accepted.
MAX_NODE_URL = 2048
#: Longest host name (RFC 1035 §2.3.4: 255 octets on the wire, 253 written out).
MAX_HOST = 253
#: Name suffixes that resolve inside a site, not on the internet (RFC 6761 localhost,
#: RFC 6762 local, RFC 8375 home.arpa, and the common private zones): a node URL in
#: them would point partners' nodes into their own networks. (RFC 2606's example and
#: test never resolve at all, and documentation and tests use them.)
PRIVATE_SUFFIXES = ("localhost", "local", "localdomain", "internal", "intranet", "lan",
                    "home.arpa", "arpa", "svc", "cluster.local", "corp", "home", "onion")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)\Z")


def check_node_url(url: str, *, development: bool) -> str:
    """The canonical form of a node URL partners' nodes may connect to, or refuse it.

    A node URL goes into the trust list, and other members' nodes connect to
    it: it must not point into their networks. Accepted: ``https://`` with a
    public DNS name in canonical form (lower case, letters, digits and
    hyphens, punycode for other scripts, at least two labels, no trailing
    dot), on port 443, with no user info, query or fragment. Refused: IP
    literals of every spelling (``10.0.0.1``, ``2130706433``, ``0x7f.1``,
    ``[::ffff:127.0.0.1]``) and names under :data:`PRIVATE_SUFFIXES`. In
    development mode, ``http://`` or ``https://`` on a loopback address (or
    ``localhost``) is accepted too, so one machine can run a federation.

    The registry does not resolve the name (it never connects to node URLs):
    a public name can still resolve to a private address, which only the
    connecting node can check.

    So the node's own HTTP client, when it connects to a partner's node URL,
    refuses private, loopback, link-local, reserved and CGNAT addresses after
    resolution (:mod:`corridor.outbound`; DNS rebinding is out of the
    registry's reach).

    :raises InvalidNodeUrl: (422) saying which rule the URL breaks.
    """
    def refuse(why: str) -> InvalidNodeUrl:
        return InvalidNodeUrl(f"node URL {url[:200]!r} refused: {why}")

    if not isinstance(url, str) or len(url) > MAX_NODE_URL:
        raise refuse(f"not a URL of at most {MAX_NODE_URL} characters")
    if any(not 0x21 <= ord(c) <= 0x7E for c in url):
        raise refuse("spaces, control characters and non-ASCII letters are not allowed "
                     "(write an internationalized name in punycode, xn--...)")
    try:
        parts = urlsplit(url)
    except ValueError as e:  # a stray bracket: "https://a[b.example", "https://[::1"
        raise refuse("not a well-formed URL (unbalanced brackets?)") from e
    if "@" in parts.netloc:
        raise refuse("user info (name@ or name:password@) is not allowed")
    if "?" in url or "#" in url:
        raise refuse("a query or fragment is not allowed")
    try:
        port = parts.port
    except ValueError as e:
        raise refuse("the port is not a number from 1 to 65535") from e
    # The host as written (urlsplit's ``hostname`` is lower-cased): canonical form is checked.
    netloc = parts.netloc
    raw_host = netloc[:netloc.index("]") + 1] if netloc.startswith("[") and "]" in netloc \
        else netloc.split(":", 1)[0]
    if development and parts.scheme in ("http", "https") and _loopback(parts.hostname):
        return url.rstrip("/")
    if parts.scheme != "https":
        raise refuse("must be https://" + (" (or http:// on loopback in development mode)"
                                           if development else ""))
    if port not in (None, 443):
        raise refuse(f"port {port}: a node is served on 443, behind TLS")
    if raw_host.startswith("[") or _ip_literal(raw_host):
        raise refuse("an IP address is not allowed; give the node's DNS name")
    if raw_host != raw_host.lower():
        raise refuse("the host name must be in lower case (its canonical form)")
    labels = raw_host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise refuse("an IP address is not allowed; give the node's DNS name")
    if any(raw_host == suffix or raw_host.endswith("." + suffix) for suffix in PRIVATE_SUFFIXES):
        raise refuse(f"{raw_host} is a private or reserved name, not reachable by partners")
    if raw_host.endswith(".") or len(labels) < 2:
        raise refuse("the host must be a fully qualified name like node.park.example.org, "
                     "with no trailing dot")
    if len(raw_host) > MAX_HOST:
        raise refuse(f"the host name is longer than {MAX_HOST} characters")
    if not all(_LABEL.match(label) for label in labels):
        raise refuse("each part of the host name must be letters, digits and inner "
                     "hyphens, 1 to 63 characters")
    if not all(_a_label(label) for label in labels if label.startswith("xn--")):
        raise refuse("an xn-- part of the host name is not valid punycode in canonical form")
    return f"https://{raw_host}{parts.path}".rstrip("/")


def _a_label(label: str) -> bool:
    """Whether an ``xn--`` label is an IDNA A-label in canonical form (RFC 5890 §2.3.2.1).

    Its punycode must decode to a lower-case, NFC, non-ASCII name that encodes
    back to exactly the same label, so that one name has one spelling.
    """
    try:
        name = label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return False
    return (not name.isascii() and name == unicodedata.normalize("NFC", name.lower())
            and name.encode("punycode").decode("ascii") == label[4:])


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # Canonical spellings only (127.0.0.1, ::1): not ::ffff:127.0.0.1 or other disguises.
    return address.is_loopback and str(address) == host


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class JoinRequest:
    """A verified membership request."""

    member_id: str
    name: str
    country: str
    node_url: str
    keys: KeySet
    jws: str
    #: The ``kid`` of the request's key that signed it.
    signed_by: str = ""


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        if json_depth(payload) > MAX_JSON_DEPTH:  # json.loads recurses: no RecursionError
            raise InvalidRequest(f"request payload nests deeper than {MAX_JSON_DEPTH}")
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
    return JoinRequest(member_id, name, country, url, keys, jws, signed_by=verified.kid)


def _unverified_payload(jws: str) -> bytes:
    import base64

    try:
        segment = jws.split(".")[1]
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (IndexError, ValueError) as e:
        raise InvalidRequest("not a compact JWS") from e


def record_join_request(session: Session, request: JoinRequest, now: datetime) -> Member:
    """Store a pending request (or refresh a pending one); refuse if the id is taken.

    Anyone may post a join request, so a pending application is refreshed
    (new URL, name or keys) only by a request signed with a key it already
    holds: otherwise a stranger could swap their own key and URL into another
    institution's application before the operator admits it.

    Logs ``member.joined`` (``member``, ``country``, ``name``, ``kids``: the key ids the
    request carries) in the caller's transaction.

    :raises Conflict: the id is taken, or pending under keys that did not sign this.
    """
    member = session.get(Member, request.member_id)
    if member is not None and member.status != MEMBER_PENDING:
        raise Conflict(f"member {request.member_id} already exists ({member.status})")
    if member is not None:
        on_file = {k.kid: k.jwk for k in session.scalars(
            select(MemberKey).where(MemberKey.member_id == request.member_id))}
        signer = {k.kid: k.to_jwk() for k in request.keys.verify_keys()}.get(request.signed_by)
        if signer is None or on_file.get(request.signed_by) != signer:
            log.warning("join request for pending %s refused: signed by %s, not a key on file",
                        request.member_id, request.signed_by or "no key")
            raise Conflict(f"member {request.member_id} has a pending request under other "
                           "keys; only a request signed by one of those keys can replace it "
                           "(ask the registry operator to remove the pending request)")
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


def member_kids(session: Session, member_id: str) -> list[str]:
    """The key ids a member (or applicant) holds, sorted."""
    return sorted(session.scalars(select(MemberKey.kid).where(MemberKey.member_id == member_id)))


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
