"""A customer follows a colleague's ticket, or stops getting its mails,
from the portal's ticket page (issue 16: "follow / unfollow for colleagues
of the organisation").

A follower gets a copy of every public reply like an agent-added one
(tickets/participants.py); the change is written to the history with the
customer as the actor, as agents' and the mailed removal link's changes
are (field follower/cc, new or old: the address). Inside the caller's
transaction, after it checked the session and the access rule.
"""

from __future__ import annotations

from sqlmodel import Session

from maildesk.models import Event
from maildesk.store import tickets as store
from maildesk.tickets import writes


def follow(session: Session, ticket_id: int, email: str, name: str) -> bool:
    """True when the customer became a follower (False: already on the ticket)."""
    address = email.lower()
    if not store.add_participant(session, ticket_id, address, name, role="follower"):
        return False
    store.insert_many(session, Event, [writes.event(ticket_id, address, "follower", address)])
    return True


def leave(session: Session, ticket_id: int, email: str, role: str) -> bool:
    """True when the customer's CC or follower row was removed (no more copies)."""
    address = email.lower()
    if not store.remove_participant(session, ticket_id, address):
        return False
    store.insert_many(session, Event, [writes.event(ticket_id, address, role, None, address)])
    return True
