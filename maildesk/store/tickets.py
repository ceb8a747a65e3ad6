"""Queries and row helpers. Every function takes a session and never commits:
the caller owns the transaction, so a ticket and its message, events and
participants are written all or nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from maildesk import access
from maildesk.config import Settings
from maildesk.models import (
    Agent,
    AgentGroup,
    Attachment,
    Counter,
    Customer,
    Event,
    GroupMember,
    Message,
    Organisation,
    OrganisationDomain,
    Participant,
    Ticket,
    utcnow,
)
from maildesk.store import access as ticket_access
from maildesk.store import search as search_index
from maildesk.store.statements import (
    insert_ignoring_conflict,
    insert_stmt,
    select_where,
    update_by_id,
)
from maildesk.types import Address

TICKET_COUNTER = "ticket_number"
#: References headers can be long; the newest ids are the ones that matter.
MAX_LOOKUP_IDS = 100


@functools.cache
def _bump_stmt() -> Any:
    table = Counter.__table__
    return (update(table).where(table.c.name == bindparam("_name"))
            .values(value=table.c.value + 1).returning(table.c.value))


def organisation_for_domain(session: Session, domain: str) -> int | None:
    statement = select_where(OrganisationDomain.__table__, "domain", "organisation_id")
    return session.connection().execute(statement, {"_key": domain.lower()}).scalar()


#: PostgreSQL: the sequence behind ticket numbers (migration 0008).
TICKET_SEQUENCE = "ticket_number_seq"
#: pg_advisory_xact_lock key for lifting the sequence to first_ticket_number.
_FIRST_NUMBER_LOCK = 0x6D646E72


def next_ticket_number(session: Session, first: int) -> int:
    """A new ticket number, never handed out twice.

    PostgreSQL: nextval() of a sequence, which holds no lock, so several
    instances make tickets at once (a counter row would serialise them
    from the first new ticket of a batch until its commit, and deadlock
    against their other row locks). Numbers a rolled-back transaction took
    are skipped, as with any sequence. SQLite: the counter row (one writer
    anyway)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _next_from_sequence(connection, first)
    table = Counter.__table__
    value = connection.execute(_bump_stmt(), {"_name": TICKET_COUNTER}).scalar()
    if value is None:
        highest = connection.execute(sa_select(func.max(Ticket.__table__.c.number))).scalar()
        start = max(first, (highest or 0) + 1)
        insert_ignoring_conflict(
            session, table, {"name": TICKET_COUNTER, "value": start - 1}, ["name"]
        )
        value = connection.execute(_bump_stmt(), {"_name": TICKET_COUNTER}).scalar_one()
    return int(value)


def _next_from_sequence(connection: Any, first: int) -> int:
    """nextval(); below `first` (a new database, or first_ticket_number
    raised) the sequence is lifted once, under a transaction-scoped advisory
    lock so that two instances never lift it to the same number."""
    nextval = text(f"SELECT nextval('{TICKET_SEQUENCE}')")
    value = int(connection.execute(nextval).scalar_one())
    if value >= first:
        return value
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _FIRST_NUMBER_LOCK})
    value = int(connection.execute(nextval).scalar_one())
    if value >= first:
        return value
    highest = connection.execute(sa_select(func.max(Ticket.__table__.c.number))).scalar()
    start = max(first, (highest or 0) + 1)
    connection.execute(text(f"SELECT setval('{TICKET_SEQUENCE}', :value)"), {"value": start})
    return start


def organisation_id_for(session: Session, domain: str) -> int:
    """The organisation owning `domain`, created on first sight (SPEC §8)."""
    found = organisation_for_domain(session, domain)
    if found is not None:
        return found
    org_id = session.execute(
        insert(Organisation.__table__).values(name=domain, created_at=utcnow())
        .returning(Organisation.__table__.c.id)
    ).scalar_one()
    claimed = insert_ignoring_conflict(
        session, OrganisationDomain.__table__,
        {"organisation_id": org_id, "domain": domain}, ["domain"],
    )
    if claimed is None:  # another process created it meanwhile: use theirs
        session.execute(delete(Organisation.__table__).where(
            Organisation.__table__.c.id == org_id))
        org_id = organisation_for_domain(session, domain)
    return int(org_id)


@dataclass(frozen=True)
class CustomerRef:
    id: int
    organisation_id: int | None
    language: str
    created: bool = False  # made by this call: a new customer


def customer_for(
    session: Session, email: str, name: str, language: str, organisation_id: int | None
) -> CustomerRef:
    """Find the customer by address or create them (race-safe)."""
    table = Customer.__table__
    query = select_where(table, "email", "id", "organisation_id", "language", "name")
    connection = session.connection()
    row = connection.execute(query, {"_key": email}).first()
    created = False
    if row is None:
        created = None is not insert_ignoring_conflict(session, table, {
            "email": email, "name": name, "language": language,
            "organisation_id": organisation_id, "role": "user", "info_recipient": False,
            "confirmed": False, "bouncing": False, "created_at": utcnow(),
        }, ["email"])
        row = connection.execute(query, {"_key": email}).one()
    elif not row.name and name:
        connection.execute(update(table).where(table.c.id == row.id).values(name=name))
    return CustomerRef(row.id, row.organisation_id, row.language, created)


def insert_returning_id(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int:
    statement = insert_stmt(model.__table__, True)  # type: ignore[attr-defined]
    return int(session.connection().execute(statement, values).scalar_one())


def insert_many(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.connection().execute(insert_stmt(model.__table__), rows)  # type: ignore[attr-defined]


def add_participant(session: Session, ticket_id: int, email: str, name: str,
                    role: str = "cc") -> bool:
    """True when the address was not yet on the ticket."""
    added = insert_ignoring_conflict(
        session, Participant.__table__,
        {"ticket_id": ticket_id, "email": email, "name": name, "role": role},
        ["ticket_id", "email"],
    )
    return added is not None


def set_participant_role(session: Session, ticket_id: int, email: str, role: str) -> bool:
    """True when the address is on the ticket (now with `role`)."""
    table = Participant.__table__
    result = session.connection().execute(
        update(table).where(table.c.ticket_id == ticket_id, table.c.email == email)
        .values(role=role))
    return bool(result.rowcount)


def remove_participant(session: Session, ticket_id: int, email: str) -> bool:
    """True when the address was on the ticket: it is no longer a
    participant (no copies, no threading by subject tag alone)."""
    table = Participant.__table__
    result = session.connection().execute(
        delete(table).where(table.c.ticket_id == ticket_id, table.c.email == email))
    return bool(result.rowcount)


def touch_ticket(session: Session, ticket_id: int) -> None:
    table = Ticket.__table__
    session.execute(update(table).where(table.c.id == ticket_id).values(updated_at=utcnow()))


def ticket_by_number(session: Session, number: int) -> Ticket | None:
    return session.exec(select(Ticket).where(Ticket.number == number)).first()


@dataclass(frozen=True)
class TicketFilter:
    """What a ticket list may be narrowed to (None: any). `assignee` and
    `group` take "none" for tickets without one; addresses and names are
    compared lower-cased."""

    assignee: str | None = None
    group: str | None = None
    organisation: str | None = None
    requester: str | None = None
    request_type: str | None = None
    category: str | None = None
    channel: str | None = None
    #: 2nd-level support: the level (1/2) and the requester's kind
    #: (internal: a partner / external).
    support_level: int | None = None
    requester_kind: str | None = None
    #: Only what this customer may see (access.py): the customer-facing reads.
    visible_to: access.Viewer | None = None


def _filtered(statement: Any, wanted: TicketFilter) -> Any:
    if wanted.visible_to is not None:
        statement = statement.where(ticket_access.visible(wanted.visible_to))
    if wanted.assignee == "none":
        statement = statement.where(col(Ticket.assignee_id).is_(None))
    elif wanted.assignee:
        statement = statement.where(col(Ticket.assignee_id).in_(
            select(Agent.id).where(func.lower(Agent.email) == wanted.assignee.lower())))
    if wanted.group == "none":
        statement = statement.where(col(Ticket.group_id).is_(None))
    elif wanted.group:
        statement = statement.where(col(Ticket.group_id).in_(
            select(AgentGroup.id).where(func.lower(AgentGroup.name) == wanted.group.lower())))
    if wanted.organisation:
        statement = statement.where(col(Ticket.organisation_id).in_(
            select(Organisation.id).where(
                func.lower(Organisation.name) == wanted.organisation.lower())))
    if wanted.requester:
        statement = statement.where(col(Ticket.requester_id).in_(
            select(Customer.id).where(Customer.email == wanted.requester.lower())))
    for field in ("request_type", "category", "channel"):
        value = getattr(wanted, field)
        if value:
            statement = statement.where(getattr(Ticket, field) == value)
    if wanted.support_level is not None:
        statement = statement.where(Ticket.support_level == wanted.support_level)
    if wanted.requester_kind:
        statement = statement.where(col(Ticket.requester_id).in_(
            select(Customer.id).where(Customer.kind == wanted.requester_kind)))
    return statement


def list_tickets(
    session: Session, status: str | None = None, search: str | None = None,
    limit: int | None = 200, *, before: int | None = None,
    updated_since: datetime | None = None, wanted: TicketFilter | None = None,
) -> Sequence[Ticket]:
    """Newest first. `before`: only numbers below it (the API's cursor, stable
    while new tickets come in); `updated_since`: changed at or after it."""
    statement = select(Ticket)
    if status:
        statement = statement.where(Ticket.status == status)
    if wanted is not None:
        statement = _filtered(statement, wanted)
    if before is not None:
        statement = statement.where(Ticket.number < before)
    if updated_since is not None:
        statement = statement.where(Ticket.updated_at >= updated_since)
    if search:
        statement = statement.where(search_index.matching_tickets(session, search))
    statement = statement.order_by(col(Ticket.number).desc())
    if limit is not None:
        statement = statement.limit(limit)
    return session.exec(statement).all()


def customers_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Customer]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Customer).where(col(Customer.id).in_(wanted))).all()
    return {row.id: row for row in rows if row.id is not None}


def organisations_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Organisation]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Organisation).where(col(Organisation.id).in_(wanted))).all()
    return {row.id: row for row in rows if row.id is not None}


def participants_of(session: Session, ticket_ids: Iterable[int]) -> dict[int, list[Participant]]:
    ids = list(ticket_ids)
    result: dict[int, list[Participant]] = {i: [] for i in ids}
    if ids:
        statement = select(Participant).where(col(Participant.ticket_id).in_(ids))
        for row in session.exec(statement.order_by(col(Participant.id))).all():
            result[row.ticket_id].append(row)
    return result


def messages_of(session: Session, ticket_id: int) -> Sequence[Message]:
    statement = select(Message).where(Message.ticket_id == ticket_id).order_by(col(Message.id))
    return session.exec(statement).all()


def attachments_of(session: Session, message_ids: Iterable[int]) -> dict[int, list[Attachment]]:
    ids = list(message_ids)
    result: dict[int, list[Attachment]] = {i: [] for i in ids}
    if ids:
        statement = select(Attachment).where(col(Attachment.message_id).in_(ids))
        for row in session.exec(statement.order_by(col(Attachment.id))).all():
            result[row.message_id].append(row)
    return result


def events_of(session: Session, ticket_id: int) -> Sequence[Event]:
    statement = select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id))
    return session.exec(statement).all()


def sync_directory(session: Session, settings: Settings) -> None:
    """Make the agents and groups of the config exist in the database.

    The config is the source of truth for who works here; rows are added or
    updated, never deleted (history keeps pointing at them).
    """
    agents = {a.email: a for a in session.exec(select(Agent)).all()}
    for entry in settings.agents:
        agent = agents.get(entry.email)
        if agent is None:
            agent = Agent(email=entry.email, name=entry.name, language=entry.language)
            session.add(agent)
            agents[entry.email] = agent
        else:
            agent.name, agent.language, agent.active = entry.name, entry.language, True
    session.flush()
    groups = {g.name: g for g in session.exec(select(AgentGroup)).all()}
    for entry in settings.groups:
        group = groups.get(entry.name)
        if group is None:
            group = AgentGroup(name=entry.name, email=entry.email)
            session.add(group)
            session.flush()
            groups[entry.name] = group
        else:
            group.email = entry.email
        members = set(
            session.exec(select(GroupMember.agent_id).where(GroupMember.group_id == group.id)).all()
        )
        for email in entry.members:
            agent = agents.get(email.lower())
            if agent is not None and agent.id not in members:
                session.add(GroupMember(group_id=group.id, agent_id=agent.id))
    session.flush()


def group_by_name(session: Session, name: str) -> AgentGroup | None:
    return session.exec(select(AgentGroup).where(AgentGroup.name == name)).first()


def ticket_row(session: Session, number: int) -> dict[str, Any] | None:
    """The ticket's columns as a dict (Core: the hot path avoids the ORM)."""
    row = session.connection().execute(
        select_where(Ticket.__table__, "number"), {"_key": number}).first()
    return None if row is None else dict(row._mapping)


def update_ticket(session: Session, ticket_id: int, **values: Any) -> None:
    values.setdefault("updated_at", utcnow())
    session.connection().execute(update_by_id(Ticket.__table__),
                                 {"_row_id": ticket_id, **values})


def participants_of_ticket(session: Session, ticket_id: int) -> list[tuple[str, str, str]]:
    table = Participant.__table__
    rows = session.connection().execute(
        sa_select(table.c.email, table.c.name, table.c.role)
        .where(table.c.ticket_id == ticket_id).order_by(table.c.id)
    ).all()
    return [(r.email, r.name, r.role) for r in rows]


def mark_bouncing(session: Session, emails: Iterable[str], reason: str = "") -> int:
    """Flag customers whose address bounced one of our mails, with the time
    and the bounce's reason (notify.bounce_expiry_days counts from it)."""
    wanted = sorted({e.lower() for e in emails if e})
    if not wanted:
        return 0
    table = Customer.__table__
    result = session.connection().execute(
        update(table).where(table.c.email.in_(wanted))
        .values(bouncing=True, bounced_at=utcnow(), bounce_reason=reason[:1000])
    )
    return int(result.rowcount or 0)


def clear_bouncing(session: Session, email: str) -> bool:
    """The customer wrote to us again: their address works. True when a
    bounce mark was cleared."""
    table = Customer.__table__
    result = session.connection().execute(
        update(table).where(table.c.email == email.lower(), table.c.bouncing.is_(True))
        .values(bouncing=False, bounced_at=None, bounce_reason="")
    )
    return bool(result.rowcount)


def thread_message_ids(session: Session, ticket_id: int, limit: int = 20) -> list[str]:
    """The ticket's Message-IDs, oldest first (References of a reply)."""
    table = Message.__table__
    rows = session.connection().execute(
        sa_select(table.c.message_id)
        .where(table.c.ticket_id == ticket_id, table.c.message_id != "",
               table.c.direction != "internal")
        .order_by(table.c.id)
    ).scalars().all()
    return list(rows[:1]) + list(rows[1:][-(limit - 1):]) if rows else []


def customer_address(session: Session, customer_id: int | None) -> Address | None:
    if customer_id is None:
        return None
    table = Customer.__table__
    row = session.connection().execute(
        sa_select(table.c.email, table.c.name).where(table.c.id == customer_id)
    ).first()
    return None if row is None else Address(row.email, row.name)


def agent_emails(session: Session) -> dict[int, str]:
    table = Agent.__table__
    rows = session.connection().execute(sa_select(table.c.id, table.c.email)).all()
    return {r.id: r.email for r in rows}


def group_names(session: Session) -> dict[int, str]:
    table = AgentGroup.__table__
    rows = session.connection().execute(sa_select(table.c.id, table.c.name)).all()
    return {r.id: r.name for r in rows}
