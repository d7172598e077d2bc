"""The node's pinned registry anchor and its last valid trust list, kept on disk.

``DIR/anchor.json`` is the registry's URL and public keys, given to the node
out of band at ``init``. ``DIR/trust/trust-list.jws`` is the newest trust list
that verified against it. The node keeps working from that copy while the
registry is unreachable, until the copy expires (DESIGN.md §5). A list that
is refused (rollback, equivocation, bad signature) is kept under
``DIR/trust/refused/`` as evidence.
"""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app

from corridor.anchor import read_anchor, read_anchor_for
from corridor.errors import CorridorError
from crypto.keys import KeySet
from crypto.trustlist import (
    TrustList,
    TrustListRejected,
    load_trusted,
    verify_trust_list,
)
from node.settings import current_settings

ANCHOR_FILE = "anchor.json"
TRUST_DIR = "trust"
TRUST_FILE = "trust-list.jws"


class TrustUnavailable(CorridorError):
    """The node has no valid trust list, so it cannot verify anyone."""

    status = 503
    title = "Trust list unavailable"


def install_anchor(directory: Path, source: Path, registry_url: str) -> KeySet:
    """Copy an anchor into a node directory after checking it names ``registry_url``."""
    keys = read_anchor_for(source, registry_url)
    (directory / ANCHOR_FILE).write_bytes(source.read_bytes())
    return keys


class TrustStore:
    """The trust list a node relies on, verified against its pinned anchor.

    One store serves every request of an app: the verified list is kept and
    the file read and verified again only when it was replaced (its inode,
    size or mtime changed), by this process or by another worker's refresher.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.registry_url, self.anchor = read_anchor(directory / ANCHOR_FILE)
        self.path = directory / TRUST_DIR / TRUST_FILE
        self._lock = threading.Lock()
        self._verified: tuple[tuple[int, int, int], TrustList] | None = None

    def current(self) -> TrustList | None:
        """The stored trust list (signature checked when the file changed; may be expired)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        seen = (info.st_ino, info.st_size, info.st_mtime_ns)  # stat first: a later change shows
        with self._lock:
            if self._verified is not None and self._verified[0] == seen:
                return self._verified[1]
            trust_list = load_trusted(self.path.read_text(encoding="ascii"), anchor=self.anchor)
            self._verified = (seen, trust_list)
            return trust_list

    def update(self, jws: str, now: datetime) -> tuple[TrustList, bool]:
        """Verify a trust list from the registry and store it; return (list, changed).

        Raises:
            TrustListRejected: it is badly signed, expired, older than the stored
                one, or a different document under the stored version.
        """
        current = self.current()
        try:
            verified = verify_trust_list(jws, anchor=self.anchor, now=now, current=current)
        except TrustListRejected:
            self._keep_evidence(jws, now)
            raise
        if verified is current:
            return verified, False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(jws, encoding="ascii")
        os.replace(tmp, self.path)  # atomic: readers see the old or the new list, never half
        return verified, True

    def valid(self, now: datetime) -> TrustList:
        """The stored trust list if it has not expired.

        Raises:
            TrustUnavailable: none stored, or it has expired.
        """
        trust_list = self.current()
        if trust_list is None:
            raise TrustUnavailable("this node has no trust list yet; run 'corridor node sync'")
        if trust_list.is_expired(now):
            raise TrustUnavailable(
                f"the stored trust list (version {trust_list.version}) expired at "
                f"{trust_list.expires_at.isoformat()}; the node refuses to verify anyone "
                "until it can sync with the registry")
        return trust_list

    def _keep_evidence(self, jws: str, now: datetime) -> None:
        refused = self.directory / TRUST_DIR / "refused"
        refused.mkdir(parents=True, exist_ok=True)
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        digest = hashlib.sha256(jws.encode("utf-8", "replace")).hexdigest()[:16]
        (refused / f"{stamp}-{digest}.jws").write_text(jws[:4 * 1024 * 1024], encoding="utf-8",
                                                       errors="replace")


def current_trust_store() -> TrustStore:
    """The trust store of the node app handling the current request (made at first use)."""
    store: TrustStore | None = current_app.extensions.get("corridor_trust_store")
    if store is None:
        store = TrustStore(current_settings().directory)  # AnchorError: not joined yet
        current_app.extensions["corridor_trust_store"] = store
    return store
