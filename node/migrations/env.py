"""Alembic environment for the node schema (see corridor.db.run_alembic_env)."""

from corridor.db import run_alembic_env
from node import models  # noqa: F401  (importing the models registers every node table)
from node.db import Base

run_alembic_env(Base.metadata)
