"""Customers' and organisations' ticket access, phone, change times and history

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ticket_access', sqlmodel.sql.sqltypes.AutoString(length=20),
                                      nullable=False, server_default='organisation'))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE organisation SET updated_at = created_at")
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.alter_column('updated_at', nullable=False)
        batch_op.alter_column('ticket_access', server_default=None)

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=50),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('ticket_access', sqlmodel.sql.sqltypes.AutoString(length=20),
                                      nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE customer SET updated_at = created_at")
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.alter_column('updated_at', nullable=False)
        batch_op.alter_column('phone', server_default=None)

    op.create_table(
        'directory_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('old', sa.Text(), nullable=True),
        sa.Column('new', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_directory_event_subject', 'directory_event', ['subject', 'subject_id'])


def downgrade() -> None:
    op.drop_index('ix_directory_event_subject', table_name='directory_event')
    op.drop_table('directory_event')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('ticket_access')
        batch_op.drop_column('phone')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('ticket_access')
