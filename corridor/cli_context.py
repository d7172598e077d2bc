"""What one run of a service command needs, built once: its directory, settings and database.

A service's command group puts a :class:`ServiceContext` in ``ctx.obj``; its
commands take what they use from it (:func:`service_context`). The settings are
read at first use (a bad directory is one line on stderr and exit 1), the
engine is made and the schema brought to the newest revision once per process
at the first database use, and the engine is released when the command ends.
Commands that never touch the database (``keys``, ``anchor``) never open it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from corridor.config import SettingsError
from corridor.console import fail, out
from corridor.db import make_engine, make_session_factory, migration_state

__all__ = ["ServiceContext", "service_context"]


class HasDatabase(Protocol):
    """Settings of a service: at least where its database is."""

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the service's database."""
        ...


S = TypeVar("S", bound=HasDatabase)


class ServiceContext(Generic[S]):
    """A service directory, its settings and its (migrated) database, each made once."""

    def __init__(self, directory: Path, load_settings: Callable[[Path], S],
                 migrate: Callable[[Engine], None]) -> None:
        self.directory = directory
        self._load_settings = load_settings
        self._migrate = migrate
        self._settings: S | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def settings(self) -> S:
        """The service's settings (exits with the reason if the directory is not usable)."""
        try:
            return self.read_settings()
        except SettingsError as e:
            fail(str(e))

    def read_settings(self) -> S:
        """The service's settings, read once.

        :raises SettingsError: the directory is not usable (``doctor`` reports it).
        """
        if self._settings is None:
            self._settings = self._load_settings(self.directory)
        return self._settings

    def migrate(self) -> Engine:
        """Open the database and bring its schema to the newest revision (once per run)."""
        if self._engine is None:
            engine = make_engine(self.settings.database_url)
            self._migrate(engine)
            self._engine = engine
        return self._engine

    def migrate_command(self, migrations: Path) -> None:
        """``migrate``: bring the schema up to date and say at which revision it now is."""
        engine = self.migrate()
        with engine.connect() as connection:
            current, head = migration_state(connection, migrations)
        out.print(f"Database schema at migration {current} (the newest is {head}).")

    @property
    def engine(self) -> Engine:
        """The database engine, its schema at the newest revision (:meth:`migrate`)."""
        return self.migrate()

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory on :attr:`engine`."""
        if self._sessions is None:
            self._sessions = make_session_factory(self.engine)
        return self._sessions

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One session on the database, closed at the end of the block."""
        with self.sessions() as session:
            yield session

    def close(self) -> None:
        """Release the database (called when the command ends)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = self._sessions = None


def service_context(ctx: click.Context) -> ServiceContext[Any]:
    """The :class:`ServiceContext` the service's command group made for this run."""
    found = ctx.find_object(ServiceContext)
    if found is None:
        raise click.UsageError("run this command under 'corridor node' or 'corridor registry'")
    return found
