"""The node's private keys on disk: one PEM file per key, readable by the owner only.

``DIR/keys/`` is created with mode 0700 and must not exist beforehand; each key
is written as ``<kid>.pem`` with mode 0600 (created that way with O_EXCL, never
chmod-ed afterwards, so there is no window in which another user could read
it). ``active`` names the key that signs; it is written last, through a
temporary file and an atomic rename, so a failed call never changes which key
signs.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from pathlib import Path

from corridor.errors import Unavailable
from crypto.keys import KeySet, SigningKey

ACTIVE_FILE = "active"
SESSION_SECRET_FILE = "session-secret"  # noqa: S105 (a file name, not a secret)


class KeystoreError(Unavailable):
    """Keys are missing, unreadable or too widely readable."""

    title = "Signing keys unavailable"
    public = False


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600; refuse to follow or replace anything already there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _set_active(keys_dir: Path, kid: str) -> None:
    pending = keys_dir / f".{ACTIVE_FILE}.tmp"
    pending.unlink(missing_ok=True)
    _write_private(pending, (kid + "\n").encode("ascii"))
    os.replace(pending, keys_dir / ACTIVE_FILE)


def create_keystore(keys_dir: Path) -> SigningKey:
    """Create the key directory with a fresh Ed25519 key and a session secret.

    Raises:
        KeystoreError: the directory already exists (keys are never overwritten).
    """
    try:
        os.mkdir(keys_dir, 0o700)
    except FileExistsError as e:
        raise KeystoreError(f"{keys_dir} already exists; refusing to touch existing keys") from e
    os.chmod(keys_dir, 0o700)  # mkdir's mode is filtered by the umask
    key = SigningKey.generate()
    _write_private(keys_dir / f"{key.kid}.pem", key.private_pem())
    _write_private(keys_dir / SESSION_SECRET_FILE, secrets.token_urlsafe(32).encode())
    _set_active(keys_dir, key.kid)
    return key


def add_key(keys_dir: Path) -> SigningKey:
    """Create a further key (for rotation) without making it the active one."""
    key = SigningKey.generate()
    _write_private(keys_dir / f"{key.kid}.pem", key.private_pem())
    return key


def activate_key(keys_dir: Path, kid: str) -> SigningKey:
    """Make an existing key the one that signs (atomically)."""
    key = SigningKey.from_pem(_read_private(keys_dir / f"{_check_kid(kid)}.pem"))
    _set_active(keys_dir, key.kid)
    return key


def retire_key(keys_dir: Path, kid: str) -> None:
    """Move a key that no longer signs to ``keys/retired/`` (kept, never used again)."""
    if kid == load_signing_key(keys_dir).kid:
        raise KeystoreError("the active key cannot be retired; rotate first")
    path = keys_dir / f"{_check_kid(kid)}.pem"
    if not path.exists():
        raise KeystoreError(f"no key {kid} in {keys_dir}")
    retired = keys_dir / "retired"
    retired.mkdir(mode=0o700, exist_ok=True)
    os.replace(path, retired / path.name)


def signing_keys(keys_dir: Path) -> list[SigningKey]:
    """Every key that is not retired, the active one first."""
    active = load_signing_key(keys_dir)
    others = [SigningKey.from_pem(_read_private(p)) for p in sorted(keys_dir.glob("*.pem"))
              if p.stem != active.kid]
    return [active, *others]


def _check_kid(kid: str) -> str:
    if not kid or "/" in kid or kid.startswith(".") or "\x00" in kid:
        raise KeystoreError(f"{kid!r} is not a key id")
    return kid


def _read_private(path: Path) -> bytes:
    """Read a secret file, refusing links and files that others can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise KeystoreError(f"{path}: cannot read ({e.strerror})") from e
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeystoreError(f"{path}: not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeystoreError(
                f"{path}: readable by others (mode {mode:o}); run 'chmod 600' on it")
        return fh.read()


def load_signing_key(keys_dir: Path) -> SigningKey:
    """Load the active signing key."""
    kid = _read_private(keys_dir / ACTIVE_FILE).decode("ascii", "replace").strip()
    try:
        _check_kid(kid)
    except KeystoreError as e:
        raise KeystoreError(f"{keys_dir / ACTIVE_FILE}: does not name a key") from e
    key = SigningKey.from_pem(_read_private(keys_dir / f"{kid}.pem"))
    if key.kid != kid:
        raise KeystoreError(f"{keys_dir / kid}.pem: key id does not match its file name")
    return key


class KeyFiles:
    """The active signing key of a serving process, read again only when the keys change.

    A key directory changes by whole-file operations (a new ``<kid>.pem``,
    ``active`` replaced by a rename, a key moved to ``retired/``), which change
    the directory's or ``active``'s inode or times; a ``chmod`` changes the
    file's ctime. So each call costs three ``stat`` calls instead of reading,
    checking and parsing the PEM, and a key rotated by ``corridor node keys``
    signs from the next request on, in every worker.
    """

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._lock = threading.Lock()
        self._key: SigningKey | None = None
        self._seen: tuple[int, ...] = ()

    def _stat(self, name: str | None = None) -> tuple[int, ...]:
        path = self.keys_dir if name is None else self.keys_dir / name
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError as e:
            raise KeystoreError(f"{path}: cannot read ({e.strerror})") from e
        return info.st_ino, info.st_mtime_ns, info.st_ctime_ns

    def signing_key(self) -> SigningKey:
        """The active key (:func:`load_signing_key`), reloaded if the directory changed."""
        with self._lock:
            # Stat before reading: a change made while reading shows at the next call.
            keys = self._stat() + self._stat(ACTIVE_FILE)
            if self._key is None or keys + self._stat(f"{self._key.kid}.pem") != self._seen:
                self._key = load_signing_key(self.keys_dir)
                self._seen = keys + self._stat(f"{self._key.kid}.pem")
            return self._key


def load_session_secret(keys_dir: Path) -> str | None:
    """The web session secret kept beside the keys, if there is one."""
    path = keys_dir / SESSION_SECRET_FILE
    if not path.exists():
        return None
    return _read_private(path).decode("ascii").strip()


def public_keys(keys_dir: Path) -> KeySet:
    """The public halves of every key that is not retired (the service's JWKS)."""
    return KeySet([k.public_key for k in signing_keys(keys_dir)])
