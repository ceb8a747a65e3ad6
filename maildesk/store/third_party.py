"""The third_party_request rows (tickets ask/forward, seed 003): written by
actions/thirdparty.py, answered by process/apply.py, listed by views.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from maildesk.models import Message, ThirdPartyRequest, utcnow
from maildesk.store.tickets import insert_returning_id


def add_request(session: Session, ticket_id: int, kind: str, email: str, text: str,
                actor: str, created_at: datetime) -> int:
    """A new request row; its id goes into the reply address of the mail."""
    return insert_returning_id(session, ThirdPartyRequest, {
        "ticket_id": ticket_id, "kind": kind, "email": email, "text": text, "actor": actor,
        "created_at": created_at,
    })


def answered(session: Session, request_id: int, verified: bool) -> str | None:
    """Record a verified answer (the first one's time is kept); returns who
    asked, so that they are told of any answer."""
    table = ThirdPartyRequest.__table__
    if verified:
        session.connection().execute(
            update(table).where(table.c.id == request_id, table.c.answered_at.is_(None))
            .values(answered_at=utcnow()))
    actor = session.connection().execute(
        select(table.c.actor).where(table.c.id == request_id)).scalar()
    return str(actor) if actor else None


def note_of_inbound(session: Session, ticket_id: int, inbound_id: int) -> int | None:
    """The message row just written for an incoming mail (the notice shows it)."""
    table = Message.__table__
    return session.connection().execute(
        select(table.c.id).where(table.c.ticket_id == ticket_id,
                                 table.c.inbound_id == inbound_id)
        .order_by(table.c.id.desc()).limit(1)).scalar()


def requests_of(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    """A ticket's requests, oldest first."""
    table = ThirdPartyRequest.__table__
    rows = session.connection().execute(
        select(table).where(table.c.ticket_id == ticket_id).order_by(table.c.id)).all()
    return [dict(r._mapping) for r in rows]
