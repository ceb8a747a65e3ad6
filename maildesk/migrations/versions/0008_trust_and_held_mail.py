"""retries of inbound mail, held mail, message authenticity, ticket sequence

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 16:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

#: PostgreSQL hands out ticket numbers from this sequence (no row lock that
#: serialises instances); SQLite keeps the counter row (one writer anyway).
SEQUENCE = 'ticket_number_seq'


def upgrade() -> None:
    with op.batch_alter_table('inbound_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authenticity',
                                      sqlmodel.sql.sqltypes.AutoString(length=255),
                                      nullable=False, server_default=''))
    op.create_table(
        'held_mail',
        sa.Column('inbound_id', sa.Integer(), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('ticket_number', sa.Integer(), nullable=True),
        sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound_mail.id'], ),
        sa.PrimaryKeyConstraint('inbound_id'),
    )
    with op.batch_alter_table('held_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_held_mail_reason'), ['reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_held_mail_held_at'), ['held_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_held_mail_state'), ['state'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'CREATE SEQUENCE {SEQUENCE} START 1')
        # Go on after every number handed out so far (the counter row, any ticket).
        op.execute(
            f"SELECT setval('{SEQUENCE}', m) FROM (SELECT GREATEST("
            "(SELECT max(value) FROM counter WHERE name = 'ticket_number'),"
            " (SELECT max(number) FROM ticket)) AS m) AS highest WHERE m IS NOT NULL"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "INSERT INTO counter (name, value) SELECT 'ticket_number', last_value"
            f" FROM {SEQUENCE} WHERE is_called"
            " ON CONFLICT (name) DO UPDATE SET value = GREATEST(counter.value, EXCLUDED.value)"
        )
        op.execute(f'DROP SEQUENCE {SEQUENCE}')
    with op.batch_alter_table('held_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_held_mail_state'))
        batch_op.drop_index(batch_op.f('ix_held_mail_held_at'))
        batch_op.drop_index(batch_op.f('ix_held_mail_reason'))
    op.drop_table('held_mail')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('authenticity')
    with op.batch_alter_table('inbound_mail', schema=None) as batch_op:
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
