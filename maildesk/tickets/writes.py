"""Writing tickets: the rows that mail processing and agent actions share.

Functions take the caller's session and never commit. Every change writes
its event (actor, time, field, old -> new), so a ticket's history is
complete whoever changed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlmodel import Session

from maildesk.config import Settings
from maildesk.mail.quoting import message_display_text
from maildesk.models import Attachment, Event, Message, Ticket, utcnow
from maildesk.store import blobs
from maildesk.store import tickets as store
from maildesk.types import Address, ParsedAttachment, ParsedMail, Route

SYSTEM_ACTOR = "maildesk"
NO_SUBJECT = "(no subject)"
MAX_TICKET_SUBJECT = 500


def event(ticket_id: int, actor: str, field: str, new: str | None,
          old: str | None = None) -> dict[str, Any]:
    """One history row (inserted in bulk with the others of the same change)."""
    return {"ticket_id": ticket_id, "at": utcnow(), "actor": actor, "field": field,
            "old": old, "new": new}


def ticket_subject(subject: str) -> str:
    """A one-line, bounded subject; the full one stays on the message."""
    subject = " ".join(subject.split())
    if not subject:
        return NO_SUBJECT
    if len(subject) > MAX_TICKET_SUBJECT:
        return subject[: MAX_TICKET_SUBJECT - 1] + "…"
    return subject


@dataclass(frozen=True)
class NewTicket:
    """What a new ticket is made of, whoever opens it."""

    subject: str
    requester: Address
    route: Route
    priority: str
    organisation_domain: str | None
    channel: str = "email"
    follow_up_of: int | None = None
    language: str | None = None  # a new customer's language; None: the default


class CreatedTicket(NamedTuple):
    ticket_id: int
    number: int
    new_customer: bool  # the requester was created with the ticket


def create_ticket(session: Session, settings: Settings, new: NewTicket,
                  actor: str) -> CreatedTicket:
    """Requester (found or created), organisation, the ticket row and its
    creation event."""
    organisation_id = None
    if new.organisation_domain:
        organisation_id = store.organisation_id_for(session, new.organisation_domain)
    customer = store.customer_for(
        session, new.requester.email, new.requester.name,
        new.language or settings.mail.default_language, organisation_id,
    )
    group = store.group_by_name(session, new.route.group) if new.route.group else None
    now = utcnow()
    number = store.next_ticket_number(session, settings.mail.first_ticket_number)
    ticket_id = store.insert_returning_id(session, Ticket, {
        "number": number,
        "subject": ticket_subject(new.subject),
        "status": "new",
        "request_type": new.route.request_type,
        "priority": new.priority,
        "priority_explicit": new.route.priority is not None,
        "channel": new.channel,
        "requester_id": customer.id,
        "organisation_id": customer.organisation_id,
        "group_id": group.id if group else None,
        "category": new.route.category,
        "subcategory": new.route.subcategory,
        "language": customer.language,
        "follow_up_of": new.follow_up_of,
        "created_at": now,
        "updated_at": now,
    })
    created = (f"status new, type {new.route.request_type}, priority {new.priority}, "
               f"channel {new.channel}")
    if new.follow_up_of:
        created += f", follow-up of #{new.follow_up_of}"
    events = [event(ticket_id, actor, "created", created)]
    if new.route.group and group is None:
        events.append(event(ticket_id, SYSTEM_ACTOR, "note",
                            f"route names group {new.route.group!r}, which does not exist"))
    store.insert_many(session, Event, events)
    return CreatedTicket(ticket_id, number, customer.created)


def add_mail_message(
    session: Session, settings: Settings, ticket_id: int, mail: ParsedMail, *,
    inbound_id: int, message_id: str, author: Address | None, internal: bool = False,
    authenticity: str = "",
) -> list[dict[str, Any]]:
    """An incoming mail as a message of the ticket, with its attachments.
    Returns the events it causes (refused attachments), for the caller to
    write with its own."""
    db_message_id = store.insert_returning_id(session, Message, {
        "ticket_id": ticket_id,
        "inbound_id": inbound_id,
        "direction": "internal" if internal else "in",
        "from_addr": author.email if author else "",
        "from_name": author.name if author else "",
        "author": author.email if author else "",
        "to_addrs": ", ".join(a.email for a in mail.to),
        "cc_addrs": ", ".join(a.email for a in mail.cc),
        "subject": mail.subject,
        "date": mail.date,
        # RFC 5322 caps a line at 998 characters: a longer "id" is junk,
        # and PostgreSQL refuses it whole (the column is varchar(998)).
        "message_id": message_id[:998],
        "in_reply_to": " ".join(mail.in_reply_to),
        "references": " ".join(mail.references),
        "text": mail.text,
        # A forward's quoted part is its content: shown whole.
        "text_display": message_display_text(mail.subject, mail.text),
        "html": mail.html,
        "authenticity": authenticity[:255],
        "created_at": utcnow(),
    })
    return store_attachments(session, settings, ticket_id, db_message_id, inbound_id, mail)


def store_attachments(session: Session, settings: Settings, ticket_id: int, message_id: int,
                      inbound_id: int, mail: ParsedMail) -> list[dict[str, Any]]:
    """Files first (fsync'ed), rows after: a row never names a missing file.
    Returns the events for attachments refused by the size limit (they
    stay in the raw mail)."""
    return store_files(session, settings, ticket_id, message_id, mail.attachments,
                       kept_in=f"the raw mail (inbound {inbound_id})")


def store_files(session: Session, settings: Settings, ticket_id: int, message_id: int,
                files: Sequence[ParsedAttachment], kept_in: str) -> list[dict[str, Any]]:
    """The files of one message, with the content type they came with (what
    a download is served as is decided from the bytes then, web/files.py).
    A file over limits.max_attachment_bytes is not stored; its event says
    where the bytes still are (`kept_in`)."""
    limit = settings.limits.max_attachment_bytes
    rows, refused = [], []
    for part in files:
        if part.size > limit:
            refused.append(event(
                ticket_id, SYSTEM_ACTOR, "attachment_refused",
                f"{part.filename} ({part.size} bytes) exceeds limits.max_attachment_bytes "
                f"({limit}); it stays in {kept_in}",
            ))
            continue
        rows.append({
            "message_id": message_id, "filename": part.filename,
            "content_type": part.content_type[:255], "size": part.size,
            "sha256": blobs.put_blob(settings.attachments_dir, part.payload),
            "content_id": part.content_id[:998], "inline": part.inline,
        })
    store.insert_many(session, Attachment, rows)
    return refused


def add_participants(session: Session, ticket_id: int, people: tuple[Address, ...],
                     actor: str, role: str = "cc") -> list[dict[str, Any]]:
    """Participants not yet on the ticket; returns their events."""
    return [
        event(ticket_id, actor, "participant", person.email)
        for person in people
        if store.add_participant(session, ticket_id, person.email, person.name, role)
    ]


def status_change(ticket: dict[str, Any], new_status: str, actor: str,
                  effect: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Column values and events for a status change (none when unchanged).

    solved_at / closed_at follow the status, so reports and the auto-close
    rule can read them; a reopened ticket loses its solved_at.
    """
    old = ticket["status"]
    if new_status == old:
        return {}, []
    values: dict[str, Any] = {"status": new_status}
    now = utcnow()
    if new_status == "solved":
        values["solved_at"] = now
    elif new_status == "closed":
        values["closed_at"] = now
    elif old == "solved":
        values["solved_at"] = None
    # The reminder clock runs while the ticket waits for the customer.
    if new_status == "pending":
        values["pending_since"], values["reminders_sent"] = now, 0
    elif old == "pending":
        values["pending_since"] = None
    events = [event(ticket["id"], actor, "status", new_status, old)]
    if effect == "reopened":
        events.append(event(ticket["id"], actor, "reopened", "customer replied to a solved ticket"))
    return values, events
