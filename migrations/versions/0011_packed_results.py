"""each result's trace, provenance and indicators stored packed (zstd, against a dictionary trained on
its run's own texts and kept as the run's file trace.zdict / provenance.zdict / indicators.zdict): a 50,000-
enterprise run wrote about 250 MB of rows as text, and their insert and commit took most of
the run (issue 16). Runs stored before keep their text; `trace` and `indicators` may now be
empty for a packed one. The downgrade puts every packed text back as text before dropping the columns.

Revision ID: 0011_packed_results
Revises: 0010_results_stage_score
Create Date: 2026-12-05 01:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0011_packed_results'
down_revision: Union[str, Sequence[str], None] = '0010_results_stage_score'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _stage_score_index() -> None:
    """On SQLite the batch copies the table and makes its indexes again from what SQLite
    reports of them, which loses 0010's `final_score DESC`: made again as 0010 made it."""
    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index('ix_results_run_stage_score', table_name='results')
        op.create_index('ix_results_run_stage_score', 'results',
                        ['run_id', 'stage', sa.text('final_score DESC'), 'credit_code'])


def upgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_packed', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('provenance_packed', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('indicators_packed', sa.LargeBinary(), nullable=True))
        batch_op.alter_column('trace', existing_type=sa.Text(), nullable=True)
        batch_op.alter_column('indicators', existing_type=sa.Text(), nullable=True)
    _stage_score_index()


def _unpack_all(bind, column, text_column, dictionary_name) -> None:
    import zstandard
    runs = bind.execute(sa.text(f"SELECT DISTINCT run_id FROM results WHERE {column} IS NOT NULL")).scalars().all()
    for run_id in runs:
        raw = bind.execute(sa.text("SELECT content FROM run_files WHERE run_id = :r AND name = :n"),
                           {"r": run_id, "n": dictionary_name}).scalar()
        d = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(raw) if raw else None)
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM results WHERE run_id = :r AND {column} IS NOT NULL"),
                            {"r": run_id}).all()
        bind.execute(sa.text(f"UPDATE results SET {text_column} = :t WHERE id = :i"),
                     [{"i": i, "t": d.decompress(blob).decode("utf-8")} for i, blob in rows])


def downgrade() -> None:
    bind = op.get_bind()
    _unpack_all(bind, "trace_packed", "trace", "trace.zdict")
    _unpack_all(bind, "provenance_packed", "provenance", "provenance.zdict")
    _unpack_all(bind, "indicators_packed", "indicators", "indicators.zdict")
    bind.execute(sa.text("UPDATE results SET trace = '{}' WHERE trace IS NULL"))
    bind.execute(sa.text("UPDATE results SET indicators = '{}' WHERE indicators IS NULL"))
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.alter_column('indicators', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('trace', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('indicators_packed')
        batch_op.drop_column('provenance_packed')
        batch_op.drop_column('trace_packed')
    _stage_score_index()
