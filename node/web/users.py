"""The people who sign in to the node's web pages: local accounts with one role each.

Roles:

``owner``
    The data owner: decides requests and revokes agreements.
``admin``
    Runs the node; may do everything an owner may, and read the exchange log.
``auditor``
    Sees every page and the exchange log but changes nothing.

Passwords are stored as scrypt hashes only (:mod:`corridor.users`, shared
with the registry's accounts).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from corridor.users import (
    AUDIT_ROLES,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    Accounts,
    UserError,
)
from node.models import LoginFailure, User, WebSession

__all__ = [
    "ACCOUNTS",
    "AUDIT_ROLES",
    "DECIDING_ROLES",
    "LOG_READERS",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "UserError",
    "add_user",
    "authenticate",
    "can_decide",
    "can_read_log",
    "remove_user",
]

ROLES = ("owner", "auditor", "admin")
#: Roles that may sign decisions (approve, narrow, refuse, revoke, accept, withdraw).
DECIDING_ROLES = frozenset({"owner", "admin"})
#: The node's accounts (the ``users`` table).
ACCOUNTS = Accounts(User, ROLES, failures=LoginFailure, sessions=WebSession)


def add_user(session: Session, username: str, password: str, role: str, *,
             now: datetime) -> User:
    """Create an account (the caller commits).

    :raises UserError: bad username or role, a password that is too short or
        too long, or the username is taken.
    """
    user: User = ACCOUNTS.add(session, username, password, role, now=now)
    return user


def authenticate(session: Session, username: str, password: str, *,
                 now: datetime) -> User | None:
    """The user with these credentials (its last login set to ``now``), or ``None``.

    An unknown username costs the same hash as a wrong password, so the
    response time does not tell which usernames exist.
    """
    user: User | None = ACCOUNTS.authenticate(session, username, password, now=now)
    return user


def remove_user(session: Session, username: str) -> None:
    """Delete an account (the caller commits); its sessions end at their next request.

    :raises UserError: no such user.
    """
    ACCOUNTS.remove(session, username)


def can_decide(user: User) -> bool:
    """Whether ``user`` may sign decisions (auditors may only look)."""
    return user.role in DECIDING_ROLES


#: Roles that may read the node's exchange log page: auditors and admins in full, the
#: node's data owners without token ids and cursors.
LOG_READERS = frozenset({"owner"}) | AUDIT_ROLES


def can_read_log(user: User) -> bool:
    """Whether ``user`` may open the exchange log page (owners too, with fewer fields)."""
    return user.role in LOG_READERS
