"""evidence files attached to a self-declaration (issue 14): type and size checked on
upload, seen by the officer who reviews the declaration

Revision ID: 0006_declaration_evidence
Revises: 0005_policy_shape
Create Date: 2026-11-26 04:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006_declaration_evidence'
down_revision: Union[str, Sequence[str], None] = '0005_policy_shape'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'declaration_evidence',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('declaration_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by', sa.Integer(), nullable=True),
        sa.Column('uploaded_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['declaration_id'], ['declarations.id'], name='fk_declaration_evidence_declaration'),
        sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name='fk_declaration_evidence_user'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('declaration_evidence', schema=None) as batch_op:
        batch_op.create_index('ix_declaration_evidence_declaration_id', ['declaration_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('declaration_evidence', schema=None) as batch_op:
        batch_op.drop_index('ix_declaration_evidence_declaration_id')
    op.drop_table('declaration_evidence')
