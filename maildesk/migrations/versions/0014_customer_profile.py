"""The portal's profile page: a customer's job title

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:20:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('job_title', sqlmodel.sql.sqltypes.AutoString(length=100),
                                   nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('job_title')
