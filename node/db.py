"""The node's schema root and migrations (plumbing lives in :mod:`corridor.db`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from corridor.db import metadata, run_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    """Declarative base of every node table."""

    metadata = metadata()


def upgrade(engine: Engine) -> None:
    """Bring the node database at ``engine`` to the newest schema revision."""
    run_migrations(engine, MIGRATIONS_DIR)
