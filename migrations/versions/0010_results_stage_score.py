"""an index for a stage's enterprises by final score, highest first and the unscored last
(`GET /api/enterprises?stage=…&sort=final_score&order=desc`, the pages' "top of the stage"):
a page read the whole stage and sorted it, 83 ms at 50k enterprises on PostgreSQL (issue 16)

Revision ID: 0010_results_stage_score
Revises: 0009_lz4_large_text
Create Date: 2026-11-26 17:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0010_results_stage_score'
down_revision: Union[str, Sequence[str], None] = '0009_lz4_large_text'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # SQLite sorts NULLs first ascending, so last descending, and takes no NULLS LAST in an index
    order = 'final_score DESC' if op.get_bind().dialect.name == 'sqlite' else 'final_score DESC NULLS LAST'
    op.create_index('ix_results_run_stage_score', 'results', ['run_id', 'stage', sa.text(order), 'credit_code'])


def downgrade() -> None:
    op.drop_index('ix_results_run_stage_score', table_name='results')
