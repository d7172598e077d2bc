"""Keeps the node's trust list and agreements fresh while it serves (DESIGN.md §5, §6).

A daemon thread refreshes the trust list every ``sync_interval`` seconds and,
every ``request_poll_interval`` seconds, pushes the owner's decisions and
pulls new requests (nodes only connect outward). Every
``checkpoint_interval`` seconds, if the exchange log grew, it signs a
checkpoint and sends it to the registry to witness (DESIGN.md §10). Failures
are logged and the node keeps serving from its stored copies; once the trust
list expires, ``node.exchange.auth`` refuses every caller. A task that fails
in a way nobody foresaw is logged with its traceback and tried again at its
next turn: the thread never dies, or its worker would stop refreshing for good.
Under several workers exactly one does this work (:mod:`corridor.lease`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from sqlalchemy.exc import SQLAlchemyError

from corridor.db import make_engine, make_session_factory
from corridor.keystore import KeystoreError, load_signing_key
from corridor.lease import Lease
from crypto.trustlist import TrustListRejected
from node.exchange.agreement_sync import sync_agreements
from node.exchange.agreements import SyncReport
from node.exchange.oauth_client import TokenError
from node.exchange.registry_client import RegistryClient, RegistryError
from node.exchange.trust_store import TrustStore
from node.log.witness import COSIGNED, REFUSED, UNAVAILABLE, WitnessResult, checkpoint_and_submit
from node.settings import NodeSettings

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
    except SQLAlchemyError as e:  # e.g. another worker stored the same event first
        log.warning("agreement exchange failed in the database (will retry): %s", e)
        return None
    finally:
        engine.dispose()
    for agreement_id in report.new_requests:
        log.info("new request %s", agreement_id)
    for problem in report.problems:
        log.warning("agreement exchange: %s", problem)
    return report


def checkpoint_once(settings: NodeSettings, client: RegistryClient) -> WitnessResult | None:
    """Checkpoint the log if it grew and have the registry witness it; None if it failed."""
    trust_list = TrustStore(settings.directory).current()
    current = datetime.now(UTC)
    if trust_list is not None and trust_list.is_expired(current):
        trust_list = None  # still signed here; witnessed once the trust list is fresh again
    engine = make_engine(settings.database_url)
    try:
        result = checkpoint_and_submit(settings, client, make_session_factory(engine),
                                       trust_list, current, only_if_grown=True)
    except (SQLAlchemyError, KeystoreError) as e:
        log.warning("log checkpoint failed (will retry): %s", e)
        return None
    finally:
        engine.dispose()
    if result.outcome in (REFUSED, UNAVAILABLE):
        log.warning("checkpoint of %s entries not witnessed: %s", result.size, result.detail)
    elif result.outcome == COSIGNED and result.detail is None:
        log.info("checkpoint of %s entries cosigned by the registry", result.size)
    return result


def survive(task: str, step: Callable[[], object]) -> None:
    """Run one task of the refresher; log anything it raises and return."""
    try:
        step()
    except Exception:
        log.exception("%s failed unexpectedly (will retry at its next turn)", task)


def start_refresher(settings: NodeSettings) -> threading.Event | None:
    """Start the background refresher if the node has a registry; return its stop event.

    Every gunicorn worker starts one, but only the holder of the node's
    :class:`~corridor.lease.Lease` works: the others wait for it at each turn
    and take over if its process dies.
    """
    intervals = [i for i in (settings.sync_interval, settings.request_poll_interval,
                             settings.checkpoint_interval) if i > 0]
    if not settings.registry_url or not intervals:
        return None
    stop = threading.Event()
    client = RegistryClient(settings.registry_url, member_id=settings.member_id,
                            key=load_signing_key(settings.keys_dir),
                            http=httpx.Client(timeout=30), clock=lambda: datetime.now(UTC))

    tick = min(intervals)
    lease = Lease("node-background", settings.directory, settings.database_url)

    def due(last: float, interval: int) -> bool:
        return interval > 0 and time.monotonic() - last >= interval

    def run() -> None:
        last_refresh = last_exchange = last_checkpoint = float("-inf")
        while True:
            if not lease.held():
                if stop.wait(tick):
                    return
                continue
            if due(last_refresh, settings.sync_interval):
                survive("trust list refresh",
                        lambda: refresh_once(settings, client, lambda: datetime.now(UTC)))
                last_refresh = time.monotonic()
            if due(last_exchange, settings.request_poll_interval):
                survive("agreement exchange", lambda: exchange_agreements(settings, client))
                last_exchange = time.monotonic()
            if due(last_checkpoint, settings.checkpoint_interval):
                survive("log checkpoint", lambda: checkpoint_once(settings, client))
                last_checkpoint = time.monotonic()
            if stop.wait(tick):
                lease.release()
                return

    threading.Thread(target=run, name="trust-list-refresher", daemon=True).start()
    return stop
