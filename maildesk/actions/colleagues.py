"""The colleagues a customer may put in CC of a request in the portal
(issue 16), and putting them there.

A colleague is a confirmed customer of the same organisation whose mail
does not bounce (a CC gets the replies: an unconfirmed address was never
proven, a bouncing one would only bounce again), never the customer
themselves. The portal sends colleague ids, never addresses: an id is
looked up in this list only, so a forged id (a customer of another
organisation, an unconfirmed one) is refused and adds nobody.

Inside the caller's transaction; nothing commits here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from maildesk.errors import PermanentError
from maildesk.models import Customer
from maildesk.tickets import writes as tickets
from maildesk.types import Address

_CUSTOMER = Customer.__table__


class CcRefused(PermanentError):
    """An id that names no colleague of the customer: nobody was added."""

    def __init__(self, colleague_id: int) -> None:
        super().__init__(f"cc: {colleague_id} is not a colleague who may be added")
        self.colleague_id = colleague_id


@dataclass(frozen=True)
class Colleague:
    id: int
    email: str
    name: str

    @property
    def address(self) -> Address:
        return Address(self.email, self.name)


def colleagues_of(session: Session, customer_id: int) -> list[Colleague]:
    """The customer's colleagues who may be CC'd, by name then address;
    none for a customer without an organisation."""
    c = _CUSTOMER.c
    organisation = session.connection().execute(
        select(c.organisation_id).where(c.id == customer_id)).scalar()
    if organisation is None:
        return []
    rows = session.connection().execute(
        select(c.id, c.email, c.name)
        .where(c.organisation_id == organisation, c.id != customer_id,
               c.confirmed.is_(True), c.bouncing.is_(False))
        .order_by(c.name, c.email)).all()
    return [Colleague(r.id, r.email, r.name or "") for r in rows]


def chosen(session: Session, customer_id: int, ids: Sequence[int]) -> tuple[Address, ...]:
    """The addresses of the colleagues `ids`; CcRefused for an id not in
    colleagues_of (checked here, not trusted from the form)."""
    offered = {c.id: c for c in colleagues_of(session, customer_id)} if ids else {}
    people: list[Address] = []
    for colleague_id in ids:
        found = offered.get(colleague_id)
        if found is None:
            raise CcRefused(colleague_id)
        if found.address not in people:
            people.append(found.address)
    return tuple(people)


def add_cc(session: Session, ticket_id: int, customer_id: int, ids: Sequence[int],
           actor: str) -> list[dict[str, Any]]:
    """Put the colleagues `ids` of the customer in CC of the ticket; the
    history rows for those not yet on it (the caller writes them).
    CcRefused, before anything is added, for an id that is no colleague."""
    return tickets.add_participants(session, ticket_id, chosen(session, customer_id, ids),
                                    actor)
