"""Alembic environment for the node schema.

Run through ``node.db.upgrade`` (which hands over an open connection) or the
``alembic`` command with ``sqlalchemy.url`` set.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from node import models  # noqa: F401  (registers the tables on Base.metadata)
from node.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Run migrations on the connection given by the caller, or open one from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
