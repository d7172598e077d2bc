"""The node's private keys on disk: one PEM file per key, readable by the owner only.

``DIR/keys/`` is created with mode 0700; each key is written atomically as
``<kid>.pem`` with mode 0600 (created that way, never chmod-ed afterwards, so
there is no window in which another user could read it). ``active`` names the
key that signs.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from crypto.keys import KeySet, SigningKey

ACTIVE_FILE = "active"


class KeystoreError(Exception):
    """Keys are missing, unreadable or too widely readable."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def create_keystore(keys_dir: Path) -> SigningKey:
    """Create the key directory with a fresh Ed25519 key and a session secret."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    key = SigningKey.generate()
    _write_private(keys_dir / f"{key.kid}.pem", key.private_pem())
    (keys_dir / ACTIVE_FILE).write_text(key.kid + "\n", encoding="ascii")
    _write_private(keys_dir / "session-secret", secrets.token_urlsafe(32).encode())
    return key


def load_signing_key(keys_dir: Path) -> SigningKey:
    """Load the active signing key, refusing files that others can read."""
    try:
        kid = (keys_dir / ACTIVE_FILE).read_text(encoding="ascii").strip()
    except OSError as e:
        raise KeystoreError(f"{keys_dir}: no active key ({e.strerror})") from e
    path = keys_dir / f"{kid}.pem"
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeystoreError(f"{path}: private key is readable by others (mode {mode:o}); "
                                "run 'chmod 600' on it")
        key = SigningKey.from_pem(path.read_bytes())
    except OSError as e:
        raise KeystoreError(f"{path}: cannot read the active key ({e.strerror})") from e
    if key.kid != kid:
        raise KeystoreError(f"{path}: key id does not match its file name")
    return key


def public_keys(keys_dir: Path) -> KeySet:
    """The public halves of every key in the directory (the node's JWKS)."""
    keys = [load_signing_key(keys_dir).public_key]
    return KeySet(keys)
