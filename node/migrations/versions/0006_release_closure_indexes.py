"""release closure indexes

The closure of a release (a media row only with a released observation of its
event or medium, an individual only with a released observation naming it)
is computed with EXISTS subqueries; these indexes make each probe a seek.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 21:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('observations', schema=None) as batch_op:
        # (dataset_id, deploymentID) is a prefix of the new one.
        batch_op.drop_index(batch_op.f('ix_observations_dataset_id_deploymentID'))
        batch_op.create_index(batch_op.f('ix_observations_dataset_id_deploymentID_eventStart_utc'),
                              ['dataset_id', 'deploymentID', 'eventStart_utc'], unique=False)
        batch_op.create_index(batch_op.f('ix_observations_dataset_id_mediaID'),
                              ['dataset_id', 'mediaID'], unique=False)
        batch_op.create_index(batch_op.f('ix_observations_dataset_id_individualID'),
                              ['dataset_id', 'individualID'], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observations_dataset_id_individualID'))
        batch_op.drop_index(batch_op.f('ix_observations_dataset_id_mediaID'))
        batch_op.drop_index(batch_op.f('ix_observations_dataset_id_deploymentID_eventStart_utc'))
        batch_op.create_index(batch_op.f('ix_observations_dataset_id_deploymentID'),
                              ['dataset_id', 'deploymentID'], unique=False)
