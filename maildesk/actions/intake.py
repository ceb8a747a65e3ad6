"""Tickets without an incoming mail: a phone call, a web form, an
integration recording a customer's request (SPEC §2, channel phone/web).

The ticket is made as a mail would make it: the requester found or created
(with the organisation of their domain), request type -> priority, the SLA
clock from now, the request as the ticket's first incoming message (so
the thread a reply quotes begins with it), and — unless told not to — the
acknowledgement with the ticket number and the reply address, so the
customer's answer by mail threads onto it. One transaction; the outbox
ids go to `dispatch` after the commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from maildesk.config import PRIORITY_FOR_TYPE, REQUEST_TYPES, Settings
from maildesk.db import session_scope
from maildesk.errors import PermanentError
from maildesk.mail.text import clean
from maildesk.models import Event, Message, utcnow
from maildesk.secret import load_secret
from maildesk.store import tickets as store
from maildesk.tickets import outbox
from maildesk.tickets import writes as tickets
from maildesk.types import Address, Route

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
                acknowledge: bool = True) -> Opened:
    """Open a ticket for `requester`, recorded by `actor` (an agent or cli:…)."""
    check(requester, subject, text, channel, request_type)
    email = requester.lower()
    person = Address(email, clean(requester_name.strip())[:200])
    priority = PRIORITY_FOR_TYPE[request_type]
    route = Route(request_type=request_type, category=(category or None) and category[:100])
    secret = load_secret(settings)
    with session_scope(engine) as session:
        created = tickets.create_ticket(session, settings, tickets.NewTicket(
            subject=clean(subject.strip()), requester=person, route=route, priority=priority,
            organisation_domain=email.rpartition("@")[2], channel=channel), actor)
        now = utcnow()
        store.insert_returning_id(session, Message, {
            "ticket_id": created.ticket_id, "direction": "in", "from_addr": email,
            "from_name": person.name, "author": email, "to_addrs": "", "cc_addrs": "",
            "subject": clean(subject.strip()), "date": now, "text": clean(text),
            "text_display": clean(text), "html": "", "created_at": now,
        })
        store.insert_many(session, Event, [tickets.event(
            created.ticket_id, actor, "message", f"recorded by {actor} (channel {channel})")])
        ids: list[int] = []
        if acknowledge:  # the agent who recorded it needs no notice of it
            ids += outbox.notify(session, settings, secret, created.number, "ticket_recorded",
                                 skip_agent=actor)
            if created.new_customer and settings.registration.confirm and settings.web.enabled:
                ids += outbox.notify(session, settings, secret, created.number,
                                     "registration")
    dispatch(ids)
    return Opened(created.number, tuple(ids), created.new_customer)
