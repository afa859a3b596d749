"""each result carries what its run read for that enterprise-year (its provenance rows), so
a score lookup reads one row instead of scanning the run's whole provenance file (issue 16)

Revision ID: 0008_result_provenance
Revises: 0007_departments
Create Date: 2026-11-26 07:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008_result_provenance'
down_revision: Union[str, Sequence[str], None] = '0007_departments'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # runs stored before keep reading their provenance.csv (the column stays empty for them)
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provenance', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_column('provenance')
