"""csat ratings and registration confirmation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'csat_rating',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('customer_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('agent_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('group_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('request_type', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('changes', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ticket_id'),
    )
    with op.batch_alter_table('csat_rating', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_csat_rating_created_at'), ['created_at'],
                              unique=False)
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('confirmed_at')
    with op.batch_alter_table('csat_rating', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_rating_created_at'))
    op.drop_table('csat_rating')
