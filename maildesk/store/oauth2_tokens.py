"""The oauth2_token rows: one IMAP account's cached, sealed OAuth2 tokens.

Functions take the caller's connection and never commit (the transactions
open in accept/imap.py). What they store is already sealed
(accept/oauth2.py): no plain token passes through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from maildesk.models import OAuth2Token, utcnow

_TABLE = OAuth2Token.__table__


@dataclass(frozen=True)
class StoredToken:
    """A row as plain data. `access_token` and `refresh_token` are sealed
    strings (or None); `key_id` names the key they were sealed with."""

    key_id: str
    access_token: str | None
    expires_at: datetime | None
    refresh_at: datetime | None
    refresh_token: str | None

    def __repr__(self) -> str:  # sealed, but a row in a log line helps nobody
        return (f"StoredToken(key_id={self.key_id!r}, expires_at={self.expires_at!r}, "
                f"refresh_token={'set' if self.refresh_token else 'none'})")


def load(conn: Connection, account: str) -> StoredToken | None:
    row = conn.execute(select(_TABLE.c.key_id, _TABLE.c.access_token, _TABLE.c.expires_at,
                              _TABLE.c.refresh_at, _TABLE.c.refresh_token)
                       .where(_TABLE.c.account == account)).first()
    if row is None:
        return None
    return StoredToken(row.key_id, row.access_token, row.expires_at, row.refresh_at,
                       row.refresh_token)


def save(conn: Connection, account: str, token: StoredToken) -> None:
    """Insert or replace the account's row (one statement: two instances
    saving at once leave one whole row, never a mix or an error)."""
    values = {"account": account, "key_id": token.key_id, "access_token": token.access_token,
              "expires_at": token.expires_at, "refresh_at": token.refresh_at,
              "refresh_token": token.refresh_token, "updated_at": utcnow()}
    insert_for = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert_for(_TABLE).values(**values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[_TABLE.c.account],
        set_={key: statement.excluded[key] for key in values if key != "account"}))


def forget_access_token(conn: Connection, account: str, access_token: str) -> bool:
    """Drop the access token the server refused, if it is still the stored
    one (another instance may have stored a fresh one meanwhile); the
    refresh token stays. True when a row changed."""
    return bool(conn.execute(
        update(_TABLE)
        .where(_TABLE.c.account == account, _TABLE.c.access_token == access_token)
        .values(access_token=None, expires_at=None, refresh_at=None, updated_at=utcnow())
    ).rowcount)
