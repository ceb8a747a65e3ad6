"""Who of a customer's organisation may see which tickets (SPEC §8, seeds
000/001): one rule, used by every customer-facing read (the API's, the
portal's) and by threading's "member with the right to see it".

A customer's own setting defaults by role: main contacts and administrators
see the organisation's tickets, other users their own. The organisation's
setting says whether its members may see each other's tickets at all. When
the two disagree the stricter wins, as in Zendesk, which the seeds describe:
an organisation set to "own" keeps even its main contact to their own
tickets. An unconfirmed customer sees nothing until the mailed link is
followed; a ticket a customer is CC or follower of is always theirs to see.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

Scope = Literal["none", "own", "organisation"]
Setting = Literal["own", "organisation"]
#: The settings a customer or an organisation can have, weakest last.
SETTINGS: tuple[Setting, ...] = ("own", "organisation")
ROLES = ("main_contact", "admin", "user")
#: The roles whose default is to see all of their organisation's tickets.
ORGANISATION_ROLES = ("main_contact", "admin")
_STRICTNESS = {"none": 0, "own": 1, "organisation": 2}


@dataclass(frozen=True)
class Viewer:
    """A customer as the rule sees them."""

    customer_id: int
    email: str
    confirmed: bool
    role: str = "user"
    organisation_id: int | None = None
    #: The customer's own setting; None: the default of the role.
    own_setting: Setting | None = None
    #: The organisation's setting; None when there is no organisation.
    organisation_setting: Setting | None = None


@dataclass(frozen=True)
class TicketFacts:
    requester_id: int | None
    organisation_id: int | None
    #: CC and followers, by address.
    participants: Collection[str] = ()


def role_default(role: str) -> Setting:
    return "organisation" if role in ORGANISATION_ROLES else "own"


def stricter(first: Scope, second: Scope) -> Scope:
    return first if _STRICTNESS[first] <= _STRICTNESS[second] else second


def scope(viewer: Viewer) -> Scope:
    """How far the customer sees: nothing, their own tickets (and those they
    are CC or follower of), or their organisation's too."""
    if not viewer.confirmed:
        return "none"
    if viewer.organisation_id is None:
        return "own"
    mine: Scope = viewer.own_setting or role_default(viewer.role)
    return stricter(mine, viewer.organisation_setting or "organisation")


def may_see(viewer: Viewer, ticket: TicketFacts) -> bool:
    """The one answer to "may this customer read this ticket"."""
    reach = scope(viewer)
    if reach == "none":
        return False
    if ticket.requester_id == viewer.customer_id or viewer.email in ticket.participants:
        return True
    return (reach == "organisation" and ticket.organisation_id is not None
            and ticket.organisation_id == viewer.organisation_id)


def follower_refusal(viewer: Viewer | None, ticket: TicketFacts) -> str | None:
    """Why this customer may not follow the ticket, or None (issue #15).

    A follower silently gets every public reply, so only who may read the
    ticket anyway may follow it: a main contact or administrator of the
    ticket's organisation always (seeds 000/001, whatever the settings),
    another customer of it only where the rule above lets them see it. A
    customer of another organisation (or of none) is refused. An address
    that is no customer (an agent, a partner's colleague) is the agent's
    explicit choice and stays allowed (`viewer` None)."""
    if viewer is None:
        return None
    same = ticket.organisation_id is not None and viewer.organisation_id == ticket.organisation_id
    if not same:
        return "is a customer of another organisation"
    if viewer.role in ORGANISATION_ROLES:
        return None
    facts = TicketFacts(ticket.requester_id, ticket.organisation_id)  # not as a participant
    if not may_see(viewer, facts):
        return "may not see this ticket (a user of the organisation sees only their own)"
    return None
