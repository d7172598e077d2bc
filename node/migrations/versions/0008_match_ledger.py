"""match ledger: cross-border links between this node's individuals and a partner's

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import corridor.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('links',
    sa.Column('link_id', sa.String(length=64), nullable=False),
    sa.Column('proposer', sa.String(length=40), nullable=False),
    sa.Column('other_member', sa.String(length=40), nullable=False),
    sa.Column('local_id', sa.String(length=128), nullable=False),
    sa.Column('other_id', sa.String(length=128), nullable=False),
    sa.Column('taxon', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('proposal', sa.Text(), nullable=False),
    sa.Column('decision', sa.Text(), nullable=True),
    sa.Column('retraction', sa.Text(), nullable=True),
    sa.Column('outbox', sa.JSON(), nullable=False),
    sa.Column('delivery_error', sa.Text(), nullable=True),
    sa.Column('created_at', corridor.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', corridor.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('link_id', name=op.f('pk_links'))
    )
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_links_local_id'), ['local_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_links_other_member_other_id'),
                              ['other_member', 'other_id'], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_links_other_member_other_id'))
        batch_op.drop_index(batch_op.f('ix_links_local_id'))
    op.drop_table('links')
