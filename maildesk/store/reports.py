"""What the reports read (tickets/reports.py does the arithmetic): tickets
and satisfaction ratings in a range of time, as plain dicts whose keys are
the fields of tickets.reports.TicketRow and tickets.csat.RatingRow.

Every function takes the caller's session and opens no transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from maildesk.models import Agent, AgentGroup, CsatRating, Ticket


def ticket_rows(session: Session, start: datetime | None,
                end: datetime | None) -> list[dict[str, Any]]:
    """Tickets created at or after `start` and before `end` (None: open),
    with their assignee's address and group's name."""
    t, a, g = Ticket.__table__, Agent.__table__, AgentGroup.__table__
    statement = (
        select(t.c.number, t.c.created_at, t.c.channel, t.c.category, t.c.request_type,
               t.c.status, a.c.email.label("agent"), g.c.name.label("group"),
               t.c.first_response_at, t.c.solved_at, t.c.closed_at)
        .select_from(t.outerjoin(a, a.c.id == t.c.assignee_id)
                     .outerjoin(g, g.c.id == t.c.group_id))
        .order_by(t.c.number))
    if start is not None:
        statement = statement.where(t.c.created_at >= start)
    if end is not None:
        statement = statement.where(t.c.created_at < end)
    return [dict(row._mapping) for row in session.connection().execute(statement)]


def rating_rows(session: Session, start: datetime | None,
                end: datetime | None) -> list[dict[str, Any]]:
    """Ratings first given at or after `start` and before `end`, with the
    ticket's number and the reason as the customer wrote it."""
    c, t = CsatRating.__table__, Ticket.__table__
    statement = (
        select(c.c.score, c.c.agent_email.label("agent"), c.c.group_name.label("group"),
               c.c.request_type, t.c.number.label("ticket"), c.c.reason,
               c.c.created_at.label("rated_at"))
        .select_from(c.join(t, t.c.id == c.c.ticket_id))
        .order_by(c.c.created_at, t.c.number))
    if start is not None:
        statement = statement.where(c.c.created_at >= start)
    if end is not None:
        statement = statement.where(c.c.created_at < end)
    rows = []
    for row in session.connection().execute(statement):
        data = dict(row._mapping)
        data["reason"] = data["reason"] or ""
        data["has_reason"] = bool(data["reason"])
        rows.append(data)
    return rows
