"""Tickets without an incoming mail: a phone call, a web form, an
integration recording a customer's request (SPEC §2, channel phone/web).

The ticket is made as a mail would make it: the requester found or created
(with the organisation of their domain), request type -> priority, the SLA
clock from now, the request as the ticket's first incoming message (so
the thread a reply quotes begins with it), and — unless told not to — the
acknowledgement with the ticket number and the reply address, so the
customer's answer by mail threads onto it. One transaction; the outbox
ids go to `dispatch` after the commit. `open_in` is the same inside the
caller's transaction (the portal's "New request": the session checked and
the ticket opened in one), with files, CC participants and the version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from maildesk.actions import second_level, uploads
from maildesk.config import PRIORITY_FOR_TYPE, REQUEST_TYPES, Settings
from maildesk.db import session_scope
from maildesk.errors import PermanentError
from maildesk.mail.text import clean
from maildesk.models import Event, Message, Ticket, utcnow
from maildesk.secret import load_secret
from maildesk.store import tickets as store
from maildesk.tickets import categories, outbox
from maildesk.tickets import writes as tickets
from maildesk.types import Address, ParsedAttachment, Route

CHANNELS = ("phone", "web", "email")
#: An address as a person types it: one @, a dot in the domain; printable
#: ASCII but specials, or any non-ASCII character of the BMP but controls and
#: spaces. Spelled out (no \\s): it is also the API's schema pattern, and
#: regex engines disagree on what \\s means.
_ATOM = ("[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\\-"
         "\u00a1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e"
         "\u2060-\u2fff\u3001-\ud7ff\ue000-\uffff]+")
ADDRESS_PATTERN = f"^{_ATOM}@{_ATOM}\\.{_ATOM}$"
#: Python's $ also matches before a final newline; the schema's does not.
_ADDRESS = re.compile(ADDRESS_PATTERN.removesuffix("$") + r"\Z")
MAX_TEXT = 1_000_000


class IntakeError(PermanentError):
    """The ticket cannot be made as asked; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Opened:
    number: int
    outbox_ids: tuple[int, ...]
    new_customer: bool


def check(requester: str, subject: str, text: str, channel: str, request_type: str) -> None:
    """Raise IntakeError for the first field that cannot be taken."""
    if not _ADDRESS.match(requester) or len(requester) > 320:
        raise IntakeError("requester", f"not an e-mail address: {requester!r}")
    if not subject.strip():
        raise IntakeError("subject", "empty")
    if not text.strip():
        raise IntakeError("text", "empty")
    if len(text) > MAX_TEXT:
        raise IntakeError("text", f"longer than {MAX_TEXT} characters")
    if channel not in CHANNELS:
        raise IntakeError("channel", f"one of {', '.join(CHANNELS)}, not {channel!r}")
    if request_type not in REQUEST_TYPES:
        raise IntakeError("request_type",
                          f"one of {', '.join(REQUEST_TYPES)}, not {request_type!r}")


def open_ticket(engine: Engine, settings: Settings, *, requester: str, subject: str,
                text: str, actor: str, dispatch: Callable[[list[int]], None],
                requester_name: str = "", channel: str = "phone",
                request_type: str = "user_help", category: str | None = None,
                acknowledge: bool = True, end_customer: str | None = None) -> Opened:
    """Open a ticket for `requester`, recorded by `actor` (an agent or cli:…).
    `end_customer`: the partner's end customer the ticket is about (only for
    an internal requester; actions/second_level.py). The end customer is
    told nothing: the acknowledgement goes to the partner."""
    check(requester, subject, text, channel, request_type)
    secret = load_secret(settings)
    with session_scope(engine) as session:
        opened = open_in(session, settings, secret, requester=requester, subject=subject,
                         text=text, actor=actor, requester_name=requester_name,
                         channel=channel, request_type=request_type, category=category,
                         acknowledge=acknowledge, end_customer=end_customer)
    dispatch(list(opened.outbox_ids))
    return opened


def open_in(session: Session, settings: Settings, secret: bytes, *, requester: str,
            subject: str, text: str, actor: str, requester_name: str = "",
            channel: str = "phone", request_type: str = "user_help",
            category: str | None = None, acknowledge: bool = True,
            end_customer: str | None = None, version: str | None = None,
            files: Sequence[ParsedAttachment] = (), cc: Sequence[Address] = ()) -> Opened:
    """open_ticket inside the caller's transaction (the portal checks the
    session and opens the ticket in one); the caller dispatches the outbox
    ids after the commit. `files` go with the first message (UploadRefused
    before anything is written), `cc` become its CC participants,
    `version` the product version in use."""
    check(requester, subject, text, channel, request_type)
    uploads.check(settings, files)
    email = requester.lower()
    person = Address(email, clean(requester_name.strip())[:200])
    priority = PRIORITY_FOR_TYPE[request_type]
    route, by_category = categories.with_group(
        _route(settings, request_type, category), settings.categories,
        settings.categories_assign_group)
    if by_category:  # the category's group must be a row before the ticket names it
        store.sync_directory(session, settings)
    created = tickets.create_ticket(session, settings, tickets.NewTicket(
        subject=clean(subject.strip()), requester=person, route=route, priority=priority,
        organisation_domain=email.rpartition("@")[2], channel=channel), actor)
    now = utcnow()
    message = store.insert_returning_id(session, Message, {
        "ticket_id": created.ticket_id, "direction": "in", "from_addr": email,
        "from_name": person.name, "author": email, "to_addrs": "",
        "cc_addrs": ", ".join(a.email for a in cc), "subject": clean(subject.strip()),
        "date": now, "text": clean(text), "text_display": clean(text), "html": "",
        "created_at": now,
    })
    events = tickets.store_files(session, settings, created.ticket_id, message, files,
                                 kept_in="the upload of the form")
    line = f"recorded by {actor} (channel {channel})"
    if files:
        line += f" (files: {', '.join(f.filename for f in files)})"
    events.append(tickets.event(created.ticket_id, actor, "message", line))
    if by_category:  # the category's group, recorded like any group change
        events.append(tickets.event(created.ticket_id, actor, "group", route.group))
    version = clean((version or "").strip())[:64]
    if version:
        store.update_ticket(session, created.ticket_id, version=version)
        events.append(tickets.event(created.ticket_id, actor, "version", version))
    events += tickets.add_participants(session, created.ticket_id, tuple(cc), actor)
    store.insert_many(session, Event, events)
    if end_customer is not None:
        _end_customer(session, settings, created.number, actor, end_customer)
    ids: list[int] = []
    if acknowledge:  # the agent who recorded it needs no notice of it
        ids += outbox.notify(session, settings, secret, created.number, "ticket_recorded",
                             skip_agent=actor)
        if created.new_customer and settings.registration.confirm and settings.web.enabled:
            ids += outbox.notify(session, settings, secret, created.number, "registration")
    return Opened(created.number, tuple(ids), created.new_customer)


def recent_duplicate(session: Session, requester_id: int, channel: str, subject: str,
                     text: str, since: datetime) -> int | None:
    """The number of a ticket this requester opened by `channel` since
    `since` with the same subject and text (as open_in stores them): the
    same form sent twice opens it once."""
    ticket, message = Ticket.__table__, Message.__table__
    return session.connection().execute(
        select(ticket.c.number).join(message, message.c.ticket_id == ticket.c.id)
        .where(ticket.c.requester_id == requester_id, ticket.c.channel == channel,
               ticket.c.created_at >= since, message.c.direction == "in",
               message.c.subject == clean(subject.strip()), message.c.text == clean(text))
        .order_by(ticket.c.number).limit(1)).scalar()


def _route(settings: Settings, request_type: str, category: str | None) -> Route:
    """The new ticket's route; with categories in the config the category
    must be one of them ("Main" or "Main/Sub"), else it is free text."""
    if not category:
        return Route(request_type=request_type)
    if not settings.categories:
        return Route(request_type=request_type, category=category[:100])
    try:
        main, sub = categories.parse(category, settings.category_labels)
    except categories.CategoryRefused as exc:
        raise IntakeError("category", str(exc).removeprefix("category: ")) from None
    return Route(request_type=request_type, category=main, subcategory=sub)


def _end_customer(session: Session, settings: Settings, number: int, actor: str,
                  end_customer: str) -> None:
    """The end customer on the new ticket; IntakeError naming the field
    (the whole ticket is rolled back) when it cannot be."""
    ticket = store.ticket_row(session, number)
    assert ticket is not None
    try:
        planned = second_level.plan(session, settings, ticket, actor, end_customer=end_customer)
    except second_level.SecondLevelRefused as exc:
        raise IntakeError(exc.field, str(exc).removeprefix(f"{exc.field}: ")) from None
    if planned.values:
        store.update_ticket(session, ticket["id"], **planned.values)
        store.insert_many(session, Event, planned.events)
