"""The ticket status lifecycle, as one literal table.

Every status a ticket can have and every event that can happen to it meet in
:data:`LIFECYCLE` below, so a reader sees the whole lifecycle at once (seed
documents 000/001, SPEC §3) instead of reconstructing it from branches. A
cell is either the :class:`Transition` that follows, :data:`TO_TARGET` (the
agent chooses the new status) or the reason why the event is refused, which
:func:`next_status` raises as :class:`IllegalTransition`.

The table only decides. It sends nothing, stores nothing and does not check
who may do what: the pipeline and the service do that and ask this table
what the status becomes. Pure: no I/O, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from maildesk.errors import PermanentError

__all__ = [
    "EVENTS",
    "LIFECYCLE",
    "SET_STATUS_TARGETS",
    "STATUSES",
    "TO_TARGET",
    "IllegalTransition",
    "Transition",
    "next_status",
]

STATUSES: Final = ("new", "open", "pending", "on_hold", "solved", "closed")
EVENTS: Final = (
    "customer_reply",
    "agent_reply",
    "agent_set_status",
    "customer_marks_solved",
    "reminder_due",
    "auto_close",
)
# "new" is never a target: a ticket is new only until someone handles it, and
# setting it back would hide it among the untouched ones.
SET_STATUS_TARGETS: Final = ("open", "pending", "on_hold", "solved", "closed")

REOPENED: Final = "reopened"
FOLLOWUP: Final = "followup"


class IllegalTransition(PermanentError, ValueError):
    """An event that the ticket's current status does not allow.

    The message names the current status, the event (and the target status,
    if any) and why; the same parts are attributes for callers that log or
    answer the agent.
    """

    def __init__(self, current: str, event: str, reason: str, target: str | None = None) -> None:
        self.current = current
        self.event = event
        self.target = target
        self.reason = reason
        prefix = f"ticket is {current}: " if current in STATUSES else ""
        super().__init__(prefix + reason)


@dataclass(frozen=True)
class Transition:
    """What an event does to a ticket.

    `status` is the status after the event. `effect` tells the caller that
    more than a status change is due: "reopened" (a customer did not accept
    the solution: notify the agent, the ticket is open again) or "followup"
    (the ticket is closed for good: open a NEW ticket linked to this one;
    this one keeps status closed). `previous` is the status before the event;
    :func:`next_status` fills it in. It does not take part in comparisons.
    """

    status: str
    effect: str | None = None
    previous: str | None = field(default=None, compare=False)

    @property
    def changed(self) -> bool:
        """True when the status after the event differs from the one before."""
        return self.previous is not None and self.status != self.previous


@dataclass(frozen=True)
class _ToTarget:
    """Table marker: the agent chose the new status (agent_set_status)."""


TO_TARGET: Final = _ToTarget()

# Reasons repeated in several cells.
_CLOSED_IS_FINAL = (
    "a closed ticket is final and takes no {event} (a customer reply opens a follow-up ticket)"
)
_ONLY_PENDING_REMINDS = (
    "no {event}: only a pending ticket gets reminders (it waits for the customer)"
)
_ONLY_PENDING_SOLVED_CLOSE = (
    "no {event}: only pending (after the second reminder) and solved (14 days after the "
    "solution) tickets close automatically"
)

# A table cell: the transition, TO_TARGET, or why the event is refused ({event}
# is filled in with the event and target).
Cell = Transition | _ToTarget | str

LIFECYCLE: Final[dict[str, dict[str, Cell]]] = {
    # Arrived, nobody works on it yet. A customer adding details keeps it new
    # (it still waits for assignment); the first agent answer opens it.
    "new": {
        "customer_reply": Transition("new"),
        "agent_reply": Transition("open"),
        "agent_set_status": TO_TARGET,
        "customer_marks_solved": Transition("solved"),
        "reminder_due": _ONLY_PENDING_REMINDS,
        "auto_close": _ONLY_PENDING_SOLVED_CLOSE,
    },
    # An agent works on it.
    "open": {
        "customer_reply": Transition("open"),
        "agent_reply": Transition("open"),
        "agent_set_status": TO_TARGET,
        "customer_marks_solved": Transition("solved"),
        "reminder_due": _ONLY_PENDING_REMINDS,
        "auto_close": _ONLY_PENDING_SOLVED_CLOSE,
    },
    # The agent waits for the customer: the customer's answer opens it again;
    # an agent adding something still waits. Reminders after 5 and 10 business
    # days, then it closes.
    "pending": {
        "customer_reply": Transition("open"),
        "agent_reply": Transition("pending"),
        "agent_set_status": TO_TARGET,
        "customer_marks_solved": Transition("solved"),
        "reminder_due": Transition("pending"),
        "auto_close": Transition("closed"),
    },
    # Handed to development: it stays there until the release, whoever writes.
    "on_hold": {
        "customer_reply": Transition("on_hold"),
        "agent_reply": Transition("on_hold"),
        "agent_set_status": TO_TARGET,
        "customer_marks_solved": Transition("solved"),
        "reminder_due": _ONLY_PENDING_REMINDS,
        "auto_close": _ONLY_PENDING_SOLVED_CLOSE,
    },
    # Solution sent. A customer reply means the solution was not accepted:
    # open again. Closes by itself 14 days later.
    "solved": {
        "customer_reply": Transition("open", REOPENED),
        "agent_reply": Transition("solved"),
        "agent_set_status": TO_TARGET,
        "customer_marks_solved": Transition("solved"),
        "reminder_due": _ONLY_PENDING_REMINDS,
        "auto_close": Transition("closed"),
    },
    # Final. A customer reply opens a new follow-up ticket instead.
    "closed": {
        "customer_reply": Transition("closed", FOLLOWUP),
        "agent_reply": _CLOSED_IS_FINAL,
        "agent_set_status": _CLOSED_IS_FINAL,
        "customer_marks_solved": _CLOSED_IS_FINAL,
        "reminder_due": _CLOSED_IS_FINAL,
        "auto_close": _CLOSED_IS_FINAL,
    },
}


def next_status(current: str, event: str, target: str | None = None) -> Transition:
    """Look up what `event` does to a ticket in status `current`.

    `target` is the status an agent chose and belongs to agent_set_status
    only. Raises :class:`IllegalTransition` (a ValueError) for an unknown
    status, event or target and for every event the table refuses.
    """
    row = LIFECYCLE.get(current)
    if row is None:
        raise IllegalTransition(
            current,
            event,
            f"unknown ticket status {current!r} (known: {', '.join(STATUSES)})",
            target,
        )
    cell = row.get(event)
    if cell is None:
        raise IllegalTransition(
            current, event, f"unknown event {event!r} (known: {', '.join(EVENTS)})", target
        )
    if target is not None and event != "agent_set_status":
        raise IllegalTransition(
            current, event, f"{event} takes no target status (got {target!r})", target
        )
    if isinstance(cell, str):
        to = f" to {target!r}" if target is not None else ""
        raise IllegalTransition(current, event, cell.format(event=event + to), target)
    if isinstance(cell, _ToTarget):
        return Transition(_checked_target(current, target), previous=current)
    return Transition(cell.status, cell.effect, previous=current)


def _checked_target(current: str, target: str | None) -> str:
    event = "agent_set_status"
    if target is None:
        reason = f"{event} needs a target status (one of {', '.join(SET_STATUS_TARGETS)})"
    elif target == "new":
        reason = f"{event} to 'new' is refused: a ticket is new only until it is handled"
    elif target not in SET_STATUS_TARGETS:
        reason = f"{event} to unknown status {target!r} (one of {', '.join(SET_STATUS_TARGETS)})"
    else:
        return target
    raise IllegalTransition(current, event, reason, target)
