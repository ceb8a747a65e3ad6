"""A CC or follower stops the mails of a ticket themselves (issue #15:
"removed by the customer"), by the signed link in every mail they get
(tickets/address_links.py). The removal is written to the history with
the address as the actor, like an agent's removal (field cc/follower,
old: the address)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from maildesk.db import session_scope
from maildesk.models import Event, Participant, Ticket
from maildesk.tickets import writes


@dataclass(frozen=True)
class Participation:
    """A participant row as the removal page shows it."""

    id: int
    ticket_id: int
    number: int
    subject: str
    language: str
    email: str
    role: str
    #: the latest time an agent added the address (cc or follower), if recorded
    added_at: datetime | None = None


def participation(engine: Engine, participant_id: int) -> Participation | None:
    part, ticket = Participant.__table__, Ticket.__table__
    with engine.connect() as connection:
        row = connection.execute(
            select(part.c.id, part.c.ticket_id, part.c.email, part.c.role, ticket.c.number,
                   ticket.c.subject, ticket.c.language)
            .join(ticket, ticket.c.id == part.c.ticket_id)
            .where(part.c.id == participant_id)).first()
        if row is None:
            return None
        event = Event.__table__
        added_at = connection.execute(
            select(func.max(event.c.at)).where(
                event.c.ticket_id == row.ticket_id, event.c.field.in_(("cc", "follower")),
                event.c.new == row.email.lower())).scalar()
    return Participation(row.id, row.ticket_id, row.number, row.subject, row.language,
                         row.email, row.role, added_at)


def remove_self(engine: Engine, found: Participation) -> bool:
    """Remove the participant row (if it is still the same one); True when
    removed, False when it was gone already (a second click)."""
    part = Participant.__table__
    with session_scope(engine) as session:
        connection = session.connection()
        result = connection.execute(delete(part).where(
            part.c.id == found.id, part.c.ticket_id == found.ticket_id,
            part.c.email == found.email))
        if not result.rowcount:
            return False
        connection.execute(insert(Event.__table__), writes.event(
            found.ticket_id, found.email.lower(), found.role, None, found.email.lower()))
    return True
