"""the policy package holds its shape: a record's policy fields move into one JSON column
(`records.data`), a result's category scores into `results.category_scores`; no data is
dropped, every value moves

Revision ID: 0005_policy_shape
Revises: 0004_security
Create Date: 2026-11-26 04:30:00

"""
import json
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005_policy_shape'
down_revision: Union[str, Sequence[str], None] = '0004_security'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KEEP = {"id", "import_id", "updated_at", "credit_code", "name", "park", "industry", "registered_on", "year", "data"}
CATEGORY_COLUMNS = {"tech_score": "tech", "growth_score": "growth", "aux_score": "aux"}


def upgrade() -> None:
    bind = op.get_bind()
    insp = sa.inspect(bind)
    moving = [c["name"] for c in insp.get_columns("records") if c["name"] not in KEEP]
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data', sa.JSON(), nullable=False, server_default='{}',
                                      comment='政策数据字典中的字段（JSON）'))
    if moving:
        records = sa.table("records", sa.column("id"), sa.column("data", sa.JSON()), *[sa.column(c) for c in moving])
        rows = bind.execute(sa.select(records.c.id, *[records.c[c] for c in moving])).all()
        for r in rows:
            values = {k: v for k, v in zip(moving, r[1:]) if v is not None}
            bind.execute(records.update().where(records.c.id == r[0])
                         .values(data=json.loads(json.dumps(values, ensure_ascii=False, default=str))))
        with op.batch_alter_table('records', schema=None) as batch_op:
            for c in moving:
                batch_op.drop_column(c)
    cats = [c["name"] for c in insp.get_columns("results") if c["name"] in CATEGORY_COLUMNS]
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category_scores', sa.JSON(), nullable=False, server_default='{}'))
    if cats:
        results = sa.table("results", sa.column("id"), sa.column("category_scores", sa.JSON()), *[sa.column(c) for c in cats])
        rows = bind.execute(sa.select(results.c.id, *[results.c[c] for c in cats])).all()
        for r in rows:
            values = {CATEGORY_COLUMNS[k]: v for k, v in zip(cats, r[1:]) if v is not None}
            bind.execute(results.update().where(results.c.id == r[0]).values(category_scores=values))
        with op.batch_alter_table('results', schema=None) as batch_op:
            for c in cats:
                batch_op.drop_column(c)


def downgrade() -> None:
    """The fields of a package are not columns any more; going back would have to drop the
    fields the old columns cannot hold. Refused: restore a backup taken before 0005 instead."""
    raise NotImplementedError("0005_policy_shape cannot be downgraded without losing data; restore a backup")
