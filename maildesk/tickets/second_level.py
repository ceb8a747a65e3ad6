"""2nd-level support (seed 003): the decisions, over plain data.

The model, kept small: a customer is `internal` (a partner, e.g. a
franchise partner serving end customers of its own) or `external`. A ticket
of a partner's end customer has the partner as requester and the end
customer in `end_customer`; the end customer is never a participant, so no
mail of the central support reaches them. `support_level` 1 means the
partner works the ticket; 2 means it was handed to the central support
(the `[second_level] group`, whose members are told). When a level-2 ticket
is solved, the partner gets `second_level_solved` (the solution, and the
request to inform the end customer and close the ticket) instead of the
customer's solution mail; when the ticket is closed, the end customer gets
`end_customer_closed`. Only a ticket whose requester is internal takes an
end customer or goes to level 2.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("external", "internal")
LEVELS = (1, 2)
#: The partner's notice when the central support solved a level-2 ticket.
SOLVED_KIND = "second_level_solved"
#: The central support's notice of a ticket handed to it.
HANDOVER_KIND = "agent_notice_second_level"
#: The end customer's notice that their partner closed the ticket.
END_CUSTOMER_CLOSED_KIND = "end_customer_closed"


class SecondLevelRefused(ValueError):
    """A change 2nd-level support does not allow; `field` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class TicketFacts:
    """What the decisions need to know of a ticket."""

    number: int
    status: str
    support_level: int
    requester: str | None  # the requester's address (None: no requester)
    requester_kind: str | None  # "internal" / "external"; None: no requester
    end_customer: str | None = None  # the end customer's address


@dataclass(frozen=True)
class LevelChange:
    old: int
    new: int
    #: Handed to the central support: assign `group` (if configured) and
    #: tell its members.
    handover: bool
    group: str | None


def _not_internal(facts: TicketFacts) -> str:
    who = facts.requester or "the ticket has no requester"
    kind = facts.requester_kind or "none"
    return (f"#{facts.number}: only a ticket whose requester is an internal customer (a "
            f"partner) can have it; the requester {who} is {kind} (maildesk customers set "
            f"WHO --kind internal)")


def level_change(facts: TicketFacts, wanted: int, group: str | None) -> LevelChange | None:
    """The support level change `wanted` asks for; None when it is the
    level already. Refused: a level other than 1 or 2, a closed ticket, and
    level 2 for a requester who is not internal."""
    if wanted not in LEVELS:
        raise SecondLevelRefused("support_level", f"1 or 2, not {wanted!r}")
    if wanted == facts.support_level:
        return None
    if facts.status == "closed":
        raise SecondLevelRefused("support_level", f"#{facts.number} is closed")
    if wanted == 2 and facts.requester_kind != "internal":
        raise SecondLevelRefused("support_level", _not_internal(facts))
    return LevelChange(facts.support_level, wanted, handover=wanted == 2,
                       group=group if wanted == 2 else None)


def check_end_customer(facts: TicketFacts, wanted: str | None,
                       ours: tuple[str, ...] = ()) -> None:
    """May `wanted` (an address, lower case; None clears it) become the
    ticket's end customer? Clearing is always allowed."""
    if wanted is None:
        return
    if facts.requester_kind != "internal":
        raise SecondLevelRefused("end_customer", _not_internal(facts))
    if facts.requester and wanted == facts.requester.lower():
        raise SecondLevelRefused("end_customer",
                                 f"{wanted} is the requester (the partner) itself")
    if wanted in {address.lower() for address in ours}:
        raise SecondLevelRefused("end_customer", f"{wanted} is one of our own addresses")


def solution_kind(support_level: int) -> str:
    """What the requester gets when the ticket is solved: the partner of a
    level-2 ticket is told to pass the solution on; everyone else gets the
    solution mail (with the survey)."""
    return SOLVED_KIND if support_level == 2 else "solution"


def end_customer_kind(event: str, end_customer: str | None) -> str | None:
    """The one mail an end customer gets from maildesk: that the ticket was
    closed (by the partner, after informing them). Nothing else: the central
    support's mails go to the partner."""
    if event == "closed" and end_customer:
        return END_CUSTOMER_CLOSED_KIND
    return None
