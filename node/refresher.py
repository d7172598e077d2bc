"""Keeps the node's trust list and agreements fresh while it serves (DESIGN.md §5, §6).

A daemon thread refreshes the trust list every ``sync_interval`` seconds and,
every ``request_poll_interval`` seconds, pushes the owner's decisions and
pulls new requests (nodes only connect outward). Failures are logged and the
node keeps serving from its stored copies; once the trust list expires,
``node.auth`` refuses every caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from corridor.db import make_engine, make_session_factory
from corridor.keystore import load_signing_key
from crypto.trustlist import TrustListRejected
from node.agreement_sync import sync_agreements
from node.agreements import SyncReport
from node.oauth_client import TokenError
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


def exchange_agreements(settings: NodeSettings, client: RegistryClient) -> SyncReport | None:
    """One push-and-pull of agreements; None if it could not run (logged)."""
    trust_list = TrustStore(settings.directory).current()
    if trust_list is None or trust_list.is_expired(datetime.now(UTC)) \
            or trust_list.member(settings.member_id) is None:
        return None
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            report = sync_agreements(session, client, trust_list, datetime.now(UTC))
    except (RegistryError, TokenError) as e:
        log.warning("agreement exchange failed (will retry): %s", e)
        return None
    finally:
        engine.dispose()
    for agreement_id in report.new_requests:
        log.info("new request %s", agreement_id)
    for problem in report.problems:
        log.warning("agreement exchange: %s", problem)
    return report


def start_refresher(settings: NodeSettings) -> threading.Event | None:
    """Start the background refresher if the node has a registry; return its stop event."""
    if not settings.registry_url or (settings.sync_interval <= 0
                                     and settings.request_poll_interval <= 0):
        return None
    stop = threading.Event()
    client = RegistryClient(settings.registry_url, member_id=settings.member_id,
                            key=load_signing_key(settings.keys_dir),
                            http=httpx.Client(timeout=30), clock=lambda: datetime.now(UTC))

    tick = min(i for i in (settings.sync_interval, settings.request_poll_interval) if i > 0)

    def run() -> None:
        last_refresh = float("-inf")
        while True:
            if settings.sync_interval > 0 and \
                    time.monotonic() - last_refresh >= settings.sync_interval:
                refresh_once(settings, client, lambda: datetime.now(UTC))
                last_refresh = time.monotonic()
            if settings.request_poll_interval > 0:
                exchange_agreements(settings, client)
            if stop.wait(tick):
                return

    threading.Thread(target=run, name="trust-list-refresher", daemon=True).start()
    return stop
