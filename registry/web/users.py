"""The people who sign in to the registry's audit pages and API: local accounts, one role each.

Roles:

``auditor``
    Reads the registry's exchange log, its proofs and the witness evidence.
``admin``
    Runs the registry; reads everything an auditor reads.

The registry's pages change nothing: members are admitted on the CLI.
Passwords are stored as scrypt hashes only (:mod:`corridor.users`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from corridor.users import MIN_PASSWORD_LENGTH, Accounts, UserError
from registry.models import LoginFailure, User, WebSession

__all__ = [
    "ACCOUNTS",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "UserError",
    "add_user",
]

ROLES = ("auditor", "admin")
#: The registry's accounts (the ``users`` table).
ACCOUNTS = Accounts(User, ROLES, failures=LoginFailure, sessions=WebSession)


def add_user(session: Session, username: str, password: str, role: str, *,
             now: datetime) -> User:
    """Create an account (the caller commits).

    :raises UserError: bad username or role, a password that is too short or
        too long, or the username is taken.
    """
    user: User = ACCOUNTS.add(session, username, password, role, now=now)
    return user
