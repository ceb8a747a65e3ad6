"""2nd-level support in the actions (tickets/second_level.py decides): the
end customer of a partner's ticket and its support level, checked and
turned into column values and history rows inside the caller's
transaction. The callers (actions/agent.py, actions/intake.py) write them
with their other changes, so one refused field changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from maildesk.config import Settings
from maildesk.store import directory
from maildesk.store import tickets as store
from maildesk.tickets import second_level
from maildesk.tickets import writes as tickets
from maildesk.tickets.second_level import SecondLevelRefused

#: The word that clears the end customer (as "none" clears the assignee).
NONE = "none"


@dataclass
class Planned:
    """What to write: column values, history rows, and whether the ticket
    was handed to the central support (its group is then told)."""

    values: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    handover: bool = False


def facts(session: Session, ticket: dict[str, Any]) -> second_level.TicketFacts:
    requester = (directory.customer(session, ticket["requester_id"])
                 if ticket["requester_id"] else None)
    end_customer = store.customer_address(session, ticket.get("end_customer_id"))
    return second_level.TicketFacts(
        number=ticket["number"], status=ticket["status"],
        support_level=ticket.get("support_level") or 1,
        requester=requester["email"] if requester else None,
        requester_kind=requester["kind"] if requester else None,
        end_customer=end_customer.email if end_customer else None)


def _address(value: str) -> str:
    from maildesk.actions.intake import ADDRESS_PATTERN

    address = value.strip().lower()
    if len(address) > 320 or not re.match(ADDRESS_PATTERN.removesuffix("$") + r"\Z", address):
        raise SecondLevelRefused("end_customer",
                                 f"{value!r} is not an e-mail address (or {NONE!r})")
    return address


def plan(session: Session, settings: Settings, ticket: dict[str, Any], actor: str, *,
         support_level: int | None = None, end_customer: str | None = None,
         group_given: bool = False) -> Planned:
    """Check and plan the changes; SecondLevelRefused before anything is
    written. `end_customer` is an address (found or created as a customer)
    or "none"; `group_given`: the caller sets the group itself, so a
    handover leaves it alone."""
    planned = Planned()
    if support_level is None and end_customer is None:
        return planned
    known = facts(session, ticket)
    if end_customer is not None:
        wanted = None if end_customer.strip().lower() == NONE else _address(end_customer)
        second_level.check_end_customer(known, wanted, settings.mail.addresses)
        if wanted != known.end_customer:
            planned.values["end_customer_id"] = (
                _customer_id(session, settings, wanted) if wanted else None)
            planned.events.append(tickets.event(ticket["id"], actor, "end_customer",
                                                wanted or NONE, known.end_customer))
    if support_level is not None:
        change = second_level.level_change(known, support_level,
                                           settings.second_level.group or None)
        if change is not None:
            planned.values["support_level"] = change.new
            planned.events.append(tickets.event(ticket["id"], actor, "support_level",
                                                str(change.new), str(change.old)))
            planned.handover = change.handover
            if change.group and not group_given:
                _assign_group(session, settings, ticket, actor, change.group, planned)
    return planned


def _customer_id(session: Session, settings: Settings, email: str) -> int:
    """The end customer, found or created (with the organisation its domain
    already belongs to; none is created for it)."""
    organisation = store.organisation_for_domain(session, email.rpartition("@")[2])
    return store.customer_for(session, email, "", settings.mail.default_language,
                              organisation).id


def _assign_group(session: Session, settings: Settings, ticket: dict[str, Any], actor: str,
                  name: str, planned: Planned) -> None:
    store.sync_directory(session, settings)
    group = store.group_by_name(session, name)
    if group is None:
        raise SecondLevelRefused(
            "support_level", f"second_level.group in the config names {name!r}, which is "
            f"not a group of the config ([[groups]])")
    if group.id != ticket["group_id"]:
        old = store.group_names(session).get(ticket["group_id"]) if ticket["group_id"] else None
        planned.values["group_id"] = group.id
        planned.events.append(tickets.event(ticket["id"], actor, "group", name, old))


def handover_payload(session: Session, number: int, actor: str) -> dict[str, Any]:
    """What the central support's notice names besides the ticket: the end
    customer (if any, as written by this change) and who handed it over."""
    ticket = store.ticket_row(session, number) or {}
    end_customer = store.customer_address(session, ticket.get("end_customer_id"))
    return {"end_customer": {"email": end_customer.email, "name": end_customer.name}
            if end_customer else None, "handed_over_by": actor}
