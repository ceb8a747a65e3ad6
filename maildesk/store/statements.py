"""Statement builders shared by the store modules, built once per table.

Statement objects cost more to build than to run on the hot path, so they
are cached (SQLAlchemy then caches their compilation too). Also the one
portable INSERT .. ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session


@functools.cache
def insert_stmt(table: Table, returning_id: bool = False) -> Any:
    """Statement objects cost more to build than to run on the hot path:
    built once per table and reused (SQLAlchemy caches their compilation)."""
    statement = insert(table)
    return statement.returning(table.c.id) if returning_id else statement


@functools.cache
def upsert_stmt(dialect: str, table: Table, unique: tuple[str, ...]) -> Any:
    insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
    return (insert_for(table).on_conflict_do_nothing(index_elements=list(unique))
            .returning(table.c[_primary_key(table)]))


@functools.cache
def update_by_id(table: Table) -> Any:
    return update(table).where(table.c.id == bindparam("_row_id"))


@functools.cache
def select_where(table: Table, key: str, *columns: str) -> Any:
    cols = [table.c[c] for c in columns] if columns else [table]
    return sa_select(*cols).where(table.c[key] == bindparam("_key"))


def insert_ignoring_conflict(session: Session, table: Table, values: dict[str, Any],
                             unique: list[str]) -> Any:
    """INSERT .. ON CONFLICT DO NOTHING RETURNING id, for SQLite and PostgreSQL:
    the new row's id; None when a row with the same unique key exists."""
    connection = session.connection()
    statement = upsert_stmt(connection.dialect.name, table, tuple(unique))
    return connection.execute(statement, values).scalar()


def _primary_key(table: Table) -> str:
    return next(iter(table.primary_key.columns)).name
