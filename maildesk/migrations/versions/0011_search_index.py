"""Trigram search index over messages; ticket lists by status in number order

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:40:00

A text search looked at every message's text and every ticket's subject
(store/search.py). SQLite gets FTS5 tables with the trigram tokenizer, kept
current by triggers;
PostgreSQL a pg_trgm GIN index, when the extension can be installed (it is
a trusted extension from PostgreSQL 13: the database's owner may). Building
it reads every message once: on a large database this upgrade takes a
while (about 15 s per 100,000 messages on SQLite).
"""

import logging

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
FTS = "message_search"
SUBJECTS = "ticket_search"


def upgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_status_number', ['status', 'number'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_fts(bind)
    elif bind.dialect.name == "postgresql":
        _postgres_trgm(bind)


def _sqlite_fts(bind: sa.engine.Connection) -> None:
    try:
        op.execute(f"CREATE VIRTUAL TABLE {FTS} USING fts5(text, from_addr, "
                   "content='message', content_rowid='id', tokenize='trigram')")
    except sa.exc.OperationalError as exc:  # an SQLite older than 3.34 or without FTS5
        log.warning("no trigram search index (%s): text search reads every message", exc)
        return
    log.info("building the search index over every message")
    op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")
    op.execute(f"""CREATE TRIGGER {FTS}_insert AFTER INSERT ON message BEGIN
        INSERT INTO {FTS}(rowid, text, from_addr) VALUES (new.id, new.text, new.from_addr);
        END""")
    op.execute(f"""CREATE TRIGGER {FTS}_delete AFTER DELETE ON message BEGIN
        INSERT INTO {FTS}({FTS}, rowid, text, from_addr)
        VALUES ('delete', old.id, old.text, old.from_addr);
        END""")
    op.execute(f"""CREATE TRIGGER {FTS}_update AFTER UPDATE OF text, from_addr ON message BEGIN
        INSERT INTO {FTS}({FTS}, rowid, text, from_addr)
        VALUES ('delete', old.id, old.text, old.from_addr);
        INSERT INTO {FTS}(rowid, text, from_addr) VALUES (new.id, new.text, new.from_addr);
        END""")
    op.execute(f"CREATE VIRTUAL TABLE {SUBJECTS} USING fts5(subject, "
               "content='ticket', content_rowid='id', tokenize='trigram')")
    op.execute(f"INSERT INTO {SUBJECTS}({SUBJECTS}) VALUES ('rebuild')")
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


def _postgres_trgm(bind: sa.engine.Connection) -> None:
    installed = bind.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'")).scalar()
    if installed is None:
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
            savepoint.commit()
            installed = "public"
        except sa.exc.DBAPIError as exc:
            savepoint.rollback()
            log.warning(
                "pg_trgm cannot be installed (%s): text search reads every message. As a "
                "superuser: CREATE EXTENSION pg_trgm; CREATE INDEX ix_message_text_trgm ON "
                "message USING gin (lower(text) gin_trgm_ops); CREATE INDEX "
                "ix_message_from_trgm ON message USING gin (lower(from_addr) gin_trgm_ops) "
                "and ix_ticket_subject_trgm ON ticket USING gin (lower(subject) gin_trgm_ops)",
                exc.orig)
            return
    log.info("building the search index over every message")
    for name, table, column in (("ix_message_text_trgm", "message", "text"),
                                ("ix_message_from_trgm", "message", "from_addr"),
                                ("ix_ticket_subject_trgm", "ticket", "subject")):
        op.execute(f'CREATE INDEX {name} ON {table} USING gin '
                   f'(lower({column}) "{installed}".gin_trgm_ops)')


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in (FTS, SUBJECTS):
            for suffix in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_message_text_trgm")
        op.execute("DROP INDEX IF EXISTS ix_message_from_trgm")
        op.execute("DROP INDEX IF EXISTS ix_ticket_subject_trgm")
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_status_number')
