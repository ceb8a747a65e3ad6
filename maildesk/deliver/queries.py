"""The worker's statements, built once.

Building a SQLAlchemy statement (and its cache key) for every query cost
about as much as running it on SQLite; the sender runs some ten per
notification. Parameters are bind parameters named in each statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, update

from maildesk.models import Agent, Attachment, Customer, Event, Message, Outbox, Ticket


def statements(thread_depth: int, thread_ids: int, recent: int) -> dict[str, Any]:
    outbox, ticket, message = Outbox.__table__, Ticket.__table__, Message.__table__
    customer, agent = Customer.__table__, Agent.__table__
    return {
        # queued -> sending; the row, or nothing when it was not queued
        "claim": update(outbox)
        .where(outbox.c.id == bindparam("outbox_id"), outbox.c.state == "queued")
        .values(state="sending", attempts=outbox.c.attempts + 1,
                next_attempt_at=bindparam("now"))
        .returning(*outbox.c),
        "finish": update(outbox).where(outbox.c.id == bindparam("outbox_id"))
        .values(state=bindparam("state"), last_error=bindparam("error"),
                sent_at=bindparam("sent_at")),
        "event": insert(Event.__table__),
        "ticket": select(ticket).where(ticket.c.id == bindparam("ticket_id")),
        "requester": select(customer.c.name, customer.c.email)
        .where(customer.c.id == bindparam("customer_id")),
        "message": select(message).where(message.c.id == bindparam("message_id")),
        "agent_by_email": select(agent.c.name, agent.c.email)
        .where(agent.c.email == bindparam("email")),
        "agent_by_id": select(agent.c.name, agent.c.email)
        .where(agent.c.id == bindparam("agent_id")),
        "old_ticket": select(ticket.c.number, ticket.c.subject)
        .where(ticket.c.number == bindparam("number")),
        "asked_at": select(message.c.created_at)
        .where(message.c.ticket_id == bindparam("ticket_id"), message.c.direction == "out")
        .order_by(message.c.id.desc()).limit(1),
        "files": select(Attachment.__table__)
        .where(Attachment.__table__.c.message_id == bindparam("message_id"))
        .order_by(Attachment.__table__.c.id),
        "latest_in": select(message.c.id, message.c.text_display, message.c.text)
        .where(message.c.ticket_id == bindparam("ticket_id"), message.c.direction == "in")
        .order_by(message.c.id.desc()).limit(1),
        "thread": select(message.c.id, message.c.author, message.c.from_addr, message.c.date,
                         message.c.created_at, message.c.text_display, message.c.text)
        .where(message.c.ticket_id == bindparam("ticket_id"),
               message.c.direction != "internal")
        .order_by(message.c.id.desc()).limit(thread_depth + 1),
        # the newest messages but internal notes, newest first: what the
        # thread, its ids, the latest customer text and asked_at are taken
        # from (the statements above and below are for when these do not
        # reach far enough back)
        "recent": select(message.c.id, message.c.message_id, message.c.direction,
                         message.c.author, message.c.from_addr, message.c.date,
                         message.c.created_at, message.c.text_display, message.c.text)
        .where(message.c.ticket_id == bindparam("ticket_id"),
               message.c.direction != "internal")
        .order_by(message.c.id.desc()).limit(recent),
        # the newest ids, newest first
        "thread_ids": select(message.c.message_id)
        .where(message.c.ticket_id == bindparam("ticket_id"), message.c.message_id != "",
               message.c.direction != "internal")
        .order_by(message.c.id.desc()).limit(thread_ids),
    }
