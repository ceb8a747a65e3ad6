"""The read-only `Lookup` (types.py) the pipeline's steps get, over a session."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from maildesk.models import (
    Customer,
    InboundMail,
    Message,
    Organisation,
    Participant,
    ThirdPartyRequest,
    Ticket,
)
from maildesk.store.access import sees_organisation
from maildesk.store.tickets import MAX_LOOKUP_IDS, organisation_for_domain
from maildesk.types import ThirdPartyInfo, TicketInfo


@functools.cache
def _recent_stmt() -> Any:
    table = InboundMail.__table__
    return sa_select(func.count()).where(table.c.sender == bindparam("_sender"),
                                         table.c.received_at >= bindparam("_since"))


class StoreLookup:
    """The read-only `Lookup` that pipeline steps get, backed by a session.

    Every question is one indexed query; threading a reply never scans.
    """

    def __init__(self, session: Session) -> None:
        self._connection = session.connection()
        self._session = session

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        ids = [m for m in message_ids if m][:MAX_LOOKUP_IDS]
        if not ids:
            return None
        message, ticket = Message.__table__, Ticket.__table__
        statement = (
            sa_select(ticket.c.number)
            .join(message, message.c.ticket_id == ticket.c.id)
            .where(message.c.message_id.in_(ids))
            .order_by(message.c.id.desc())
            .limit(1)
        )
        return self._connection.execute(statement).scalar()

    def organisation_for_domain(self, domain: str) -> int | None:
        return organisation_for_domain(self._session, domain)

    def ticket(self, number: int) -> TicketInfo | None:
        table = Ticket.__table__
        row = self._connection.execute(
            sa_select(table.c.number, table.c.status, table.c.subject)
            .where(table.c.number == number)
        ).first()
        return None if row is None else TicketInfo(row.number, row.status, row.subject)

    def is_participant(self, number: int, email: str) -> bool:
        """Requester, CC or follower, or a member of the ticket's organisation
        who may see its tickets (access.py's rule)."""
        ticket, customer, participant = (
            Ticket.__table__, Customer.__table__, Participant.__table__
        )
        requester = customer.alias("requester")
        member = customer.alias("member")
        organisation = Organisation.__table__
        statement = (
            sa_select(ticket.c.id)
            .outerjoin(requester, requester.c.id == ticket.c.requester_id)
            .where(ticket.c.number == number)
            .where(or_(
                requester.c.email == email,
                exists().where(participant.c.ticket_id == ticket.c.id,
                               participant.c.email == email),
                exists().where(member.c.email == email,
                               member.c.organisation_id == ticket.c.organisation_id,
                               organisation.c.id == ticket.c.organisation_id,
                               sees_organisation(member, organisation)),
            ))
        )
        return self._connection.execute(statement).first() is not None

    def mails_from_since(self, email: str, since: datetime) -> int:
        return int(self._connection.execute(
            _recent_stmt(), {"_sender": email, "_since": since}).scalar() or 0)

    def is_our_outgoing(self, message_id: str) -> bool:
        table = Message.__table__
        statement = sa_select(table.c.id).where(
            table.c.message_id == message_id, table.c.direction == "out"
        ).limit(1)
        return self._connection.execute(statement).first() is not None

    def third_party_request(self, request_id: int) -> ThirdPartyInfo | None:
        request, ticket = ThirdPartyRequest.__table__, Ticket.__table__
        row = self._connection.execute(
            sa_select(request.c.id, ticket.c.number, request.c.email, request.c.kind)
            .join(ticket, ticket.c.id == request.c.ticket_id)
            .where(request.c.id == request_id)
        ).first()
        return None if row is None else ThirdPartyInfo(row.id, row.number, row.email, row.kind)
