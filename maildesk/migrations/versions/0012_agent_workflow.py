"""Agent workflow: bounce reason and expiry, 2nd-level support, SLA
escalations, third-party requests, announcements and unsubscribes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('bounce_reason', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10),
                                      nullable=False, server_default='external'))
    # A bounce recorded before this revision has no time: count it from now.
    op.execute("UPDATE customer SET bounced_at = updated_at WHERE bouncing")
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.alter_column('bounce_reason', server_default=None)
        batch_op.alter_column('kind', server_default=None)

    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_alerted', sqlmodel.sql.sqltypes.AutoString(length=10),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('end_customer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('support_level', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.create_foreign_key('fk_ticket_end_customer', 'customer',
                                    ['end_customer_id'], ['id'])
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.alter_column('sla_alerted', server_default=None)
        batch_op.alter_column('support_level', server_default=None)
    _restore_subject_search()

    op.create_table(
        'announcement',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'unsubscribe',
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.PrimaryKeyConstraint('email'),
    )
    op.create_table(
        'third_party_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_third_party_request_ticket_id', 'third_party_request', ['ticket_id'])

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('ticket_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('announcement_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_outbox_announcement', 'announcement',
                                    ['announcement_id'], ['id'])


SUBJECTS = "ticket_search"


def _restore_subject_search() -> None:
    """SQLite: batch_alter_table rebuilds `ticket` as a new table, which drops
    the triggers 0011 put on it, and the subject search went stale. Put them
    back (as 0011 wrote them) and rebuild the index from the table."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or bind.execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": SUBJECTS}).first() is None:
        return
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {SUBJECTS}_{name}")
    op.execute(f"""CREATE TRIGGER {SUBJECTS}_insert AFTER INSERT ON ticket BEGIN
        INSERT INTO {SUBJECTS}(rowid, subject) VALUES (new.id, new.subject);
        END""")
    op.execute(f"""CREATE TRIGGER {SUBJECTS}_delete AFTER DELETE ON ticket BEGIN
        INSERT INTO {SUBJECTS}({SUBJECTS}, rowid, subject) VALUES ('delete', old.id, old.subject);
        END""")
    op.execute(f"""CREATE TRIGGER {SUBJECTS}_update AFTER UPDATE OF subject ON ticket BEGIN
        INSERT INTO {SUBJECTS}({SUBJECTS}, rowid, subject) VALUES ('delete', old.id, old.subject);
        INSERT INTO {SUBJECTS}(rowid, subject) VALUES (new.id, new.subject);
        END""")
    op.execute(f"INSERT INTO {SUBJECTS}({SUBJECTS}) VALUES ('rebuild')")


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_announcement', type_='foreignkey')
        batch_op.drop_column('announcement_id')
    op.execute("DELETE FROM outbox WHERE ticket_id IS NULL")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('ticket_id', existing_type=sa.Integer(), nullable=False)
    op.drop_index('ix_third_party_request_ticket_id', table_name='third_party_request')
    op.drop_table('third_party_request')
    op.drop_table('unsubscribe')
    op.drop_table('announcement')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_constraint('fk_ticket_end_customer', type_='foreignkey')
        batch_op.drop_column('support_level')
        batch_op.drop_column('end_customer_id')
        batch_op.drop_column('sla_alerted')
    _restore_subject_search()
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('kind')
        batch_op.drop_column('bounce_reason')
        batch_op.drop_column('bounced_at')
