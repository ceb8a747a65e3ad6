"""The transactional outbox: notification rows written with their cause.

`notify` runs inside the caller's transaction (never commits): the ticket
change and the mails it causes commit together or not at all. After the
commit the caller hands the returned ids to the broker; if that is lost,
the worker's sweep finds the rows anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

from maildesk import notices, tokens
from maildesk.config import Settings
from maildesk.models import (
    Agent,
    AgentGroup,
    Customer,
    GroupMember,
    Outbox,
    Participant,
    Ticket,
    utcnow,
)

STATES = ("queued", "sending", "sent", "failed")


def _audience(session: Session, settings: Settings, ticket: dict[str, Any],
              skip_agent: str | None) -> notices.Audience:
    connection = session.connection()
    customer, participant = Customer.__table__, Participant.__table__
    agent, member, group = Agent.__table__, GroupMember.__table__, AgentGroup.__table__
    requester = connection.execute(
        select(customer.c.email, customer.c.language).where(customer.c.id == ticket["requester_id"])
    ).first()
    cc = connection.execute(
        select(participant.c.email).where(participant.c.ticket_id == ticket["id"])
        .order_by(participant.c.id)
    ).scalars().all()
    assignee = None
    if ticket["assignee_id"]:
        assignee = connection.execute(
            select(agent.c.email).where(agent.c.id == ticket["assignee_id"])).scalar()
    members: Sequence[str] = ()
    group_address = None
    if ticket["group_id"]:
        members = connection.execute(
            select(agent.c.email).join(member, member.c.agent_id == agent.c.id)
            .where(member.c.group_id == ticket["group_id"], agent.c.active)
        ).scalars().all()
        group_address = connection.execute(
            select(group.c.email).where(group.c.id == ticket["group_id"])).scalar()
    everyone = connection.execute(select(agent.c.email).where(agent.c.active)).scalars().all()
    candidates = [a for a in (requester.email if requester else None, *cc) if a]
    return notices.Audience(
        requester=requester.email if requester else None,
        requester_language=(requester.language if requester else None) or ticket["language"],
        participants=tuple(cc), assignee=assignee, group_members=tuple(members),
        group_address=group_address, all_agents=tuple(everyone),
        agent_language=settings.mail.default_language,
        ours=frozenset(settings.mail.addresses),
        bouncing=_bouncing(session, candidates),
        over_limit=_over_limit(session, settings, candidates),
        channel=ticket["channel"],
        agents_to_skip=frozenset({skip_agent}) if skip_agent else frozenset(),
    )


def _bouncing(session: Session, addresses: Iterable[str]) -> frozenset[str]:
    wanted = list(addresses)
    if not wanted:
        return frozenset()
    table = Customer.__table__
    rows = session.connection().execute(
        select(table.c.email).where(table.c.email.in_(wanted), table.c.bouncing)
    ).scalars().all()
    return frozenset(rows)


def _over_limit(session: Session, settings: Settings, addresses: Iterable[str]) -> frozenset[str]:
    """Addresses that got `auto_limit_count` automatic mails in the window."""
    wanted = list(addresses)
    if not wanted:
        return frozenset()
    table = Outbox.__table__
    since = utcnow() - timedelta(hours=settings.notify.auto_limit_hours)
    rows = session.connection().execute(
        select(table.c.to_addrs, func.count())
        .where(table.c.to_addrs.in_(wanted), table.c.created_at >= since,
               table.c.auto_submitted.is_not(None))
        .group_by(table.c.to_addrs)
    ).all()
    return frozenset(to for to, count in rows if count >= settings.notify.auto_limit_count)


def notify(session: Session, settings: Settings, secret: bytes, ticket_number: int, event: str,
           *, message_row_id: int | None = None, payload: dict[str, Any] | None = None,
           skip_agent: str | None = None) -> list[int]:
    """Write the outbox rows `event` causes; returns their ids."""
    ticket_table = Ticket.__table__
    ticket = session.connection().execute(
        select(ticket_table).where(ticket_table.c.number == ticket_number)
    ).first()
    if ticket is None:
        return []
    row = dict(ticket._mapping)
    plans = notices.plan(event, _audience(session, settings, row, skip_agent))
    ids = []
    for item in plans:
        ids.append(session.connection().execute(
            insert(Outbox.__table__).returning(Outbox.__table__.c.id),
            {
                "created_at": utcnow(), "kind": item.kind, "ticket_id": row["id"],
                "message_row_id": message_row_id, "to_addrs": ", ".join(item.to),
                "cc_addrs": ", ".join(item.cc), "language": item.language,
                "auto_submitted": item.auto_submitted,
                "message_id": _message_id(session, secret, settings, ticket_number,
                                          message_row_id, item.kind),
                "payload": json.dumps(payload or {}, ensure_ascii=False),
                "state": "queued", "attempts": 0, "next_attempt_at": utcnow(),
            },
        ).scalar_one())
    return ids


def notify_agent(session: Session, settings: Settings, secret: bytes, ticket_number: int,
                 agent_email: str, payload: dict[str, Any]) -> list[int]:
    """The answer to an agent's #commands: applied, or why not."""
    ticket = session.connection().execute(
        select(Ticket.__table__.c.id).where(Ticket.__table__.c.number == ticket_number)
    ).scalar()
    if ticket is None:
        return []
    outbox_id = session.connection().execute(
        insert(Outbox.__table__).returning(Outbox.__table__.c.id),
        {
            "created_at": utcnow(), "kind": "command_result", "ticket_id": ticket,
            "message_row_id": None, "to_addrs": agent_email, "cc_addrs": "",
            "language": settings.mail.default_language,
            "auto_submitted": notices.AUTO_REPLIED,
            "message_id": tokens.new_message_id(secret, ticket_number,
                                                settings.message_id_domain),
            "payload": json.dumps(payload, ensure_ascii=False),
            "state": "queued", "attempts": 0, "next_attempt_at": utcnow(),
        },
    ).scalar_one()
    return [outbox_id]


def _message_id(session: Session, secret: bytes, settings: Settings, number: int,
                message_row_id: int | None, kind: str) -> str:
    """An agent reply is sent with the Message-ID its message row already
    has (a customer's answer threads by it); everything else gets a new one."""
    if message_row_id is not None and kind in ("agent_reply", "solution"):
        from maildesk.models import Message

        table = Message.__table__
        existing = session.connection().execute(
            select(table.c.message_id).where(table.c.id == message_row_id)).scalar()
        if existing:
            return str(existing)
    return tokens.new_message_id(secret, number, settings.message_id_domain)


def list_rows(session: Session, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    table, ticket = Outbox.__table__, Ticket.__table__
    statement = (
        select(table, ticket.c.number).join(ticket, ticket.c.id == table.c.ticket_id)
        .order_by(table.c.id.desc()).limit(limit)
    )
    if state:
        statement = statement.where(table.c.state == state)
    rows = session.connection().execute(statement).all()
    return [
        {
            "id": r.id, "ticket": r.number, "kind": r.kind, "state": r.state,
            "to": [a for a in r.to_addrs.split(", ") if a],
            "cc": [a for a in r.cc_addrs.split(", ") if a],
            "language": r.language, "attempts": r.attempts, "message_id": r.message_id,
            "created_at": _iso(r.created_at), "sent_at": _iso(r.sent_at),
            "next_attempt_at": _iso(r.next_attempt_at) if r.state == "queued" else None,
            "last_error": r.last_error,
        }
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def retry(session: Session, outbox_id: int) -> str | None:
    """Put a failed (or stuck) row back in the queue; returns its old state,
    None when there is no such row. A sent row is never sent again."""
    table = Outbox.__table__
    state = session.connection().execute(
        select(table.c.state).where(table.c.id == outbox_id)).scalar()
    if state is None or state == "sent":
        return state
    session.connection().execute(
        update(table).where(table.c.id == outbox_id)
        .values(state="queued", attempts=0, next_attempt_at=utcnow(), last_error=None)
    )
    return str(state)
