"""Escalation on the SLA traffic light (seed 003): who is told, and when. Pure.

When a ticket's light (schedule/sla.py) turns yellow, and again when it
turns red, one notice goes out; `ticket.sla_alerted` remembers the last one
sent ("", "yellow", "red"), so neither is ever sent twice. A light that
jumps from green to red between two sweeps sends the red notice only (the
yellow one would arrive with it and say less). The sweep resets the mark
when the ticket is solved or closed: a reopened ticket whose clock is past
its limit again is escalated again, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from maildesk.schedule.sla import Light, Measure

RANK = {"": 0, "green": 0, "yellow": 1, "red": 2}
#: The notice kinds (templates/mail/<lang>/<kind>.*) per level.
KINDS = {"yellow": "agent_notice_sla_yellow", "red": "agent_notice_sla_red"}


@dataclass(frozen=True)
class Risk:
    """The limit at risk: which measure, its limit, and the business hours
    left before it (negative: overdue by that much)."""

    measure: str  # "first_response" or "resolution"
    limit_hours: float
    hours_left: float

    def as_payload(self, level: str) -> dict[str, object]:
        return {"level": level, "measure": self.measure, "limit_hours": self.limit_hours,
                "hours_left": round(max(self.hours_left, 0.0), 1),
                "hours_over": round(max(-self.hours_left, 0.0), 1)}


def due(state: str, alerted: str) -> str | None:
    """The level to tell now ("yellow" or "red"), or None: only a light
    worse than the last notice sent escalates."""
    if state not in KINDS or RANK[state] <= RANK.get(alerted, 0):
        return None
    return state


def at_risk(light: Light, level: str) -> Risk:
    """The running measure that made the light `level`; the first response
    first, since it is due first."""
    running: list[tuple[str, Measure]] = [
        (name, measure) for name, measure in (("first_response", light.first_response),
                                              ("resolution", light.resolution))
        if not measure.done]
    chosen = next(((n, m) for n, m in running if m.state == level), None) or (
        running[0] if running else ("resolution", light.resolution))
    name, measure = chosen
    return Risk(name, measure.limit_hours, measure.limit_hours - measure.elapsed_hours)


@dataclass(frozen=True)
class Team:
    """Who works the ticket, as plain addresses."""

    assignee: str | None = None
    group_members: tuple[str, ...] = ()
    group_address: str | None = None
    all_agents: tuple[str, ...] = ()


def recipients(level: str, team: Team, escalate_to: str, red_to: str = "",
               fallback: str = "") -> tuple[str, ...]:
    """Who is told of `level` ([sla] escalate_to, escalate_red_to,
    escalate_fallback): "assignee" is the assignee, else the group's
    members, else its address; "group" the members, else the address, else
    the assignee; "both" the assignee and the members. Nobody found: the
    fallback address, else every agent. Red also tells `red_to`. Each
    address once; "none" tells nobody."""
    if escalate_to == "none":
        return ()
    group = team.group_members or ((team.group_address,) if team.group_address else ())
    assignee = (team.assignee,) if team.assignee else ()
    if escalate_to == "assignee":
        chosen = assignee or group
    elif escalate_to == "group":
        chosen = group or assignee
    else:
        chosen = assignee + group
    if not chosen:
        chosen = (fallback,) if fallback else team.all_agents
    if level == "red" and red_to:
        chosen = (*chosen, red_to)
    seen: list[str] = []
    for address in chosen:
        if address and address.lower() not in seen:
            seen.append(address.lower())
    return tuple(seen)
