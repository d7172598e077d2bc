"""Alembic environment for the registry schema (see corridor.db.run_alembic_env)."""

from corridor.db import run_alembic_env
from registry.models import Base

run_alembic_env(Base.metadata)
