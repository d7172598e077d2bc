"""login guard: failed sign-ins and server-side web sessions

Failed sign-ins are counted per account and per client address so that
guessers are locked out; web sessions live in the database (the cookie holds
only a random id, the table its SHA-256), so signing out ends them at once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:25:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import corridor.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('login_failures',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', corridor.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', corridor.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kind', 'key', name=op.f('pk_login_failures'))
    )
    op.create_table('web_sessions',
    sa.Column('id_sha256', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('created_at', corridor.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', corridor.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id_sha256', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_username'), ['username'], unique=False)



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_username'))

    op.drop_table('web_sessions')
    op.drop_table('login_failures')
