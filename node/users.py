"""The people who sign in to the node's web pages: local accounts with one role each.

Roles:

``owner``
    The data owner: decides requests and revokes agreements.
``admin``
    Runs the node; may do everything an owner may.
``auditor``
    Sees every page but changes nothing.

Passwords are stored as werkzeug scrypt hashes only.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from node.models import User

__all__ = [
    "DECIDING_ROLES",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "UserError",
    "add_user",
    "authenticate",
    "can_decide",
    "get_user",
    "list_users",
    "remove_user",
]

ROLES = ("owner", "auditor", "admin")
#: Roles that may sign decisions (approve, narrow, refuse, revoke, accept, withdraw).
DECIDING_ROLES = frozenset({"owner", "admin"})
MIN_PASSWORD_LENGTH = 12
#: Longer passwords are refused outright, so a login cannot make scrypt hash megabytes.
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_HASH_METHOD = "scrypt"


class UserError(ValueError):
    """A user cannot be added or changed (the message says why)."""


def add_user(session: Session, username: str, password: str, role: str, *,
             now: datetime) -> User:
    """Create an account (the caller commits).

    :raises UserError: bad username or role, a password that is too short or
        too long, or the username is taken.
    """
    if not _USERNAME.fullmatch(username):
        raise UserError(f"{username[:80]!r} is not a valid username: 1-64 lower-case letters, "
                        "digits, '.', '_', '@' or '-', starting with a letter or digit")
    if role not in ROLES:
        raise UserError(f"unknown role {role[:40]!r}; choose one of " + ", ".join(ROLES))
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    if session.get(User, username) is not None:
        raise UserError(f"user {username} already exists")
    user = User(username=username, role=role, created_at=now, last_login_at=None,
                password_hash=generate_password_hash(password, method=_HASH_METHOD))
    session.add(user)
    session.flush()
    return user


@cache
def _dummy_hash() -> str:
    return generate_password_hash("corridor-no-such-user", method=_HASH_METHOD)


def authenticate(session: Session, username: str, password: str, *,
                 now: datetime) -> User | None:
    """The user with these credentials (its last login set to ``now``), or ``None``.

    An unknown username costs the same hash as a wrong password, so the
    response time does not tell which usernames exist.
    """
    if len(password) > MAX_PASSWORD_LENGTH or len(username) > 64:
        return None
    user = session.get(User, username)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = now
    return user


def get_user(session: Session, username: str) -> User | None:
    """The account named ``username``, if it (still) exists."""
    return session.get(User, username) if len(username) <= 64 else None


def list_users(session: Session) -> list[User]:
    """Every account, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def remove_user(session: Session, username: str) -> None:
    """Delete an account (the caller commits); its sessions end at their next request.

    :raises UserError: no such user.
    """
    user = get_user(session, username)
    if user is None:
        raise UserError(f"no user {username[:80]}")
    session.delete(user)
    session.flush()


def can_decide(user: User) -> bool:
    """Whether ``user`` may sign decisions (auditors may only look)."""
    return user.role in DECIDING_ROLES
