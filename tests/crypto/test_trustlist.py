"""Trust list: what a node accepts and what it refuses (rollback, equivocation, expiry...)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crypto.canonical import canonical_json
from crypto.jws import sign_compact
from crypto.keys import KeySet, SigningKey
from crypto.trustlist import (
    TRUST_LIST_TYP,
    MemberEntry,
    TrustListRejected,
    load_trusted,
    sign_trust_list,
    verify_trust_list,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REGISTRY = SigningKey.generate()
ANCHOR = KeySet([REGISTRY.public_key])
RU = SigningKey.generate()


def member(member_id: str = "ru-lotl") -> MemberEntry:
    return MemberEntry(member_id, "Land of the Leopard", "RU", "https://ru.example",
                       KeySet([RU.public_key]))


def make(version: int = 1, *, issued: datetime = NOW, ttl: timedelta = timedelta(days=7),
         key: SigningKey = REGISTRY, members: list[MemberEntry] | None = None) -> str:
    return sign_trust_list(version=version, issued_at=issued, expires_at=issued + ttl,
                           registry_url="https://registry.example",
                           registry_keys=KeySet([key.public_key]),
                           members=[member()] if members is None else members, key=key)


def test_valid_list_verifies_and_exposes_members() -> None:
    trust = verify_trust_list(make(), anchor=ANCHOR, now=NOW)
    assert trust.version == 1
    entry = trust.member("ru-lotl")
    assert entry is not None and entry.node_url == "https://ru.example"
    assert RU.kid in entry.keys
    assert trust.member("cn-ntlnp") is None


def test_newer_version_replaces_and_same_document_is_a_no_op() -> None:
    first = verify_trust_list(make(1), anchor=ANCHOR, now=NOW)
    assert verify_trust_list(first.jws, anchor=ANCHOR, now=NOW, current=first) is first
    second = verify_trust_list(make(2), anchor=ANCHOR, now=NOW, current=first)
    assert second.version == 2


def test_rollback_is_refused() -> None:
    current = verify_trust_list(make(5), anchor=ANCHOR, now=NOW)
    with pytest.raises(TrustListRejected, match="older than the stored version 5"):
        verify_trust_list(make(4), anchor=ANCHOR, now=NOW, current=current)


def test_same_version_with_other_bytes_is_refused() -> None:
    current = verify_trust_list(make(3), anchor=ANCHOR, now=NOW)
    other = make(3, members=[member(), member("ru-other")])
    with pytest.raises(TrustListRejected, match="different document under version 3"):
        verify_trust_list(other, anchor=ANCHOR, now=NOW, current=current)


def test_expired_list_is_refused() -> None:
    jws = make(ttl=timedelta(hours=1))
    with pytest.raises(TrustListRejected, match="expired at 2026-11-22T13:00:00Z"):
        verify_trust_list(jws, anchor=ANCHOR, now=NOW + timedelta(hours=1))


def test_list_issued_in_the_future_is_refused() -> None:
    with pytest.raises(TrustListRejected, match="issued in the future"):
        verify_trust_list(make(issued=NOW + timedelta(hours=1)), anchor=ANCHOR, now=NOW)


def test_wrong_signer_is_refused_even_if_it_lists_itself() -> None:
    impostor = SigningKey.generate()
    with pytest.raises(TrustListRejected, match="not from the pinned registry key"):
        verify_trust_list(make(key=impostor), anchor=ANCHOR, now=NOW)


def test_other_document_types_signed_by_the_registry_are_refused() -> None:
    payload = canonical_json({"version": 9, "members": []})
    token = sign_compact(payload, REGISTRY, typ="at+jwt")
    with pytest.raises(TrustListRejected):
        verify_trust_list(token, anchor=ANCHOR, now=NOW)


@pytest.mark.parametrize("doc", [
    {"version": True, "issued_at": "2026-11-22T12:00:00Z", "expires_at": "2026-11-23T12:00:00Z",
     "registry": {"url": "u", "keys": {"keys": []}}, "members": []},
    {"version": 1, "issued_at": "2026-11-22T12:00:00", "expires_at": "2026-11-23T12:00:00Z",
     "registry": {"url": "u", "keys": {"keys": []}}, "members": []},
    {"version": 1, "issued_at": "2026-11-22T12:00:00Z", "expires_at": "2026-11-23T12:00:00Z",
     "members": []},
    {"version": 1, "issued_at": "2026-11-22T12:00:00Z", "expires_at": "2026-11-23T12:00:00Z",
     "registry": {"url": "u", "keys": {"keys": []}},
     "members": [member().to_json(), member().to_json()]},
])
def test_malformed_documents_are_refused(doc: dict[str, object]) -> None:
    jws = sign_compact(canonical_json(doc), REGISTRY, typ=TRUST_LIST_TYP)
    with pytest.raises(TrustListRejected):
        verify_trust_list(jws, anchor=ANCHOR, now=NOW)


def test_stored_copy_is_reread_without_a_clock_but_still_pinned() -> None:
    jws = make(ttl=timedelta(seconds=1))
    assert load_trusted(jws, anchor=ANCHOR).version == 1  # expiry is the caller's check
    with pytest.raises(TrustListRejected):
        load_trusted(make(key=SigningKey.generate()), anchor=ANCHOR)
