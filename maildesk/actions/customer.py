"""What customers do through the pages their mails link to: rate a ticket,
mark it solved, confirm their address (SPEC §7, §8; seed 001).

Each write is one transaction with its event on the ticket (and, for "mark
as solved", the outbox rows it causes), like the agents' actions. Reads for
a page come first and never write: a mail scanner that opens every link
changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk.config import Settings
from maildesk.db import session_scope
from maildesk.models import Agent, AgentGroup, CsatRating, Customer, Event, Ticket, utcnow
from maildesk.store import tickets as store
from maildesk.store.statements import insert_ignoring_conflict
from maildesk.tickets import csat, outbox
from maildesk.tickets import writes as tickets
from maildesk.tickets.lifecycle import IllegalTransition, next_status


@dataclass(frozen=True)
class TicketPage:
    """What a page shows of a ticket and whom it speaks to."""

    id: int
    number: int
    subject: str
    status: str
    request_type: str
    requester_id: int | None
    customer_email: str
    customer_name: str
    language: str  # the requester's, else the ticket's


@dataclass(frozen=True)
class Rating:
    score: int
    reason: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CustomerPage:
    id: int
    email: str
    name: str
    language: str
    confirmed: bool
    confirmed_at: datetime | None


def ticket_page(engine: Engine, number: int) -> TicketPage | None:
    with Session(engine) as session:
        return _ticket_page(session, number)


def _ticket_page(session: Session, number: int) -> TicketPage | None:
    ticket, customer = Ticket.__table__, Customer.__table__
    row = session.connection().execute(
        select(ticket.c.id, ticket.c.number, ticket.c.subject, ticket.c.status,
               ticket.c.request_type, ticket.c.requester_id, ticket.c.language,
               customer.c.email, customer.c.name, customer.c.language.label("customer_language"))
        .outerjoin(customer, customer.c.id == ticket.c.requester_id)
        .where(ticket.c.number == number)
    ).first()
    if row is None:
        return None
    return TicketPage(row.id, row.number, row.subject, row.status, row.request_type,
                      row.requester_id, row.email or "", row.name or "",
                      row.customer_language or row.language)


def rating_of(engine: Engine, ticket_id: int) -> Rating | None:
    with Session(engine) as session:
        return _rating(session, ticket_id)


def _rating(session: Session, ticket_id: int) -> Rating | None:
    table = CsatRating.__table__
    row = session.connection().execute(
        select(table.c.score, table.c.reason, table.c.created_at, table.c.updated_at)
        .where(table.c.ticket_id == ticket_id)
    ).first()
    return None if row is None else Rating(row.score, row.reason, row.created_at, row.updated_at)


@dataclass(frozen=True)
class RatingResult:
    #: "recorded" (first answer), "changed", "unchanged" or "locked" (the
    #: change window is over: nothing was written)
    outcome: str
    rating: Rating


def record_rating(engine: Engine, settings: Settings, ticket: TicketPage, score: int,
                  reason: str, now: datetime | None = None) -> RatingResult:
    """Store the answer, or change it while the window is open.

    The unique ticket key makes two first answers at once safe: the second
    finds the first and changes it (or is refused when locked)."""
    now = now or utcnow()
    table = CsatRating.__table__
    with session_scope(engine) as session:
        existing = _rating(session, ticket.id)
        label = csat.SCALE[score - 1]
        if existing is None:
            values = {"ticket_id": ticket.id, "score": score, "reason": reason,
                      "customer_email": ticket.customer_email, "language": ticket.language,
                      "request_type": ticket.request_type, "changes": 0,
                      "created_at": now, "updated_at": now, **_handled_by(session, ticket.id)}
            if insert_ignoring_conflict(session, table, values, ["ticket_id"]) is not None:
                _event(session, ticket, "csat", f"{score} ({label})" + _with_reason(reason))
                return RatingResult("recorded", Rating(score, reason, now, now))
            existing = _rating(session, ticket.id)
            assert existing is not None
        if not csat.can_change(existing.created_at, now, settings.web.csat_change_days):
            return RatingResult("locked", existing)
        if (existing.score, existing.reason) == (score, reason):
            return RatingResult("unchanged", existing)
        session.connection().execute(
            update(table).where(table.c.ticket_id == ticket.id)
            .values(score=score, reason=reason, updated_at=now, changes=table.c.changes + 1))
        _event(session, ticket, "csat", f"{score} ({label})" + _with_reason(reason),
               old=f"{existing.score} ({csat.SCALE[existing.score - 1]})")
        return RatingResult("changed", Rating(score, reason, existing.created_at, now))


def _with_reason(reason: str) -> str:
    return f": {reason[:200]}" if reason else ""


def _handled_by(session: Session, ticket_id: int) -> dict[str, Any]:
    """Assignee, group and type at rating time (the report credits them)."""
    ticket, agent, group = Ticket.__table__, Agent.__table__, AgentGroup.__table__
    row = session.connection().execute(
        select(agent.c.email, group.c.name)
        .select_from(ticket)
        .outerjoin(agent, agent.c.id == ticket.c.assignee_id)
        .outerjoin(group, group.c.id == ticket.c.group_id)
        .where(ticket.c.id == ticket_id)
    ).first()
    return {"agent_email": row[0] if row else None, "group_name": row[1] if row else None}


def _event(session: Session, ticket: TicketPage, field: str, new: str,
           old: str | None = None) -> None:
    actor = ticket.customer_email or "customer"
    store.insert_many(session, Event, [tickets.event(ticket.id, actor, field, new, old)])


@dataclass(frozen=True)
class SolveResult:
    #: "solved", "already_solved" or "closed" (final: nothing changes)
    outcome: str
    outbox_ids: tuple[int, ...] = ()


def mark_solved(engine: Engine, settings: Settings, secret: bytes,
                number: int) -> SolveResult:
    """The customer's "my request is solved" (seed 001): the ticket becomes
    solved with an event, the customer gets the thanks-and-survey mail and
    the agent is told, all in one transaction. The caller hands the outbox
    ids to the broker after the commit."""
    with session_scope(engine) as session:
        return solve_in(session, settings, secret, number, None,
                        "marked solved through the link in an agent's reply")


def solve_in(session: Session, settings: Settings, secret: bytes, number: int,
             actor_email: str | None, how: str) -> SolveResult:
    """mark_solved inside the caller's transaction (the portal checks the
    session and the access rule in the same one); `actor_email` None: the
    requester."""
    ticket = store.ticket_row(session, number)
    if ticket is None:
        raise LookupError(f"no ticket #{number}")
    try:
        transition = next_status(ticket["status"], "customer_marks_solved")
    except IllegalTransition:
        return SolveResult("closed")
    if transition.status == ticket["status"]:
        return SolveResult("already_solved")
    if actor_email is None:
        actor = store.customer_address(session, ticket["requester_id"])
        actor_email = actor.email if actor else "customer"
    values, events = tickets.status_change(ticket, transition.status, actor_email)
    events.append(tickets.event(ticket["id"], actor_email, "solved_by_customer", how))
    table = Ticket.__table__
    # Conditional on the status we read: of two submits at once (a double
    # click), one changes the ticket and sends the mails, the other nothing.
    changed = session.connection().execute(
        update(table).where(table.c.id == ticket["id"], table.c.status == ticket["status"])
        .values(updated_at=utcnow(), **values)).rowcount
    if not changed:
        return SolveResult("already_solved")
    store.insert_many(session, Event, events)
    ids = outbox.notify(session, settings, secret, number, "solved_by_customer")
    return SolveResult("solved", tuple(ids))


def customer_page(engine: Engine, customer_id: int) -> CustomerPage | None:
    table = Customer.__table__
    with Session(engine) as session:
        row = session.connection().execute(
            select(table.c.id, table.c.email, table.c.name, table.c.language,
                   table.c.confirmed, table.c.confirmed_at).where(table.c.id == customer_id)
        ).first()
    if row is None:
        return None
    return CustomerPage(row.id, row.email, row.name, row.language, bool(row.confirmed),
                        row.confirmed_at)


def confirm_customer(engine: Engine, customer_id: int) -> bool:
    """Set the customer confirmed; False when they already were. The
    conditional update makes a double submit harmless."""
    table = Customer.__table__
    with session_scope(engine) as session:
        result = session.connection().execute(
            update(table).where(table.c.id == customer_id, table.c.confirmed.is_(False))
            .values(confirmed=True, confirmed_at=utcnow()))
        return bool(result.rowcount)

