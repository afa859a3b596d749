"""a per-user session generation (disabling, revoking and logging out end cookie sessions);
the full bad-cell list of a rejected import

Revision ID: 0004_security
Revises: 0003
Create Date: 2026-11-26 01:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_security'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_gen', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bad_cells_csv', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_column('bad_cells_csv')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_gen')
