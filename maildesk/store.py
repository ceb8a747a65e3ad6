"""Queries and row helpers. Every function takes a session and never commits:
the caller owns the transaction, so a ticket and its message, events and
participants are written all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from maildesk.config import Settings
from maildesk.models import (
    Agent,
    AgentGroup,
    Attachment,
    Counter,
    Customer,
    Event,
    GroupMember,
    InboundMail,
    InboundRaw,
    Message,
    Organisation,
    OrganisationDomain,
    Participant,
    Ticket,
)

TICKET_COUNTER = "ticket_number"


class StoreLookup:
    """The read-only `Lookup` that pipeline steps get, backed by a session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        ids = [m for m in message_ids if m]
        if not ids:
            return None
        statement = (
            select(Ticket.number)
            .join(Message, col(Message.ticket_id) == col(Ticket.id))
            .where(col(Message.message_id).in_(ids))
            .order_by(col(Message.id).desc())
            .limit(1)
        )
        return self._session.exec(statement).first()

    def organisation_for_domain(self, domain: str) -> int | None:
        return organisation_for_domain(self._session, domain)


def organisation_for_domain(session: Session, domain: str) -> int | None:
    statement = select(OrganisationDomain.organisation_id).where(
        OrganisationDomain.domain == domain.lower()
    )
    return session.exec(statement).first()


def next_ticket_number(session: Session, first: int) -> int:
    """Allocate a number with one UPDATE .. RETURNING, which holds the row
    lock until commit: concurrent ingests never get the same number."""
    result = session.execute(
        update(Counter)
        .where(col(Counter.name) == TICKET_COUNTER)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    ).first()
    if result is not None:
        return int(result[0])
    highest = session.exec(select(func.max(Ticket.number))).one()
    start = max(first, (highest or 0) + 1)
    session.add(Counter(name=TICKET_COUNTER, value=start))
    session.flush()
    return start


def find_inbound_by_key(session: Session, dedup_key: str) -> InboundMail | None:
    return session.exec(select(InboundMail).where(InboundMail.dedup_key == dedup_key)).first()


def claim_inbound(session: Session, inbound_id: int, states: tuple[str, ...]) -> bool:
    """Move the row to "processing" if it is in `states`; False otherwise.

    The UPDATE's row lock (PostgreSQL) or write lock (SQLite) lasts until
    the transaction ends, so exactly one processor wins.
    """
    result = session.execute(
        update(InboundMail)
        .where(col(InboundMail.id) == inbound_id, col(InboundMail.state).in_(states))
        .values(state="processing")
    )
    return bool(result.rowcount)


def raw_bytes(session: Session, inbound_id: int) -> bytes:
    raw = session.get(InboundRaw, inbound_id)
    return b"" if raw is None else raw.data


def get_or_create_organisation(session: Session, domain: str) -> Organisation:
    """The organisation owning `domain`, created on first sight (SPEC §8)."""
    org_id = organisation_for_domain(session, domain)
    if org_id is not None:
        organisation = session.get(Organisation, org_id)
        assert organisation is not None
        return organisation
    organisation = Organisation(name=domain)
    session.add(organisation)
    session.flush()
    session.add(OrganisationDomain(organisation_id=organisation.id, domain=domain))
    session.flush()
    return organisation


def get_or_create_customer(
    session: Session, email: str, name: str, language: str, organisation_id: int | None
) -> Customer:
    customer = session.exec(select(Customer).where(Customer.email == email)).first()
    if customer is None:
        customer = Customer(
            email=email, name=name, language=language, organisation_id=organisation_id
        )
        session.add(customer)
        session.flush()
    elif not customer.name and name:
        customer.name = name
    return customer


def ticket_by_number(session: Session, number: int) -> Ticket | None:
    return session.exec(select(Ticket).where(Ticket.number == number)).first()


def add_event(
    session: Session, ticket: Ticket, actor: str, field: str,
    old: str | None = None, new: str | None = None,
) -> None:
    session.add(Event(ticket_id=ticket.id, actor=actor, field=field, old=old, new=new))


def add_participants(
    session: Session, ticket: Ticket, people: Iterable[tuple[str, str]], role: str = "cc"
) -> list[str]:
    """Add (email, name) pairs not yet on the ticket; returns those added."""
    known = set(
        session.exec(select(Participant.email).where(Participant.ticket_id == ticket.id)).all()
    )
    added = []
    for email, name in people:
        if email in known:
            continue
        known.add(email)
        session.add(Participant(ticket_id=ticket.id, email=email, name=name, role=role))
        added.append(email)
    return added


def list_tickets(
    session: Session, status: str | None = None, search: str | None = None, limit: int = 200
) -> Sequence[Ticket]:
    statement = select(Ticket)
    if status:
        statement = statement.where(Ticket.status == status)
    if search:
        pattern = f"%{search.lower()}%"
        matching_messages = select(Message.ticket_id).where(
            or_(func.lower(Message.text).like(pattern), func.lower(Message.from_addr).like(pattern))
        )
        conditions = [
            func.lower(Ticket.subject).like(pattern),
            col(Ticket.id).in_(matching_messages),
        ]
        if search.lstrip("#").isdigit():
            conditions.append(Ticket.number == int(search.lstrip("#")))
        statement = statement.where(or_(*conditions))
    statement = statement.order_by(col(Ticket.number).desc()).limit(limit)
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


def list_inbound(
    session: Session, state: str | None = None, outcome: str | None = None, limit: int = 200
) -> Sequence[InboundMail]:
    statement = select(InboundMail)
    if state:
        statement = statement.where(InboundMail.state == state)
    if outcome:
        statement = statement.where(InboundMail.outcome == outcome)
    return session.exec(statement.order_by(col(InboundMail.id).desc()).limit(limit)).all()


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
