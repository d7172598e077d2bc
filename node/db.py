"""The node's schema root, its migrations and its per-app database handle.

Plumbing lives in :mod:`corridor.db` and :mod:`corridor.flaskdb`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import DeclarativeBase

from corridor.db import metadata, run_migrations
from corridor.flaskdb import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: The engine and per-request sessions of the app, attached in ``create_app``.
db = Database()


class Base(DeclarativeBase):
    """Declarative base of every node table."""

    metadata = metadata()


def upgrade(engine: Engine) -> None:
    """Bring the node database at ``engine`` to the newest schema revision."""
    run_migrations(engine, MIGRATIONS_DIR)
