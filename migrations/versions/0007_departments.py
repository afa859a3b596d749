"""data as the plan gathers it (issue 17): department users bound to a source, the
provenance of every stored value, conflicts between sources, published lists, 公示 periods
and objections with their evidence

Revision ID: 0007_departments
Revises: 0006_declaration_evidence
Create Date: 2026-11-26 05:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0007_departments'
down_revision: Union[str, Sequence[str], None] = '0006_declaration_evidence'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=32), nullable=True))
    op.create_table(
        'provenance',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=True),
        sa.Column('declaration_id', sa.Integer(), nullable=True),
        sa.Column('public_list_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('applied', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['import_id'], ['imports.id'], name='fk_provenance_import'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_provenance_user'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_provenance_record_field', 'provenance', ['credit_code', 'year', 'field'])
    op.create_table(
        'conflicts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('kept_value', sa.Text(), nullable=False),
        sa.Column('kept_source', sa.String(length=32), nullable=False),
        sa.Column('kept_provenance_id', sa.Integer(), nullable=True),
        sa.Column('other_value', sa.Text(), nullable=False),
        sa.Column('other_source', sa.String(length=32), nullable=False),
        sa.Column('other_provenance_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('resolved_by', sa.Integer(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(), nullable=True),
        sa.Column('resolution', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name='fk_conflicts_resolved_by'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_conflicts_credit_code', 'conflicts', ['credit_code'])
    op.create_table(
        'public_lists',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('applied', sa.Integer(), nullable=False),
        sa.Column('held', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_public_lists_user'),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'public_list_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('list_id', sa.Integer(), nullable=False),
        sa.Column('row', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('listed_on', sa.Date(), nullable=True),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('candidates', sa.Text(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['list_id'], ['public_lists.id'], name='fk_public_list_entries_list'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_public_list_entries_list_id', 'public_list_entries', ['list_id'])
    op.create_table(
        'publicity',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('first_run_id', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('opened_by', sa.Integer(), nullable=True),
        sa.Column('opened_at', sa.DateTime(), nullable=False),
        sa.Column('finalised_by', sa.Integer(), nullable=True),
        sa.Column('finalised_at', sa.DateTime(), nullable=True),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name='fk_publicity_run'),
        sa.ForeignKeyConstraint(['first_run_id'], ['runs.id'], name='fk_publicity_first_run'),
        sa.ForeignKeyConstraint(['opened_by'], ['users.id'], name='fk_publicity_opened_by'),
        sa.ForeignKeyConstraint(['finalised_by'], ['users.id'], name='fk_publicity_finalised_by'),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'objections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('publicity_id', sa.Integer(), nullable=False),
        sa.Column('credit_code', sa.String(length=18), nullable=False),
        sa.Column('item', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('filed_by', sa.Integer(), nullable=True),
        sa.Column('filed_at', sa.DateTime(), nullable=False),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('decision', sa.Text(), nullable=False),
        sa.Column('correction', sa.Text(), nullable=False),
        sa.Column('new_run_id', sa.Integer(), nullable=True),
        sa.Column('old_run_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['publicity_id'], ['publicity.id'], name='fk_objections_publicity'),
        sa.ForeignKeyConstraint(['filed_by'], ['users.id'], name='fk_objections_filed_by'),
        sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name='fk_objections_decided_by'),
        sa.ForeignKeyConstraint(['new_run_id'], ['runs.id'], name='fk_objections_new_run'),
        sa.ForeignKeyConstraint(['old_run_id'], ['runs.id'], name='fk_objections_old_run'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_objections_publicity_id', 'objections', ['publicity_id'])
    op.create_table(
        'objection_files',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('objection_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['objection_id'], ['objections.id'], name='fk_objection_files_objection'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_objection_files_objection_id', 'objection_files', ['objection_id'])


def downgrade() -> None:
    for name in ('objection_files', 'objections', 'publicity', 'public_list_entries', 'public_lists',
                 'conflicts', 'provenance'):
        op.drop_table(name)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('source')
