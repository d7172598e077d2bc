"""Keeps the node's trust list fresh while it serves (DESIGN.md §5).

A daemon thread syncs every ``sync_interval`` seconds. Failures are logged
and the node keeps serving from its stored copy until that copy expires;
``node.auth`` then refuses every caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from corridor.keystore import load_signing_key
from crypto.trustlist import TrustListRejected
from node.registry_client import RegistryClient, RegistryError
from node.settings import NodeSettings
from node.trust_store import TrustStore

log = logging.getLogger(__name__)


def refresh_once(settings: NodeSettings, client: RegistryClient,
                 clock: Callable[[], datetime]) -> bool:
    """One sync attempt; True if a new trust list was stored."""
    try:
        _, changed = TrustStore(settings.directory).update(client.trust_list(), clock())
        return changed
    except (RegistryError, TrustListRejected) as e:
        log.warning("trust list refresh failed (serving from the stored copy): %s", e)
        return False


def start_refresher(settings: NodeSettings) -> threading.Event | None:
    """Start the background refresher if the node has a registry; return its stop event."""
    if not settings.registry_url or settings.sync_interval <= 0:
        return None
    stop = threading.Event()
    client = RegistryClient(settings.registry_url, member_id=settings.member_id,
                            key=load_signing_key(settings.keys_dir),
                            http=httpx.Client(timeout=30), clock=lambda: datetime.now(UTC))

    def run() -> None:
        while True:
            refresh_once(settings, client, lambda: datetime.now(UTC))
            if stop.wait(settings.sync_interval):
                return

    threading.Thread(target=run, name="trust-list-refresher", daemon=True).start()
    return stop
