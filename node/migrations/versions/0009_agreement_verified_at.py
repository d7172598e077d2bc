"""agreements: when this node last checked its copy against the registry

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import corridor.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('agreements') as batch:
        batch.add_column(sa.Column('verified_at', corridor.db.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('agreements') as batch:
        batch.drop_column('verified_at')
