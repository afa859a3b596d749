"""no planner statistics for the results' wide columns (the packed trace, indicators and
provenance, their text forms and the category scores): no query filters, joins or sorts on
them, and ANALYZE read their sampled values, most of its time in the moment before a run is
done, while the lookups wait on the same cores: VACUUM (ANALYZE) of a 30,000-result table
155 -> 91 ms on PostgreSQL (issue 16). Nothing to do on SQLite.

Revision ID: 0012_results_statistics
Revises: 0011_packed_results
Create Date: 2026-12-05 09:00:00

"""
from typing import Sequence, Union

from alembic import op


revision: str = '0012_results_statistics'
down_revision: Union[str, Sequence[str], None] = '0011_packed_results'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

WIDE = ('trace', 'trace_packed', 'indicators', 'indicators_packed', 'provenance', 'provenance_packed',
        'category_scores')


def _statistics(target: int) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for column in WIDE:
        op.execute(f'ALTER TABLE results ALTER COLUMN {column} SET STATISTICS {target}')


def upgrade() -> None:
    _statistics(0)


def downgrade() -> None:
    _statistics(-1)       # the server's default target
