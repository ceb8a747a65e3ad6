"""The customers' portal: login links and sessions (only token hashes)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 11:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'portal_login',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('client_address', sqlmodel.sql.sqltypes.AutoString(length=64),
                  nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_portal_login_customer_created', 'portal_login',
                    ['customer_id', 'created_at'])
    op.create_index('ix_portal_login_client_created', 'portal_login',
                    ['client_address', 'created_at'])
    op.create_table(
        'portal_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_portal_session_customer_id', 'portal_session', ['customer_id'])


def downgrade() -> None:
    op.drop_index('ix_portal_session_customer_id', table_name='portal_session')
    op.drop_table('portal_session')
    op.drop_index('ix_portal_login_client_created', table_name='portal_login')
    op.drop_index('ix_portal_login_customer_created', table_name='portal_login')
    op.drop_table('portal_login')
