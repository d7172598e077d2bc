"""Sign-ins that hold against guessing, and sessions the server can end.

**Failed logins** are counted in the service's database per account and per
client address, on the web form and on the auditors' HTTP Basic alike. After
:data:`ACCOUNT_THRESHOLD` failures in a row for one account (or
:data:`ADDRESS_THRESHOLD` from one address, whatever the names tried) that
account or address is locked for :data:`FIRST_LOCKOUT`, doubling with every
further failure up to :data:`MAX_LOCKOUT`. While locked, no password is
checked at all (a guess during a lockout learns nothing, and costs no scrypt
hash); the caller answers 429 with ``Retry-After``. A successful sign-in
clears the account's count. A count with no failure and no lockout for
:data:`FORGET_AFTER` (measured from the end of the last lockout, so a capped
lockout does not reset the count) starts again.

Concurrent guesses are counted one after the other: :meth:`LoginGuard.hold`
creates the account's and address's rows if missing (``INSERT ... ON
CONFLICT DO NOTHING``) and locks them (``SELECT ... FOR UPDATE``) before the
password is checked, until the caller commits. Forty parallel guesses thus
check at most :data:`ACCOUNT_THRESHOLD` passwords, and none fails on a
duplicate key. (SQLite serializes writers anyway.)

**Sessions** live on the server: the cookie carries only a random id
(:func:`secrets.token_urlsafe`, 256 bits) and the table holds its SHA-256,
so a database reader cannot replay sessions. Signing out deletes the row,
and a copied cookie stops working at once; removing an account deletes its
sessions.

Each service maps both tables through its own classes (the columns of
:class:`LoginFailureColumns` and :class:`WebSessionColumns`), like
:class:`corridor.users.Accounts`. The caller commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from corridor.db import UTCDateTime
from corridor.errors import TooManyRequests

__all__ = [
    "ACCOUNT_THRESHOLD",
    "ADDRESS_THRESHOLD",
    "FIRST_LOCKOUT",
    "FORGET_AFTER",
    "MAX_LOCKOUT",
    "SESSION_LIFETIME",
    "LockedOut",
    "Lockout",
    "LoginFailureColumns",
    "LoginGuard",
    "WebSessionColumns",
    "WebSessions",
]

#: Failures in a row for one account before it is locked.
ACCOUNT_THRESHOLD = 5
#: Failures from one client address (any usernames) before it is locked.
ADDRESS_THRESHOLD = 20
FIRST_LOCKOUT = timedelta(minutes=1)
MAX_LOCKOUT = timedelta(hours=1)
#: A count with no failure for this long (and no lockout running) starts again.
FORGET_AFTER = timedelta(hours=1)
#: How long a web session lasts without signing in again.
SESSION_LIFETIME = timedelta(hours=12)
_KEY_LENGTH = 128


class LoginFailureColumns:
    """Columns of a service's failed-login table: one row per account or address."""

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # account | address
    key: Mapped[str] = mapped_column(String(_KEY_LENGTH), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSessionColumns:
    """Columns of a service's session table (the id itself is never stored)."""

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LockedOut(TooManyRequests):
    """A sign-in refused without checking the password: a lockout is in force."""

    title = "Signing in is locked"

    def __init__(self, lockout: Lockout) -> None:
        super().__init__(lockout.kind)
        self.lockout = lockout


@dataclass(frozen=True)
class Lockout:
    """A lockout in force: who (``account`` or ``address``) and until when."""

    kind: str
    until: datetime

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the lockout ends (at least 1), for ``Retry-After``."""
        return max(1, int((self.until - now).total_seconds() + 0.999))

    def message(self, now: datetime) -> str:
        """What the person is told."""
        whom = "this account" if self.kind == "account" else "your address"
        minutes = -(-self.retry_after(now) // 60)
        return (f"Too many wrong passwords for {whom}: sign-in is locked for "
                f"{minutes} more minute{'s' if minutes != 1 else ''} "
                f"(until {self.until:%H:%M:%S} UTC). Ask an administrator if you forgot "
                "the password.")


class LoginGuard:
    """Counts failed sign-ins of one service and locks out the guessers (module docstring)."""

    def __init__(self, model: Any) -> None:
        """Use ``model``, the service's mapped class with :class:`LoginFailureColumns`."""
        self.model = model

    def _keys(self, username: str, address: str | None) -> list[tuple[str, str, int]]:
        keys = [("account", username.strip().lower()[:_KEY_LENGTH], ACCOUNT_THRESHOLD)]
        if address:
            keys.append(("address", address[:_KEY_LENGTH], ADDRESS_THRESHOLD))
        return keys

    def hold(self, session: Session, username: str, address: str | None,
             now: datetime) -> Lockout | None:
        """Lock this attempt's counters until the caller commits; the lockout in force, if any.

        Call before checking the password, so that a concurrent attempt on
        the same account or address waits and then sees this one's count.
        """
        rows = self._lock_rows(session, [(kind, key) for kind, key, _ in
                                         self._keys(username, address)], now)
        found = [Lockout(row.kind, row.locked_until) for row in rows
                 if row.locked_until is not None and row.locked_until > now]
        return max(found, key=lambda lock: lock.until, default=None)

    def failed(self, session: Session, username: str, address: str | None,
               now: datetime) -> Lockout | None:
        """Count one failed sign-in; return the lockout it starts or extends, if any."""
        started: list[Lockout] = []
        for kind, key, threshold in self._keys(username, address):
            row = session.get(self.model, (kind, key))
            if row is None:
                row = self.model(kind=kind, key=key, failures=0, last_failure_at=now,
                                 locked_until=None)
                session.add(row)
            elif _forgotten(row, now):
                row.failures, row.locked_until = 0, None
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= threshold:
                lockout = min(FIRST_LOCKOUT * 2 ** min(row.failures - threshold, 16),
                              MAX_LOCKOUT)
                row.locked_until = now + lockout
                started.append(Lockout(kind, row.locked_until))
        # Forget what no longer counts, so guessing random names cannot grow the table.
        m, horizon = self.model, now - FORGET_AFTER
        session.execute(delete(m).where(m.last_failure_at < horizon,
                                        (m.locked_until.is_(None)) | (m.locked_until < horizon)))
        session.flush()
        return max(started, key=lambda lock: lock.until, default=None)

    def succeeded(self, session: Session, username: str, address: str | None) -> None:
        """Clear the account's count after a successful sign-in, and rows that count nothing."""
        m = self.model
        account = ("account", username.strip().lower()[:_KEY_LENGTH])
        held = [(kind, key) for kind, key, _ in self._keys(username, address)]
        session.execute(delete(m).where(
            (tuple_(m.kind, m.key) == account)
            | (tuple_(m.kind, m.key).in_(held) & (m.failures == 0))))
        session.flush()

    def _lock_rows(self, session: Session, keys: list[tuple[str, str]],
                   now: datetime) -> list[Any]:
        """The counter rows of ``keys``, created if missing and locked until the commit."""
        m = self.model
        _insert_missing(session, m, [{"kind": kind, "key": key, "failures": 0,
                                      "last_failure_at": now, "locked_until": None}
                                     for kind, key in keys])
        return list(session.scalars(
            select(m).where(tuple_(m.kind, m.key).in_(keys))
            .with_for_update().execution_options(populate_existing=True)))

    def throttle(self, session: Session, kind: str, key: str, *, limit: int,
                 window: timedelta, now: datetime) -> Lockout | None:
        """Count one request of ``kind`` (at most 8 characters) from ``key``, e.g. an address.

        Each key gets ``limit`` requests per ``window`` (the window opens at
        the first); over it, the :class:`Lockout` until the window ends. For
        requests anyone may send that leave something behind (a join request).
        Same table and row locking as the sign-in counts; the caller commits,
        also when it then refuses.
        """
        [row] = self._lock_rows(session, [(kind, key[:_KEY_LENGTH])], now)
        if row.locked_until is None or row.locked_until <= now:  # a new window opens
            row.failures, row.locked_until = 0, now + window
        row.failures += 1
        row.last_failure_at = now
        session.flush()
        return Lockout(kind, row.locked_until) if row.failures > limit else None

    def unlock(self, session: Session, username: str | None = None,
               address: str | None = None) -> int:
        """Clear the count and lockout of an account and/or an address; how many were cleared.

        The administrator's way out when a guesser keeps a known account locked.
        """
        m, keys = self.model, []
        if username is not None:
            keys.append(("account", username.strip().lower()[:_KEY_LENGTH]))
        if address is not None:
            keys.append(("address", address[:_KEY_LENGTH]))
        if not keys:
            return 0
        cleared = session.execute(delete(m).where(tuple_(m.kind, m.key).in_(keys)))
        session.flush()
        return int(getattr(cleared, "rowcount", 0) or 0)


def _forgotten(row: Any, now: datetime) -> bool:
    """No failure and no lockout for :data:`FORGET_AFTER`: the count starts again."""
    quiet_since: datetime = max(row.last_failure_at, row.locked_until or row.last_failure_at)
    return quiet_since + FORGET_AFTER < now


def _insert_missing(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose keys are not there yet, without a duplicate-key error."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(pg_insert(model).values(rows).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(model).values(rows).on_conflict_do_nothing())
    else:  # pragma: no cover - Corridor runs on SQLite and PostgreSQL only
        raise NotImplementedError(f"login counters on {dialect}")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class WebSessions:
    """Server-side sessions of one service's pages (module docstring)."""

    def __init__(self, model: Any, lifetime: timedelta = SESSION_LIFETIME) -> None:
        """Use ``model``, the service's mapped class with :class:`WebSessionColumns`."""
        self.model, self.lifetime = model, lifetime

    def start(self, session: Session, username: str, now: datetime) -> str:
        """A new session for ``username``; returns the id to put in the cookie."""
        session_id = secrets.token_urlsafe(32)
        session.add(self.model(id_sha256=_digest(session_id), username=username,
                               created_at=now, expires_at=now + self.lifetime))
        session.flush()
        return session_id

    def username(self, session: Session, session_id: Any, now: datetime) -> str | None:
        """Whose session ``session_id`` is, or None if it ended, expired or never was."""
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 128:
            return None
        row = session.get(self.model, _digest(session_id))
        if row is None or row.expires_at <= now:
            return None
        return str(row.username)

    def end(self, session: Session, session_id: Any) -> None:
        """End one session (sign-out): its cookie stops working at once."""
        if isinstance(session_id, str) and session_id:
            session.execute(delete(self.model).where(
                self.model.id_sha256 == _digest(session_id)))

    def end_all(self, session: Session, username: str, now: datetime | None = None) -> int:
        """End every session of ``username`` (an account removed); return how many.

        With ``now``, expired sessions of everyone are swept as well.
        """
        ended = len(list(session.scalars(select(self.model.id_sha256).where(
            self.model.username == username))))
        session.execute(delete(self.model).where(self.model.username == username))
        if now is not None:
            session.execute(delete(self.model).where(self.model.expires_at <= now))
        return ended
