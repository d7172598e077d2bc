"""VerifiedCache: a token presented again skips its signature check, never anything else."""

from __future__ import annotations

import pytest

from crypto.errors import InvalidSignature
from crypto.jws import VerifiedCache, sign_compact, verify_compact
from crypto.keys import KeySet, SigningKey
from crypto.tokens import ACCESS_TOKEN_TYP, issue_access_token, verify_access_token

NOW = 1_700_000_000
ISSUER = "https://registry.example"


def token(key: SigningKey, audience: str = "cn-ntlnp", now: int = NOW, ttl: int = 300) -> str:
    return issue_access_token(key, issuer=ISSUER, subject="ru-lotl", audience=audience,
                              scope="node:read", now=now, ttl=ttl, jti=f"j-{now}-{audience}")


def test_a_token_verified_once_is_answered_from_the_cache() -> None:
    key = SigningKey.generate()
    keys, cache = KeySet([key.public_key]), VerifiedCache()
    jws = sign_compact(b"payload", key, typ="x")
    first = verify_compact(jws, keys, expected_typ="x", cache=cache)
    assert len(cache) == 1
    assert verify_compact(jws, keys, expected_typ="x", cache=cache) is first


def test_a_cached_token_fails_once_its_key_is_no_longer_trusted() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    cache = VerifiedCache()
    jws = sign_compact(b"payload", key, typ="x")
    verify_compact(jws, KeySet([key.public_key]), expected_typ="x", cache=cache)
    with pytest.raises(InvalidSignature):  # the key was retired from the trust list
        verify_compact(jws, KeySet([other.public_key]), expected_typ="x", cache=cache)


def test_a_cached_token_is_checked_again_for_another_typ_or_a_smaller_size_limit() -> None:
    key = SigningKey.generate()
    keys, cache = KeySet([key.public_key]), VerifiedCache()
    jws = sign_compact(b"payload", key, typ="x")
    verify_compact(jws, keys, expected_typ="x", cache=cache)
    with pytest.raises(InvalidSignature) as refused:
        verify_compact(jws, keys, expected_typ="y", cache=cache)
    assert "typ" in refused.value.reason
    with pytest.raises(InvalidSignature):
        verify_compact(jws, keys, expected_typ="x", max_size=len(jws) - 1, cache=cache)


def test_only_successes_are_kept_and_the_oldest_leave_first() -> None:
    key, forger = SigningKey.generate(), SigningKey.generate()
    keys, cache = KeySet([key.public_key]), VerifiedCache(size=2)
    forged = sign_compact(b"payload", forger, typ="x")
    for _ in range(3):
        with pytest.raises(InvalidSignature):
            verify_compact(forged, keys, expected_typ="x", cache=cache)
    assert len(cache) == 0
    tokens = [sign_compact(f"p{i}".encode(), key, typ="x") for i in range(3)]
    results = [verify_compact(t, keys, expected_typ="x", cache=cache) for t in tokens]
    assert len(cache) == 2
    assert verify_compact(tokens[2], keys, expected_typ="x", cache=cache) is results[2]
    again = verify_compact(tokens[0], keys, expected_typ="x", cache=cache)  # evicted: verified anew
    assert again is not results[0] and again.payload == results[0].payload
    with pytest.raises(ValueError):
        VerifiedCache(size=0)


def test_an_access_token_in_the_cache_still_has_its_claims_checked_every_time() -> None:
    key = SigningKey.generate()
    keys, cache = KeySet([key.public_key]), VerifiedCache()
    presented = token(key)
    claims = verify_access_token(presented, keys, audience="cn-ntlnp", issuer=ISSUER, now=NOW,
                                 cache=cache)
    assert claims.subject == "ru-lotl" and len(cache) == 1
    with pytest.raises(InvalidSignature) as refused:  # expired since
        verify_access_token(presented, keys, audience="cn-ntlnp", issuer=ISSUER,
                            now=NOW + 3600, cache=cache)
    assert "exp" in refused.value.reason
    with pytest.raises(InvalidSignature):  # meant for another node
        verify_access_token(presented, keys, audience="ru-lotl", issuer=ISSUER, now=NOW,
                            cache=cache)
    with pytest.raises(InvalidSignature):  # from another registry
        verify_access_token(presented, keys, audience="cn-ntlnp", issuer="https://other",
                            now=NOW, cache=cache)
    # The entry was made under the access-token typ only: as another kind it is checked anew.
    assert ACCESS_TOKEN_TYP != "JWT"
    with pytest.raises(InvalidSignature):
        verify_compact(presented, keys, expected_typ="JWT", cache=cache)
