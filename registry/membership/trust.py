"""Publishing the trust list: a new signed version on every membership or key change."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto.keys import KeySet, SigningKey
from crypto.trustlist import MemberEntry, sign_trust_list
from registry.log.exchange_log import LOG
from registry.membership.members import active_keys
from registry.models import MEMBER_ACTIVE, Member, TrustListVersion


def publish_trust_list(session: Session, *, key: SigningKey, registry_url: str,
                       ttl: int, now: datetime, reason: str) -> TrustListVersion:
    """Sign the next version from the current members and keys, and store it.

    Call inside the transaction that made the change, so the change and the
    list that announces it commit together. Logs ``trustlist.published``
    (``version``, ``sha256``: hex SHA-256 of the signed list's compact JWS,
    ``members``: how many members it lists) in the same transaction.
    """
    members = [
        MemberEntry(m.member_id, m.name, m.country, m.node_url,
                    active_keys(session, m.member_id))
        for m in session.scalars(select(Member).where(Member.status == MEMBER_ACTIVE)
                                 .order_by(Member.member_id))
    ]
    latest = session.scalar(select(func.max(TrustListVersion.version))) or 0
    expires = now + timedelta(seconds=ttl)
    jws = sign_trust_list(version=latest + 1, issued_at=now, expires_at=expires,
                          registry_url=registry_url, registry_keys=KeySet([key.public_key]),
                          members=members, key=key)
    # Logged before the row is written: every writer then takes the log's head lock
    # before inserting a version, so two publishers of one version queue on the lock
    # (the second fails on the version's key) instead of deadlocking.
    LOG.append(session, "trustlist.published", now, version=latest + 1,
               sha256=hashlib.sha256(jws.encode("ascii")).hexdigest(), members=len(members))
    row = TrustListVersion(version=latest + 1, issued_at=now, expires_at=expires, jws=jws,
                           reason=reason)
    session.add(row)
    session.flush()
    return row


def current_trust_list(session: Session, *, key: SigningKey, registry_url: str, ttl: int,
                       now: datetime) -> TrustListVersion:
    """The newest trust list, re-signed as a new version when it is past half its life.

    Re-issuing early keeps nodes that sync regularly from ever holding an
    expired list while the registry is up.
    """
    row = session.scalars(select(TrustListVersion).order_by(
        TrustListVersion.version.desc()).limit(1)).first()
    if row is None or now >= row.issued_at + (row.expires_at - row.issued_at) / 2:
        row = publish_trust_list(session, key=key, registry_url=registry_url, ttl=ttl, now=now,
                                 reason="refresh" if row else "first list")
        session.commit()
    return row
