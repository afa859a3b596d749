"""each result carries what its run read for that enterprise-year (its provenance rows), so
a score lookup reads one row instead of scanning the run's whole provenance file; indexes
for the result lists' sort orders and an enterprise's award lines (issue 16)

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
    op.create_index('ix_results_run_rank', 'results', ['run_id', 'rank_overall'])
    op.create_index('ix_results_run_score', 'results', ['run_id', 'final_score'])
    op.create_index('ix_award_lines_run_code', 'award_lines', ['run_id', 'credit_code'])


def downgrade() -> None:
    op.drop_index('ix_award_lines_run_code', table_name='award_lines')
    op.drop_index('ix_results_run_score', table_name='results')
    op.drop_index('ix_results_run_rank', table_name='results')
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_column('provenance')
