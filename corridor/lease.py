"""Which process runs a service's background work, when several serve it.

gunicorn starts several workers from one ``wsgi`` module, and each would
start its own checkpointer or refresher: two checkpointers race, one
checkpoint is cosigned and the other stored as a witness problem. A
:class:`Lease` lets exactly one of them work. Every worker keeps its
background thread and asks :meth:`Lease.held` at each turn; only the holder
does the work, and when it dies the kernel or the database frees the lease,
so a surviving worker takes over at its next turn.

The lease is two locks, both taken without waiting:

* an exclusive ``flock`` on ``DIR/run/NAME.lock``: the processes that share
  a service directory on one machine (the gunicorn workers);
* on PostgreSQL, also a session-level advisory lock on a connection of its
  own, keyed by the name, the database and the schema: replicas on other
  machines that share the database (Kubernetes).

Both are released when the process ends, however it ends (``kill -9``
included): a lock file left behind holds no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

__all__ = ["Lease"]

log = logging.getLogger(__name__)


class Lease:
    """An exclusive right to run one service's background work, tried without waiting."""

    def __init__(self, name: str, directory: Path, database_url: str) -> None:
        """A lease named ``name`` for the service in ``directory`` on ``database_url``."""
        self.name = name
        self.path = directory / "run" / f"{name}.lock"
        self._database_url = database_url
        self._file: IO[bytes] | None = None
        self._engine: sa.Engine | None = None
        self._connection: sa.Connection | None = None
        self._guard = threading.Lock()

    def held(self) -> bool:
        """Whether this process holds the lease now, taking it if it is free."""
        with self._guard:
            try:
                if self._file is None and not self._take_file():
                    return False
            except OSError as e:
                # A lock file that cannot be made (read-only or foreign-owned directory):
                # no lease, said once per turn, and the worker keeps serving.
                log.warning("%s: cannot take the lock file %s (%s)", self.name, self.path,
                            e.strerror)
                return False
            return not self._database_url.startswith("postgresql") or self._hold_advisory()

    def release(self) -> None:
        """Give the lease up (another process may take it at its next turn)."""
        with self._guard:
            self._drop_advisory()
            if self._file is not None:
                self._file.close()  # closing the descriptor releases the flock
                self._file = None

    def _take_file(self) -> bool:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = open(self.path, "ab")  # noqa: SIM115 - held open for as long as the lease
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        os.chmod(self.path, 0o600)
        self._file = handle
        log.info("%s: this process (pid %d) runs the background work", self.name, os.getpid())
        return True

    def _hold_advisory(self) -> bool:
        """Take the advisory lock, or check the connection holding it is still alive."""
        try:
            if self._connection is not None:
                self._connection.execute(sa.text("SELECT 1"))
                return True
            if self._engine is None:
                # No pool: closing the connection must end the session and free its lock.
                self._engine = sa.create_engine(self._database_url, poolclass=NullPool)
            connection = self._engine.connect()
            where = connection.execute(sa.text(
                "SELECT current_database() || '/' || current_schema()")).scalar_one()
            key = int.from_bytes(hashlib.sha256(f"corridor:{self.name}:{where}".encode())
                                 .digest()[:8], "big", signed=True)
            taken = connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                       {"key": key}).scalar_one()
            connection.commit()
            if not taken:
                connection.close()
                return False
            self._connection = connection
            return True
        except SQLAlchemyError as e:
            log.warning("%s: the database lock could not be checked (%s); "
                        "leaving the background work to another process", self.name, e)
            self._drop_advisory()
            return False

    def _drop_advisory(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()  # ends the session, which frees its advisory lock
            self._connection = None
