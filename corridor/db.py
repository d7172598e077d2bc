"""Database plumbing shared by the node and the registry.

SQLite is the default (embedded, zero setup); PostgreSQL is selected by URL.
Each service has its own declarative base and Alembic migrations; schemas are
created and upgraded only through those migrations (:func:`run_migrations`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, Table, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names so that migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC.

    SQLite has no timezone type, so values are normalised to naive UTC on the
    way in and given ``tzinfo=UTC`` on the way out; PostgreSQL stores
    ``timestamptz``. Naive datetimes are refused: every time in Corridor has an
    offset (DESIGN.md §4).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; refuse naive values."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class BulkWriter:
    """Fast batched INSERTs of typed records into one table.

    On SQLite, values are adapted to their storage form once (UTC datetimes as
    SQLAlchemy's SQLite text format, JSON as text) and handed to the driver's
    ``executemany`` directly, which skips SQLAlchemy's per-row parameter
    processing (most of the import time otherwise). Other backends use a Core
    ``insert()``. Reading back goes through the ORM types either way, and the
    storage tests run on both paths.
    """

    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        self.fast = conn.dialect.name == "sqlite"
        self.columns = [c.name for c in table.columns]
        self.adapters: list[Callable[[Any], Any] | None] = []
        for column in table.columns:
            if isinstance(column.type, UTCDateTime):
                self.adapters.append(_sqlite_utc_text)
            elif isinstance(column.type, JSON):
                self.adapters.append(json.dumps)
            else:
                self.adapters.append(None)
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        # Names come from our own table metadata, never from input.
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608

    def insert(self, records: list[dict[str, Any]]) -> None:
        """Insert records (dicts keyed by column name; absent keys are NULL)."""
        if not self.fast:
            self.conn.execute(self.table.insert(), records)
            return
        columns = self.columns
        adapted = [(i, adapt) for i, adapt in enumerate(self.adapters) if adapt is not None]
        rows: list[tuple[Any, ...]] = []
        for record in records:
            row = [record.get(name) for name in columns]
            for i, adapt in adapted:
                if row[i] is not None:
                    row[i] = adapt(row[i])
            rows.append(tuple(row))
        self.conn.exec_driver_sql(self.sql, rows)


def _sqlite_utc_text(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime type stores, for an aware value, in UTC."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine; on SQLite enforce foreign keys and wait on locks."""
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(migrations: Path, url: str) -> Config:
    """Alembic configuration for the migrations in ``migrations`` and the database at ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def run_migrations(engine: Engine, migrations: Path) -> None:
    """Bring the database at ``engine`` to the newest revision in ``migrations``."""
    cfg = alembic_config(migrations, engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def migration_state(connection: Connection, migrations: Path) -> tuple[str | None, str | None]:
    """The database's Alembic revision and the newest one in ``migrations`` (None: none)."""
    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config(migrations, "sqlite://")).get_current_head()
    return current, head


def metadata() -> MetaData:
    """A fresh MetaData with the shared constraint-naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def run_alembic_env(target_metadata: MetaData) -> None:
    """Body of a service's Alembic ``env.py``: migrate on the caller's connection or the URL.

    ``run_migrations`` hands an open connection over in ``config.attributes``;
    the ``alembic`` command line gives ``sqlalchemy.url`` instead.
    """
    from alembic import context
    from sqlalchemy import engine_from_config, pool

    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


def stream_tuples(conn: Connection, query: Any, batch_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    """Run a Core SELECT on the driver's own cursor and yield batches of plain tuples.

    SQLAlchemy builds a ``Row`` object per row, which costs more than the
    database itself when millions of rows stream out; the driver's cursor
    returns tuples. The statement is compiled by SQLAlchemy with bound
    parameters (never rendered into the SQL); UTC datetimes are adapted as the
    column type would store them.
    """
    dialect = conn.dialect
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    sqlite = dialect.name == "sqlite"

    def adapt(value: Any) -> Any:
        if isinstance(value, datetime):
            return _sqlite_utc_text(value) if sqlite else value.astimezone(UTC)
        return value

    args: Any
    if compiled.positiontup is not None:
        args = tuple(adapt(params[name]) for name in compiled.positiontup)
    else:
        args = {name: adapt(value) for name, value in params.items()}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, args)
        while batch := cursor.fetchmany(batch_rows):
            yield batch
    finally:
        cursor.close()


def table_of(model: Any) -> Table:
    """The Core table behind a mapped class (for bulk inserts and streaming selects)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
