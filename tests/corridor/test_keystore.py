"""The node's private keys on disk: created safely, never replaced, never read if exposed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corridor.keystore import (
    KeyFiles,
    KeystoreError,
    activate_key,
    add_key,
    create_keystore,
    load_signing_key,
    public_keys,
    retire_key,
)


def test_created_key_loads_and_matches_public_jwks(tmp_path: Path) -> None:
    key = create_keystore(tmp_path / "keys")
    assert load_signing_key(tmp_path / "keys").kid == key.kid
    assert public_keys(tmp_path / "keys").to_jwks()["keys"][0]["kid"] == key.kid


def test_second_create_refuses_and_leaves_the_active_key_alone(tmp_path: Path) -> None:
    key = create_keystore(tmp_path / "keys")
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(tmp_path / "keys")
    assert load_signing_key(tmp_path / "keys").kid == key.kid
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    key = create_keystore(tmp_path / "keys")
    os.chmod(tmp_path / "keys" / f"{key.kid}.pem", 0o644)
    with pytest.raises(KeystoreError, match="readable by others"):
        load_signing_key(tmp_path / "keys")


def test_symlinked_active_file_is_refused(tmp_path: Path) -> None:
    create_keystore(tmp_path / "keys")
    active = tmp_path / "keys" / "active"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(active.read_text())
    elsewhere.chmod(0o600)
    active.unlink()
    active.symlink_to(elsewhere)
    with pytest.raises(KeystoreError, match="cannot read"):
        load_signing_key(tmp_path / "keys")


@pytest.mark.parametrize("content", ["", "../../etc/passwd", ".hidden"])
def test_active_file_must_name_a_key(tmp_path: Path, content: str) -> None:
    create_keystore(tmp_path / "keys")
    active = tmp_path / "keys" / "active"
    active.write_text(content)
    with pytest.raises(KeystoreError):
        load_signing_key(tmp_path / "keys")


def test_a_serving_process_reads_its_key_once_and_again_after_a_rotation(
        tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    first = create_keystore(keys_dir)
    files = KeyFiles(keys_dir)
    assert files.signing_key().kid == first.kid
    assert files.signing_key() is files.signing_key()  # not read again while nothing changed
    second = add_key(keys_dir)
    assert files.signing_key().kid == first.kid  # a new key is not the active one yet
    activate_key(keys_dir, second.kid)
    assert files.signing_key().kid == second.kid  # the next request signs with the new key
    retire_key(keys_dir, first.kid)
    assert files.signing_key().kid == second.kid


def test_a_cached_key_made_readable_by_others_is_refused_at_the_next_use(
        tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    key = create_keystore(keys_dir)
    files = KeyFiles(keys_dir)
    files.signing_key()
    os.chmod(keys_dir / f"{key.kid}.pem", 0o644)
    with pytest.raises(KeystoreError, match="readable by others"):
        files.signing_key()
