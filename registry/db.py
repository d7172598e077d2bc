"""The registry's migrations (plumbing lives in :mod:`corridor.db`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from corridor.db import run_migrations

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def upgrade(engine: Engine) -> None:
    """Bring the registry database at ``engine`` to the newest schema revision."""
    run_migrations(engine, MIGRATIONS_DIR)
