"""The registry's migrations and its per-app database handle.

Plumbing lives in :mod:`corridor.db` and :mod:`corridor.flaskdb`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from corridor.db import run_migrations
from corridor.flaskdb import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: The engine and per-request sessions of the app, attached in ``create_app``.
db = Database()


def upgrade(engine: Engine) -> None:
    """Bring the registry database at ``engine`` to the newest schema revision."""
    run_migrations(engine, MIGRATIONS_DIR)
