"""Inbound rows: the spool's raw mail, the claim on a row, held mail.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from maildesk.models import HeldMail, InboundMail, InboundRaw, utcnow
from maildesk.store.statements import (
    insert_ignoring_conflict,
    insert_stmt,
    select_where,
    update_by_id,
)


def insert_inbound(session: Session, values: dict[str, Any], raw: bytes) -> int | None:
    """The inbound row and its raw bytes; None when the dedup key exists."""
    inbound_id = insert_ignoring_conflict(
        session, InboundMail.__table__, values, ["dedup_key"]
    )
    if inbound_id is not None:
        session.connection().execute(
            insert_stmt(InboundRaw.__table__), {"inbound_id": inbound_id, "data": raw}
        )
    return inbound_id


def find_inbound_by_key(session: Session, dedup_key: str) -> InboundMail | None:
    return session.exec(select(InboundMail).where(InboundMail.dedup_key == dedup_key)).first()


@functools.cache
def _claim_stmt(dialect: str) -> Any:
    """queued -> processing for one row. PostgreSQL: only when no other
    transaction holds the row (FOR UPDATE SKIP LOCKED): another instance
    that claimed it and has not committed yet is left alone, without
    waiting on its lock (waiting is what made instances deadlock)."""
    table = InboundMail.__table__
    wanted = (table.c.id == bindparam("_row_id"),
              table.c.state.in_(bindparam("_states", expanding=True)))
    statement = update(table)
    if dialect == "postgresql":
        free = sa_select(table.c.id).where(*wanted).with_for_update(skip_locked=True)
        statement = statement.where(table.c.id == free.scalar_subquery())
    else:
        statement = statement.where(*wanted)
    return statement.values(state="processing").returning(
        table.c.source, table.c.envelope_from, table.c.envelope_to, table.c.message_id,
        table.c.attempts)


def claim_inbound(
    session: Session, inbound_id: int, states: tuple[str, ...]
) -> dict[str, Any] | None:
    """Move the row to "processing" if it is in `states`; None otherwise
    (another state, or claimed by a transaction still at work).

    The row stays locked until the transaction ends, so exactly one
    processor wins; the "processing" state is never committed (the same
    transaction writes the outcome). Returns what processing needs to know
    of the row.
    """
    connection = session.connection()
    row = connection.execute(
        _claim_stmt(connection.dialect.name),
        {"_row_id": inbound_id, "_states": list(states)}).first()
    return None if row is None else dict(row._mapping)


def hold_mail(session: Session, inbound_id: int, *, reason: str, detail: str, sender: str,
              subject: str, ticket_number: int | None) -> None:
    """Keep a mail that became no ticket for a person to recover or delete
    (once: processing the same inbound row again keeps the first entry)."""
    insert_ignoring_conflict(session, HeldMail.__table__, {
        "inbound_id": inbound_id, "reason": reason[:40], "detail": detail or "",
        "sender": (sender or "")[:320], "subject": subject or "",
        "ticket_number": ticket_number, "held_at": utcnow(), "state": "held",
        "resolved_by": "", "result": "",
    }, ["inbound_id"])


def claim_held(session: Session, inbound_id: int, actor: str) -> dict[str, Any] | None:
    """held -> recovered for one entry (conditional: exactly one recover
    wins); None when it is not held. The result is written by resolve_held."""
    table = HeldMail.__table__
    row = session.connection().execute(
        update(table).where(table.c.inbound_id == inbound_id, table.c.state == "held")
        .values(state="recovered", resolved_at=utcnow(), resolved_by=actor[:320])
        .returning(table.c.reason, table.c.ticket_number)).first()
    return None if row is None else dict(row._mapping)


def resolve_held(session: Session, inbound_id: int, result: str) -> None:
    table = HeldMail.__table__
    session.connection().execute(
        update(table).where(table.c.inbound_id == inbound_id).values(result=result))


def inbound_fields(session: Session, inbound_id: int) -> dict[str, Any]:
    """What processing reads of an inbound row (as claim_inbound returns it)."""
    table = InboundMail.__table__
    row = session.connection().execute(
        sa_select(table.c.source, table.c.envelope_from, table.c.envelope_to,
                  table.c.message_id, table.c.attempts).where(table.c.id == inbound_id)).one()
    return dict(row._mapping)


def finish_inbound(session: Session, inbound_id: int, **values: Any) -> None:
    session.connection().execute(update_by_id(InboundMail.__table__),
                                 {"_row_id": inbound_id, **values})


def raw_bytes(session: Session, inbound_id: int) -> bytes:
    data = session.connection().execute(
        select_where(InboundRaw.__table__, "inbound_id", "data"), {"_key": inbound_id}
    ).scalar()
    return b"" if data is None else bytes(data)


def has_raw(session: Session, inbound_id: int) -> bool:
    """False once a held mail's raw bytes were deleted or purged."""
    table = InboundRaw.__table__
    return session.connection().execute(
        sa_select(table.c.inbound_id).where(table.c.inbound_id == inbound_id)).first() is not None


def list_inbound(
    session: Session, state: str | None = None, outcome: str | None = None,
    limit: int | None = 200,
) -> Sequence[InboundMail]:
    statement = select(InboundMail)
    if state:
        statement = statement.where(InboundMail.state == state)
    if outcome:
        statement = statement.where(InboundMail.outcome == outcome)
    statement = statement.order_by(col(InboundMail.id).desc())
    return session.exec(statement if limit is None else statement.limit(limit)).all()
