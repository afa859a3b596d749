"""the large text columns (records' values, each result's trace, indicators and provenance,
a run's files) compressed with lz4 instead of pglz on PostgreSQL: storing and reading a run
spent much of its time in the server compressing and decompressing them (issue 16). New
values only; values already stored stay as they are (both read the same). Nothing changes on
SQLite, nor on a server without lz4.

Revision ID: 0009_lz4_large_text
Revises: 0008_result_provenance
Create Date: 2026-11-26 11:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0009_lz4_large_text'
down_revision: Union[str, Sequence[str], None] = '0008_result_provenance'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = (("records", "data"), ("results", "trace"), ("results", "indicators"), ("results", "provenance"),
           ("run_files", "content"))


def _lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(sa.text(
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")).scalar())


def upgrade() -> None:
    if _lz4():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION pglz")
