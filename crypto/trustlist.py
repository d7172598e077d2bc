"""The registry's trust list: a signed, versioned, expiring list of members and keys.

Modelled on X-Road's global configuration and TUF's root metadata (DESIGN.md §5):
the registry signs a JSON document (compact JWS, ``typ`` =
``corridor-trust-list+jwt``) naming every active member with its country,
node URL and public keys, plus the registry's own keys. A node pins the
registry key out of band (the *anchor*) and accepts a new trust list only if:

* it is signed by a key of the anchor (registry key rotation means a new
  anchor file, distributed out of band like the first);
* it has not expired, and was not issued in the future;
* its version is not lower than the stored one (rollback), and a document
  with the same version is byte-identical to the stored one (equivocation).

Pure: no IO, no clock; ``now`` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crypto.canonical import canonical_json
from crypto.errors import CryptoError, InvalidKey, InvalidSignature
from crypto.jws import sign_compact, verify_compact
from crypto.keys import KeySet, SigningKey

TRUST_LIST_TYP = "corridor-trust-list+jwt"
ANCHOR_TYP = "corridor-anchor"  # the out-of-band file that pins the registry key
MAX_TRUST_LIST_BYTES = 4 * 1024 * 1024
CLOCK_SKEW = timedelta(minutes=5)


class TrustListRejected(CryptoError):
    """A trust list was refused; ``str()`` says why in words an operator can act on."""


@dataclass(frozen=True)
class MemberEntry:
    """One member as the trust list describes it."""

    member_id: str
    name: str
    country: str
    node_url: str
    keys: KeySet

    def to_json(self) -> dict[str, Any]:
        """The member's part of the trust-list document."""
        return {"member_id": self.member_id, "name": self.name, "country": self.country,
                "node_url": self.node_url, "keys": self.keys.to_jwks()}


@dataclass(frozen=True)
class TrustList:
    """A verified trust list."""

    version: int
    issued_at: datetime
    expires_at: datetime
    registry_url: str
    registry_keys: KeySet
    members: Mapping[str, MemberEntry] = field(default_factory=dict)
    jws: str = ""

    def member(self, member_id: str) -> MemberEntry | None:
        """An active member, or None."""
        return self.members.get(member_id)

    def is_expired(self, now: datetime) -> bool:
        """True once ``expires_at`` has passed."""
        return now >= self.expires_at


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_trust_list(*, version: int, issued_at: datetime, expires_at: datetime,
                    registry_url: str, registry_keys: KeySet,
                    members: list[MemberEntry], key: SigningKey) -> str:
    """Build and sign a trust list document; return the compact JWS."""
    if version < 1 or expires_at <= issued_at:
        raise ValueError("version must be positive and expires_at after issued_at")
    document = {
        "version": version,
        "issued_at": _iso(issued_at),
        "expires_at": _iso(expires_at),
        "registry": {"url": registry_url, "keys": registry_keys.to_jwks()},
        "members": [m.to_json() for m in sorted(members, key=lambda m: m.member_id)],
    }
    return sign_compact(canonical_json(document), key, typ=TRUST_LIST_TYP)


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise TrustListRejected(f"trust list {name} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise TrustListRejected(f"trust list {name} is not a timestamp") from e
    if parsed.tzinfo is None:
        raise TrustListRejected(f"trust list {name} has no timezone")
    return parsed.astimezone(UTC)


def _parse(payload: bytes, jws: str) -> TrustList:
    import json

    try:
        doc = json.loads(payload)
        registry = doc["registry"]
        version = doc["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise TrustListRejected("trust list version must be a positive integer")
        members = {}
        for raw in doc["members"]:
            entry = MemberEntry(
                member_id=str(raw["member_id"]), name=str(raw["name"]),
                country=str(raw["country"]), node_url=str(raw["node_url"]),
                keys=KeySet.from_jwks(raw["keys"]))
            if entry.member_id in members:
                raise TrustListRejected(f"trust list names {entry.member_id} twice")
            members[entry.member_id] = entry
        return TrustList(
            version=version,
            issued_at=_parse_time(doc.get("issued_at"), "issued_at"),
            expires_at=_parse_time(doc.get("expires_at"), "expires_at"),
            registry_url=str(registry["url"]),
            registry_keys=KeySet.from_jwks(registry["keys"]),
            members=members,
            jws=jws,
        )
    except TrustListRejected:
        raise
    except (ValueError, KeyError, TypeError, InvalidKey) as e:
        raise TrustListRejected(f"trust list is malformed ({type(e).__name__}: {e})") from e


def verify_trust_list(jws: str, *, anchor: KeySet, now: datetime,
                      current: TrustList | None = None) -> TrustList:
    """Verify a trust list against the anchor and the currently trusted list.

    Returns the new trust list, or ``current`` itself when ``jws`` is the same
    document again.

    Raises:
        TrustListRejected: bad signature, expired, issued in the future, older
            than ``current``, or a different document under ``current``'s version.
    """
    try:
        verified = verify_compact(jws, anchor, max_size=MAX_TRUST_LIST_BYTES,
                                  expected_typ=TRUST_LIST_TYP)
    except InvalidSignature as e:
        raise TrustListRejected("trust list signature is not from the pinned registry key") \
            from e
    trust_list = _parse(verified.payload, jws)
    if trust_list.is_expired(now):
        raise TrustListRejected(
            f"trust list version {trust_list.version} expired at {_iso(trust_list.expires_at)}")
    if trust_list.issued_at > now + CLOCK_SKEW:
        raise TrustListRejected(
            f"trust list version {trust_list.version} is issued in the future "
            f"({_iso(trust_list.issued_at)}); check this machine's clock")
    if current is not None:
        if trust_list.version < current.version:
            raise TrustListRejected(
                f"trust list version {trust_list.version} is older than the stored version "
                f"{current.version} (rollback refused)")
        if trust_list.version == current.version:
            if jws != current.jws:
                raise TrustListRejected(
                    f"the registry sent a different document under version {current.version} "
                    "(equivocation refused; both are kept as evidence)")
            return current
    return trust_list


def load_trusted(jws: str, *, anchor: KeySet) -> TrustList:
    """Re-read a trust list verified before (signature checked; the caller checks expiry)."""
    try:
        verified = verify_compact(jws, anchor, max_size=MAX_TRUST_LIST_BYTES,
                                  expected_typ=TRUST_LIST_TYP)
    except InvalidSignature as e:
        raise TrustListRejected("stored trust list does not verify against the anchor") from e
    return _parse(verified.payload, jws)
