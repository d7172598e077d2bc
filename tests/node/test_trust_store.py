"""The node's trust store: pinned anchor, stored list, refusals kept as evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corridor.anchor import AnchorError
from crypto.keys import KeySet, SigningKey
from crypto.trustlist import ANCHOR_TYP, TrustListRejected, sign_trust_list
from node.exchange.trust_store import TrustStore, TrustUnavailable, install_anchor

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REGISTRY = SigningKey.generate()
URL = "https://registry.example"


def signed(version: int, *, key: SigningKey = REGISTRY, ttl: timedelta = timedelta(days=7),
           name: str = "Land of the Leopard") -> str:
    from crypto.trustlist import MemberEntry

    member = MemberEntry("ru-lotl", name, "RU", "https://ru.example",
                         KeySet([SigningKey.generate().public_key]))
    return sign_trust_list(version=version, issued_at=NOW, expires_at=NOW + ttl,
                           registry_url=URL, registry_keys=KeySet([key.public_key]),
                           members=[member], key=key)


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    anchor = tmp_path / "anchor.json"
    anchor.write_text(json.dumps({"typ": ANCHOR_TYP, "registry_url": URL,
                                  **KeySet([REGISTRY.public_key]).to_jwks()}))
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    install_anchor(node_dir, anchor, URL)
    return TrustStore(node_dir)


def test_anchor_for_another_registry_is_refused(tmp_path: Path) -> None:
    anchor = tmp_path / "a.json"
    anchor.write_text(json.dumps({"typ": ANCHOR_TYP, "registry_url": "https://evil.example",
                                  **KeySet([REGISTRY.public_key]).to_jwks()}))
    with pytest.raises(AnchorError, match=r"not for https://registry\.example"):
        install_anchor(tmp_path, anchor, URL)


def test_update_stores_and_reports_change(store: TrustStore) -> None:
    assert store.current() is None
    first, changed = store.update(signed(1), NOW)
    assert changed and first.version == 1
    again, changed = store.update(first.jws, NOW)
    assert not changed and again.version == 1
    assert store.update(signed(2), NOW)[0].version == 2
    assert store.current().version == 2  # type: ignore[union-attr]


def test_refused_lists_are_kept_as_evidence_and_the_stored_one_survives(
    store: TrustStore
) -> None:
    store.update(signed(3), NOW)
    for bad, reason in ((signed(2), "rollback"), (signed(3, name="Other"), "equivocation"),
                        (signed(4, key=SigningKey.generate()), "pinned registry key")):
        with pytest.raises(TrustListRejected, match=reason):
            store.update(bad, NOW)
    evidence = list((store.directory / "trust" / "refused").glob("*.jws"))
    assert len(evidence) == 3
    assert store.current().version == 3  # type: ignore[union-attr]


def test_valid_refuses_when_missing_or_expired(store: TrustStore) -> None:
    with pytest.raises(TrustUnavailable, match="no trust list yet"):
        store.valid(NOW)
    store.update(signed(1, ttl=timedelta(hours=1)), NOW)
    assert store.valid(NOW + timedelta(minutes=59)).version == 1
    with pytest.raises(TrustUnavailable, match="expired at"):
        store.valid(NOW + timedelta(hours=1))


def test_tampered_stored_copy_is_not_trusted(store: TrustStore) -> None:
    store.update(signed(1), NOW)
    text = store.path.read_text()
    store.path.write_text(text[:-4] + ("AAAA" if not text.endswith("AAAA") else "BBBB"))
    with pytest.raises(TrustListRejected):
        store.current()


def test_one_store_verifies_the_file_again_only_when_it_was_replaced(
        store: TrustStore) -> None:
    store.update(signed(1), NOW)
    first = store.current()
    assert first is not None and store.current() is first  # unchanged file: no re-verification
    # Another worker's refresher replaces the file: this store sees the new list.
    other = TrustStore(store.directory)
    other.update(signed(2), NOW)
    assert store.current().version == 2  # type: ignore[union-attr]
    # A file altered in place (same path, new bytes) is verified again, and refused.
    forged = signed(3, key=SigningKey.generate(), name="Land of the Leopard (forged)")
    store.path.write_text(forged, encoding="ascii")
    with pytest.raises(TrustListRejected):
        store.current()
