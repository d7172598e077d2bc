"""Local accounts of a service's web pages and audit API: usernames, roles, scrypt hashes.

Node and registry keep their accounts in a table of their own (the node's
``users``, the registry's ``users``); :class:`Accounts` reads and writes it
through the service's mapped class, like :class:`corridor.tlog.TransparencyLog`.
A service chooses its roles; ``auditor`` and ``admin`` may read the exchange
log everywhere (:data:`AUDIT_ROLES`).

Passwords are stored as werkzeug scrypt hashes only. Checking one recomputes
the hash with the stored salt and compares the two with
:func:`hmac.compare_digest` (constant time), and an unknown username costs
the same hash as a wrong password, so timing tells nothing about which
usernames exist.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from corridor.db import UTCDateTime
from corridor.errors import BadRequest
from corridor.login_guard import LockedOut, LoginGuard, WebSessions
from corridor.tlog import TransparencyLog

__all__ = [
    "AUDIT_ROLES",
    "MAX_PASSWORD_LENGTH",
    "MAX_USERNAME_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "SESSION_ID",
    "AccountColumns",
    "Accounts",
    "UserError",
    "check_password",
    "hash_password",
]

#: Roles that may read the exchange log, its proofs and checkpoints (DESIGN.md §10).
AUDIT_ROLES = frozenset({"auditor", "admin"})
MIN_PASSWORD_LENGTH = 12
#: Longer passwords are refused outright, so a login cannot make scrypt hash megabytes.
MAX_PASSWORD_LENGTH = 1024
MAX_USERNAME_LENGTH = 64
#: Key of the server-side session id in the Flask session cookie of both services' pages.
SESSION_ID = "sid"
_log = logging.getLogger(__name__)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_HASH_METHOD = "scrypt"


class UserError(BadRequest, ValueError):
    """A user cannot be added or changed (the message says why)."""

    title = "Account refused"


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` (werkzeug's ``method$salt$hash`` text)."""
    return generate_password_hash(password, method=_HASH_METHOD)


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (compared in constant time)."""
    return check_password_hash(stored, password)


@cache
def _dummy_hash() -> str:
    return hash_password("corridor-no-such-user")


class AccountColumns:
    """Columns of a service's account table (one role per account)."""

    username: Mapped[str] = mapped_column(String(MAX_USERNAME_LENGTH), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Accounts:
    """One service's accounts, read and written through its mapped class.

    The model needs the columns of :class:`AccountColumns`; it is typed
    ``Any`` because each service has its own class.
    """

    def __init__(self, model: Any, roles: tuple[str, ...], *, failures: Any,
                 sessions: Any) -> None:
        """Use ``model`` (the service's account class) with the roles it allows.

        ``failures`` and ``sessions`` are the service's mapped classes of
        failed sign-ins and web sessions (:mod:`corridor.login_guard`).
        """
        self.model, self.roles = model, roles
        self.guard = LoginGuard(failures)
        self.sessions = WebSessions(sessions)

    def add(self, session: Session, username: str, password: str, role: str, *,
            now: datetime) -> Any:
        """Create an account (the caller commits).

        :raises UserError: bad username or role, a password that is too short or
            too long, or the username is taken.
        """
        if not _USERNAME.fullmatch(username):
            raise UserError(f"{username[:80]!r} is not a valid username: 1-64 lower-case "
                            "letters, digits, '.', '_', '@' or '-', starting with a letter "
                            "or digit")
        if role not in self.roles:
            raise UserError(f"unknown role {role[:40]!r}; choose one of " + ", ".join(self.roles))
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters "
                            "long")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise UserError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters "
                            "long")
        if session.get(self.model, username) is not None:
            raise UserError(f"user {username} already exists")
        user = self.model(username=username, role=role, created_at=now, last_login_at=None,
                          password_hash=hash_password(password))
        session.add(user)
        session.flush()
        return user

    def verify(self, session: Session, username: str, password: str) -> Any | None:
        """The account with these credentials, or ``None``; changes nothing.

        For HTTP Basic on every API call: unlike :meth:`authenticate` it writes
        no sign-in time.
        """
        if len(password) > MAX_PASSWORD_LENGTH or len(username) > MAX_USERNAME_LENGTH:
            return None
        user = session.get(self.model, username)
        if user is None:
            check_password(_dummy_hash(), password)
            return None
        return user if check_password(user.password_hash, password) else None

    def authenticate(self, session: Session, username: str, password: str, *,
                     now: datetime) -> Any | None:
        """The account with these credentials (its last login set to ``now``), or ``None``."""
        user = self.verify(session, username, password)
        if user is not None:
            user.last_login_at = now
        return user

    def sign_in(self, session: Session, log: TransparencyLog, username: str, password: str,
                *, address: str | None, channel: str, now: datetime,
                record_login: bool) -> Any | None:
        """The account of these credentials, or ``None``, guarded against guessing.

        The one path of the sign-in page (``channel`` ``page``, which sets
        the account's last login: ``record_login``) and of HTTP Basic
        (``basic``). While the account or ``address`` is locked out no
        password is checked. A wrong password is counted; it goes to the
        server log, and a lockout it starts to the exchange ``log`` as
        ``user.login_locked``, in the caller's transaction (the caller
        commits, also after a refusal). Neither ever holds the password, and
        the username only if such an account exists (a password typed into
        the name field must not end up on the record).

        :raises LockedOut: a lockout is in force, or this failure started one.
        """
        lockout = self.guard.hold(session, username, address, now)
        if lockout is not None:
            raise LockedOut(lockout)
        user = (self.authenticate(session, username, password, now=now) if record_login
                else self.verify(session, username, password))
        if user is not None:
            self.guard.succeeded(session, user.username, address)
            return user
        name = username if self.get(session, username) is not None else None
        lockout = self.guard.failed(session, username, address, now)
        _log.warning("failed sign-in over %s for %s from %s", channel,
                     repr(name) if name else "an unknown account", address)
        if lockout is None:
            return None
        log.append(session, "user.login_locked", now, username=name, address=address,
                   locked=lockout.kind, until=lockout.until.isoformat(), channel=channel)
        raise LockedOut(lockout)

    def get(self, session: Session, username: str) -> Any | None:
        """The account named ``username``, if it (still) exists."""
        return session.get(self.model, username) if len(username) <= MAX_USERNAME_LENGTH else None

    def all(self, session: Session) -> list[Any]:
        """Every account, by username."""
        return list(session.scalars(select(self.model).order_by(self.model.username)))

    def remove(self, session: Session, username: str) -> None:
        """Delete an account and end its sessions (the caller commits).

        :raises UserError: no such user.
        """
        user = self.get(session, username)
        if user is None:
            raise UserError(f"no user {username[:80]}")
        self.sessions.end_all(session, username)
        session.delete(user)
        session.flush()
