"""Exchanging agreements with the registry: file requests, push decisions, pull news.

Nodes connect outward only (DESIGN.md §6): a provider learns of requests by
pulling them, and its decisions reach the requester through the registry.
Every function here commits what it verified, one agreement at a time, so a
failure halfway loses nothing already exchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from corridor.keystore import public_keys
from crypto.keys import SigningKey
from crypto.trustlist import TrustList
from node.exchange.agreements import (
    STORE,
    SyncReport,
    keys_from,
    log_agreement_events,
    new_agreement_id,
    pending_push,
    store_view,
    unpushed,
)
from node.exchange.oauth_client import TokenError
from node.exchange.registry_client import RegistryClient, RegistryError, RegistryUnreachable
from node.models import Agreement as AgreementRow
from policies.agreement_terms import load_agreement_terms
from policies.agreements import PROVIDER, REQUESTED, REQUESTER, AgreementError, extend, next_event
from policies.errors import PolicyError

log = logging.getLogger(__name__)


def file_request(session: Session, client: RegistryClient, *, key: SigningKey, keys_dir: Path,
                 terms: Mapping[str, Any], justification: str, now: datetime) -> AgreementRow:
    """Sign a request, file it at the registry and keep this node's copy.

    :raises PolicyError: the terms are malformed.
    :raises RegistryError: the registry refused it (unknown dataset, purpose,
        tier or duration the provider does not allow), with its reason.
    """
    load_agreement_terms(terms)
    me = client.member_id
    event = next_event(None, action="request", actor=me, role=REQUESTER, at=now, key=key,
                       terms=dict(terms), reason=justification or None,
                       agreement_id=new_agreement_id(me))
    client.file_request(event.jws)
    agreement = extend(None, [event.jws], keys_for=lambda m: public_keys(keys_dir))
    assert agreement is not None
    row: AgreementRow = STORE.save(session, agreement, now, role=REQUESTER, pushed=1)
    log_agreement_events(session, agreement, 0, me=me, now=now)
    session.commit()
    return row


def push(session: Session, client: RegistryClient, row: AgreementRow) -> bool:
    """Send this node's unpushed events of one agreement; False if the registry is unreachable.

    :raises RegistryError: the registry refused them (the reason says why).
    """
    events = unpushed(session, row)
    if not events:
        return True
    try:
        client.push_events(row.id, events)
    except (RegistryUnreachable, TokenError) as e:
        log.warning("agreement %s: events kept for the next sync (%s)", row.id, e)
        return False
    row.pushed = row.events
    session.commit()
    return True


def sync_agreements(session: Session, client: RegistryClient, trust_list: TrustList,
                    now: datetime) -> SyncReport:
    """Push what this node decided, then pull every agreement it is a party to.

    :raises RegistryUnreachable: the registry cannot be reached at all.
    """
    report = SyncReport()
    me = client.member_id
    for row in pending_push(session, me):
        count = row.events - row.pushed
        try:
            if push(session, client, row):
                report.pushed += count
        except RegistryError as e:
            report.problems.append(f"{row.id}: the registry refused this node's events ({e})")
    keys_for = keys_from(trust_list)
    for view in client.agreements():
        agreement_id = str(view.get("id", ""))
        try:
            before = STORE.get(session, agreement_id)
            row, changed = store_view(session, view, me=me, keys_for=keys_for, now=now)
            session.commit()
        except (AgreementError, PolicyError) as e:
            session.rollback()
            report.problems.append(f"{agreement_id[:80]}: not stored ({e})")
            continue
        if before is None and row.role == PROVIDER and row.state == REQUESTED:
            report.new_requests.append(row.id)
        elif changed:
            report.updated.append(row.id)
    return report


def refresh_one(session: Session, client: RegistryClient, trust_list: TrustList,
                agreement_id: str, now: datetime) -> AgreementRow:
    """Fetch one agreement from the registry and merge it (for ``request show``).

    :raises RegistryError: the registry does not know it (or not for us).
    :raises AgreementError: its history does not verify or contradicts ours.
    """
    view = client.agreement(agreement_id)
    row, _ = store_view(session, view, me=client.member_id, keys_for=keys_from(trust_list),
                        now=now)
    session.commit()
    return row
