"""access.py's rule as SQL: the tickets a customer may see, and
whether a customer sees their organisation's tickets, without reading every
ticket into Python. tests/tickets/test_access_sql.py checks that both give
the same answer for every combination of settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, case, false, func, or_, select
from sqlmodel import Session

from maildesk import access
from maildesk.models import Customer, Organisation, Participant, Ticket


def viewer_of(session: Session, customer_id: int) -> access.Viewer | None:
    """The customer as the rule sees them; None if there is no such customer."""
    customer, organisation = Customer.__table__, Organisation.__table__
    row = session.connection().execute(
        select(customer.c.id, customer.c.email, customer.c.confirmed, customer.c.role,
               customer.c.organisation_id, customer.c.ticket_access,
               organisation.c.ticket_access.label("organisation_access"))
        .outerjoin(organisation, organisation.c.id == customer.c.organisation_id)
        .where(customer.c.id == customer_id)
    ).first()
    if row is None:
        return None
    return access.Viewer(
        customer_id=row.id, email=row.email, confirmed=row.confirmed, role=row.role,
        organisation_id=row.organisation_id, own_setting=row.ticket_access,
        organisation_setting=row.organisation_access if row.organisation_id else None)


def visible(viewer: access.Viewer) -> Any:
    """A WHERE clause over `ticket`: the tickets `viewer` may see."""
    reach = access.scope(viewer)
    if reach == "none":
        return false()
    own = _own(viewer)
    if reach == "organisation" and viewer.organisation_id is not None:
        return or_(own, Ticket.__table__.c.organisation_id == viewer.organisation_id)
    return own


def visible_own(viewer: access.Viewer) -> Any:
    """A WHERE clause over `ticket`: of the tickets `viewer` may see, their
    own ones (requester, CC or follower), without the organisation's."""
    return false() if access.scope(viewer) == "none" else _own(viewer)


def _own(viewer: access.Viewer) -> Any:
    ticket, participant = Ticket.__table__, Participant.__table__
    return or_(ticket.c.requester_id == viewer.customer_id,
               ticket.c.id.in_(select(participant.c.ticket_id)
                               .where(participant.c.email == viewer.email)))


def sees_organisation(member: Table | Any, organisation: Table | Any) -> Any:
    """A condition over a customer row (`member`) and its organisation's
    row: the member sees all of the organisation's tickets (scope
    "organisation"), for queries that ask it of many customers at once."""
    by_role = case((member.c.role.in_(access.ORGANISATION_ROLES), "organisation"),
                   else_="own")
    return and_(member.c.confirmed.is_(True),
                func.coalesce(member.c.ticket_access, by_role) == "organisation",
                organisation.c.ticket_access == "organisation")
