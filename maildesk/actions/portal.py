"""What a customer writes on a ticket in the portal (issue 16): a message
with files, taken as their mail to the ticket would be.

The message is an incoming one (direction "in") by the customer, its files
stored like a mail's (tickets.store_files), the status moved by the
lifecycle's customer_reply (pending -> open, solved -> open and reopened),
and the agents told as for a customer's reply by mail (outbox). A closed
ticket takes nothing: where a mail would open a follow-up ticket, the
portal asks the customer to write a new request instead. Inside the
caller's transaction (web/portal/auth.py opens it, with the session check
and the access rule); the caller hands the outbox ids to the broker after
the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session

from maildesk.actions import uploads
from maildesk.config import Settings
from maildesk.errors import PermanentError
from maildesk.mail.text import clean
from maildesk.models import Event, Message, Ticket, utcnow
from maildesk.store import tickets as store
from maildesk.tickets import outbox
from maildesk.tickets import writes as tickets
from maildesk.tickets.lifecycle import FOLLOWUP, REOPENED, next_status
from maildesk.types import Address, ParsedAttachment

#: The longest message text taken (as the API's intake).
MAX_TEXT = 100_000
KEPT_IN = "the customer's upload in the portal"


class MessageRefused(PermanentError):
    """Nothing was written; `reason` says why: "empty", "too_long",
    "closed" (write a new request), "changed" (the ticket changed while
    the message was written: try again)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Added:
    message_row: int
    status: str
    reopened: bool
    outbox_ids: tuple[int, ...]


def check_text(text: str) -> str:
    """The text as it is stored; MessageRefused when there is none or too much."""
    cleaned = clean(text).strip()
    if not cleaned:
        raise MessageRefused("empty")
    if len(cleaned) > MAX_TEXT:
        raise MessageRefused("too_long")
    return cleaned


def add_message(session: Session, settings: Settings, secret: bytes, number: int,
                author: Address, text: str,
                files: Sequence[ParsedAttachment] = ()) -> Added:
    """The customer's message on ticket `number` (which the caller has
    checked they may see). UploadRefused / MessageRefused before anything
    is written."""
    body = check_text(text)
    uploads.check(settings, files)
    ticket = store.ticket_row(session, number)
    if ticket is None:
        raise LookupError(f"no ticket #{number}")
    transition = next_status(ticket["status"], "customer_reply")
    if transition.effect == FOLLOWUP:
        raise MessageRefused("closed")
    now = utcnow()
    # Conditional on the status read: a concurrent change (an agent solving
    # it, the sweep closing it) makes this one refuse instead of racing.
    table = Ticket.__table__
    values, status_events = tickets.status_change(ticket, transition.status, author.email,
                                                  transition.effect)
    changed = session.connection().execute(
        update(table).where(table.c.id == ticket["id"], table.c.status == ticket["status"])
        .values(updated_at=now, **values)).rowcount
    if not changed:
        raise MessageRefused("changed")
    row = store.insert_returning_id(session, Message, {
        "ticket_id": ticket["id"], "direction": "in", "from_addr": author.email,
        "from_name": author.name, "author": author.email, "to_addrs": "", "cc_addrs": "",
        "subject": ticket["subject"], "date": now, "text": body, "text_display": body,
        "html": "", "created_at": now,
    })
    events = tickets.store_files(session, settings, ticket["id"], row, files, kept_in=KEPT_IN)
    line = "written in the portal"
    if files:
        line += f" (files: {', '.join(f.filename for f in files)})"
    events.append(tickets.event(ticket["id"], author.email, "message", line))
    store.insert_many(session, Event, events + status_events)
    reopened = transition.effect == REOPENED
    ids = outbox.notify(session, settings, secret, number,
                        "reopened" if reopened else "customer_reply")
    return Added(row, transition.status, reopened, tuple(ids))
