"""The transactional outbox: notification rows written with their cause.

`notify` runs inside the caller's transaction (never commits): the ticket
change and the mails it causes commit together or not at all. After the
commit the caller hands the returned ids to the broker; if that is lost,
the worker's sweep finds the rows anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import Session

from maildesk.config import Settings
from maildesk.mail import tokens
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
from maildesk.tickets import notices, second_level, snapshot

STATES = ("queued", "sending", "sent", "failed")


def _statements() -> dict[str, Any]:
    """The hot-path queries, built once: building SQLAlchemy statement
    objects per call cost more than running them."""
    customer, participant = Customer.__table__, Participant.__table__
    agent, member, group = Agent.__table__, GroupMember.__table__, AgentGroup.__table__
    ticket, outbox = Ticket.__table__, Outbox.__table__
    cc_customer = customer.alias("cc_customer")
    return {
        "ticket": select(ticket).where(ticket.c.number == bindparam("number")),
        "people": select(customer.c.email, customer.c.language, customer.c.bouncing,
                         customer.c.bounced_at)
        .where(customer.c.id == bindparam("requester_id"))
        .union_all(
            select(participant.c.email, cc_customer.c.language, cc_customer.c.bouncing,
                   cc_customer.c.bounced_at)
            .outerjoin(cc_customer, cc_customer.c.email == participant.c.email)
            .where(participant.c.ticket_id == bindparam("ticket_id"))
        ),
        "followers": select(participant.c.email)
        .where(participant.c.ticket_id == bindparam("ticket_id"),
               participant.c.role == "follower"),
        "agents": select(agent.c.id, agent.c.email).where(agent.c.active),
        "members": select(agent.c.email).join(member, member.c.agent_id == agent.c.id)
        .where(member.c.group_id == bindparam("group_id"), agent.c.active),
        "group": select(group.c.email).where(group.c.id == bindparam("group_id")),
        "recent": select(outbox.c.to_addrs, func.count())
        .where(outbox.c.to_addrs.in_(bindparam("addresses", expanding=True)),
               outbox.c.created_at >= bindparam("since"), outbox.c.auto_submitted.is_not(None))
        .group_by(outbox.c.to_addrs),
    }


_SQL = _statements()


def _audience(session: Session, settings: Settings, ticket: dict[str, Any],
              skip_agent: str | None) -> notices.Audience:
    """Who could be told: a few small indexed queries (this runs for every
    new ticket, so it is on the ingest hot path)."""
    connection = session.connection()
    people = connection.execute(
        _SQL["people"], {"requester_id": ticket["requester_id"], "ticket_id": ticket["id"]}
    ).all()
    requester = people[0] if people and ticket["requester_id"] else None
    cc = [p.email for p in people[1 if requester else 0:]]
    followers = (connection.execute(_SQL["followers"], {"ticket_id": ticket["id"]})
                 .scalars().all() if cc else [])
    agents = connection.execute(_SQL["agents"]).all()
    assignee = next((a.email for a in agents if a.id == ticket["assignee_id"]), None)
    members: Sequence[str] = ()
    group_address = None
    if ticket["group_id"]:
        members = connection.execute(
            _SQL["members"], {"group_id": ticket["group_id"]}).scalars().all()
        group_address = connection.execute(
            _SQL["group"], {"group_id": ticket["group_id"]}).scalar()
    candidates = [p.email for p in people]
    end_customer = _end_customer(session, ticket)
    if end_customer is not None:
        candidates.append(end_customer.email)
    return notices.Audience(
        requester=requester.email if requester else None,
        requester_language=(requester.language if requester else None) or ticket["language"],
        participants=tuple(cc), followers=tuple(followers), assignee=assignee,
        group_members=tuple(members),
        group_address=group_address, all_agents=tuple(a.email for a in agents),
        agent_language=settings.mail.default_language,
        agent_languages=agent_languages(settings),
        ours=frozenset(settings.mail.addresses),
        bouncing=frozenset(p.email for p in people if notices.still_bouncing(
            bool(p.bouncing), p.bounced_at, utcnow(), settings.notify.bounce_expiry_days)),
        over_limit=_over_limit(session, settings, candidates),
        channel=ticket["channel"],
        agents_to_skip=frozenset({skip_agent}) if skip_agent else frozenset(),
        category_address=_category_address(settings, ticket),
        **_second_level(ticket, end_customer, settings),
    )


def agent_languages(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Each configured agent's own language ([[agents]] language): notices to
    an agent are written in it (notices.language_of_agent)."""
    return tuple((agent.email, agent.language) for agent in settings.agents)


def _category_address(settings: Settings, ticket: dict[str, Any]) -> str | None:
    """The notify address of the ticket's main category in the config."""
    category = settings.category(ticket.get("category"))
    return category.notify if category is not None else None


def _end_customer(session: Session, ticket: dict[str, Any]) -> Any:
    """The end customer of a partner's ticket (2nd-level support), or None."""
    if not ticket.get("end_customer_id"):
        return None
    table = Customer.__table__
    return session.connection().execute(
        select(table.c.email, table.c.name, table.c.language, table.c.bouncing)
        .where(table.c.id == ticket["end_customer_id"])).first()


def _second_level(ticket: dict[str, Any], end_customer: Any,
                  settings: Settings) -> dict[str, Any]:
    """The Audience fields of 2nd-level support (tickets/second_level.py);
    a bouncing end customer is not there to be told."""
    reachable = end_customer is not None and not end_customer.bouncing
    return {"support_level": ticket.get("support_level") or 1,
            "end_customer": end_customer.email if reachable else None,
            "end_customer_language": (end_customer.language if end_customer is not None
                                      else None) or settings.mail.default_language}


def _row_payload(session: Session, ticket: dict[str, Any], kind: str,
                 payload: dict[str, Any] | None) -> str:
    """The payload as stored; the end customer's notice names whom it greets
    (the template's `customer` is the requester, the partner). It carries
    the ticket as it is now (tickets/snapshot.py): a late mail describes it so."""
    data = snapshot.with_snapshot(payload, ticket)
    if kind == second_level.END_CUSTOMER_CLOSED_KIND:
        person = _end_customer(session, ticket)
        if person is not None:
            data["end_customer"] = {"name": person.name, "email": person.email}
    return json.dumps(data, ensure_ascii=False)


def _over_limit(session: Session, settings: Settings, addresses: Iterable[str]) -> frozenset[str]:
    """Addresses that got `auto_limit_count` automatic mails in the window."""
    wanted = list(addresses)
    if not wanted:
        return frozenset()
    since = utcnow() - timedelta(hours=settings.notify.auto_limit_hours)
    rows = session.connection().execute(
        _SQL["recent"], {"addresses": wanted, "since": since}).all()
    return frozenset(to for to, count in rows if count >= settings.notify.auto_limit_count)


def notify(session: Session, settings: Settings, secret: bytes, ticket_number: int, event: str,
           *, message_row_id: int | None = None, payload: dict[str, Any] | None = None,
           skip_agent: str | None = None) -> list[int]:
    """Write the outbox rows `event` causes; returns their ids."""
    ticket = session.connection().execute(_SQL["ticket"], {"number": ticket_number}).first()
    if ticket is None:
        return []
    row = dict(ticket._mapping)
    plans = notices.plan(event, _audience(session, settings, row, skip_agent))
    if not plans:
        return []
    now = utcnow()
    rows = [
        {
            "created_at": now, "kind": item.kind, "ticket_id": row["id"],
            "message_row_id": message_row_id, "to_addrs": ", ".join(item.to),
            "cc_addrs": ", ".join(item.cc), "language": item.language,
            "auto_submitted": item.auto_submitted,
            "message_id": _message_id(session, secret, settings, ticket_number,
                                      message_row_id, item.kind),
            "payload": _row_payload(session, row, item.kind, payload),
            "state": "queued", "attempts": 0, "next_attempt_at": now,
        }
        for item in plans
    ]
    table = Outbox.__table__
    return list(session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    ).scalars().all())


def notify_third_party(session: Session, settings: Settings, secret: bytes, ticket_number: int,
                       event: str, *, request_id: int, third_party: str | None = None,
                       language: str | None = None, asker: str | None = None,
                       message_row_id: int | None = None,
                       payload: dict[str, Any] | None = None) -> list[int]:
    """The rows of a third-party event (notices.THIRD_PARTY_EVENTS): the
    ask/forward mail to `third_party`, whose Message-ID names the request
    (an answer threads back by it), or the notice of an answer to the agent
    who asked (`asker`). The payload carries the request id: the worker
    gives the mail the request's own reply address."""
    ticket = session.connection().execute(_SQL["ticket"], {"number": ticket_number}).first()
    if ticket is None:
        return []
    row = dict(ticket._mapping)
    audience = replace(_audience(session, settings, row, None), third_party=third_party,
                       third_party_language=language or row["language"]
                       or settings.mail.default_language, asker=asker)
    now = utcnow()
    rows = [
        {
            "created_at": now, "kind": item.kind, "ticket_id": row["id"],
            "message_row_id": message_row_id, "to_addrs": ", ".join(item.to),
            "cc_addrs": "", "language": item.language, "auto_submitted": item.auto_submitted,
            "message_id": (tokens.new_message_id(secret, ticket_number, settings.message_id_domain)
                           if event == "statement" else tokens.third_party_message_id(
                               secret, ticket_number, request_id, settings.message_id_domain)),
            "payload": json.dumps({**snapshot.with_snapshot(payload, row),
                                   "third_party_id": request_id}, ensure_ascii=False),
            "state": "queued", "attempts": 0, "next_attempt_at": now,
        }
        for item in notices.plan(event, audience)
    ]
    if not rows:
        return []
    table = Outbox.__table__
    return list(session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    ).scalars().all())


def notify_agent(session: Session, settings: Settings, secret: bytes, ticket_number: int,
                 agent_email: str, payload: dict[str, Any],
                 kind: str = "command_result") -> list[int]:
    """A mail to one agent about their own mail: the answer to their
    #commands (applied, or why not), or that a mail in their name was held."""
    ticket = session.connection().execute(
        select(Ticket.__table__.c.id).where(Ticket.__table__.c.number == ticket_number)
    ).scalar()
    if ticket is None:
        return []
    if kind != "command_result" and agent_email in _over_limit(session, settings, [agent_email]):
        # Forged mails in an agent's name must not mail-bomb the agent: past
        # notify.auto_limit_count in the window they are held silently.
        return []
    outbox_id = session.connection().execute(
        insert(Outbox.__table__).returning(Outbox.__table__.c.id),
        {
            "created_at": utcnow(), "kind": kind, "ticket_id": ticket,
            "message_row_id": None, "to_addrs": agent_email, "cc_addrs": "",
            "language": notices.language_of_agent(agent_email, notices.Audience(
                None, agent_language=settings.mail.default_language,
                agent_languages=agent_languages(settings))),
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
    if message_row_id is not None and kind in ("agent_reply", "solution",
                                               second_level.SOLVED_KIND):
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
        # outer: an announcement's rows have no ticket (ticket: None)
        select(table, ticket.c.number).outerjoin(ticket, ticket.c.id == table.c.ticket_id)
        .order_by(table.c.id.desc()).limit(limit)
    )
    if state:
        statement = statement.where(table.c.state == state)
    rows = session.connection().execute(statement).all()
    return [
        {
            "id": r.id, "ticket": r.number, "announcement": r.announcement_id,
            "kind": r.kind, "state": r.state,
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
