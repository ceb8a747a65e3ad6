"""Escalation on the SLA traffic light (seed 003): the pure decision, and
`maildesk sweep` telling the assignee, the group or the fallback once per
colour, never twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from maildesk.actions import agent as agent_actions
from maildesk.config import load_settings
from maildesk.models import Ticket
from maildesk.schedule import escalation
from maildesk.schedule.sla import Measure
from tests.conftest import REPO, Desk, hand_over
from tests.mailfactory import make_mail

# Monday 2 November 2026, 10:00 Berlin. user_help: first answer within 16
# business hours (08-17), yellow from 12 h: Tuesday 13:00 Berlin; red from
# 16 h: Tuesday 17:00 Berlin.
CREATED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GREEN = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
YELLOW = datetime(2026, 11, 3, 12, 30, tzinfo=UTC)
RED = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


# -- the pure decision ------------------------------------------------------

@pytest.mark.parametrize(("state", "alerted", "expected"), [
    ("green", "", None), ("yellow", "", "yellow"), ("red", "", "red"),
    ("yellow", "yellow", None), ("red", "yellow", "red"), ("red", "red", None),
    ("yellow", "red", None), ("green", "yellow", None),
])
def test_only_a_worse_light_than_the_last_notice_escalates(state: str, alerted: str,
                                                           expected: str | None) -> None:
    assert escalation.due(state, alerted) == expected


TEAM = escalation.Team(assignee="anna@example.com", group_members=("bob@example.com",
                                                                   "carl@example.com"),
                       group_address="team@example.com", all_agents=("x@example.com",))


@pytest.mark.parametrize(("team", "to", "red_to", "fallback", "level", "expected"), [
    (TEAM, "assignee", "", "", "yellow", ("anna@example.com",)),
    (TEAM, "group", "", "", "yellow", ("bob@example.com", "carl@example.com")),
    (TEAM, "both", "", "", "yellow", ("anna@example.com", "bob@example.com",
                                      "carl@example.com")),
    (TEAM, "none", "lead@example.com", "", "red", ()),
    (TEAM, "assignee", "lead@example.com", "", "yellow", ("anna@example.com",)),
    (TEAM, "assignee", "lead@example.com", "", "red", ("anna@example.com",
                                                       "lead@example.com")),
    # nobody assigned: the group's members, else its address
    (escalation.Team(group_members=("bob@example.com",)), "assignee", "", "", "yellow",
     ("bob@example.com",)),
    (escalation.Team(group_address="team@example.com"), "assignee", "", "", "yellow",
     ("team@example.com",)),
    # a group without members, but an assignee
    (escalation.Team(assignee="anna@example.com"), "group", "", "", "red",
     ("anna@example.com",)),
    # nobody at all: the fallback, else every agent
    (escalation.Team(all_agents=("x@example.com", "y@example.com")), "assignee", "",
     "lead@example.com", "yellow", ("lead@example.com",)),
    (escalation.Team(all_agents=("x@example.com", "y@example.com")), "assignee", "", "",
     "yellow", ("x@example.com", "y@example.com")),
    # each address once, whatever its case
    (escalation.Team(assignee="Anna@Example.com", group_members=("anna@example.com",)),
     "both", "ANNA@example.com", "", "red", ("anna@example.com",)),
])
def test_who_is_told(team: escalation.Team, to: str, red_to: str, fallback: str, level: str,
                     expected: tuple[str, ...]) -> None:
    assert escalation.recipients(level, team, to, red_to, fallback) == expected


def test_the_measure_at_risk_is_the_one_that_turned_the_light() -> None:
    from maildesk.schedule.sla import Light

    first = Measure("red", 17.0, 16.0, False)
    solution = Measure("green", 17.0, 80.0, False)
    risk = escalation.at_risk(Light("red", first, solution), "red")
    assert (risk.measure, risk.limit_hours, risk.hours_left) == ("first_response", 16.0, -1.0)
    assert risk.as_payload("red")["hours_over"] == 1.0
    answered = Measure("green", 2.0, 16.0, True)
    late = Measure("yellow", 61.0, 80.0, False)
    risk = escalation.at_risk(Light("yellow", answered, late), "yellow")
    assert (risk.measure, risk.as_payload("yellow")["hours_left"]) == ("resolution", 19.0)


# -- through the sweep --------------------------------------------------------

def ticket_created_at(desk: Desk, subject: str, when: datetime = CREATED) -> int:
    number = desk.ingest(make_mail(subject=subject))[1]["ticket"]
    with desk.engine().begin() as conn:
        conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == number)
                     .values(created_at=when))
    return number


def sweep(desk: Desk, now: datetime, *extra: str) -> list[dict]:
    result = desk.cli("sweep", "--now", now.isoformat(), "--json", *extra)
    assert result.exit_code == 0, result.output
    return [a for a in json.loads(result.stdout)["actions"]
            if str(a["action"]).startswith("agent_notice_sla")]


def notices(desk: Desk) -> list[tuple[str, str]]:
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    return sorted((r["kind"], ",".join(r["to"])) for r in rows
                  if r["kind"].startswith("agent_notice_sla"))


def test_yellow_then_red_each_told_once(desk: Desk) -> None:
    number = ticket_created_at(desk, "Drucker druckt nicht")
    assert sweep(desk, GREEN) == []
    told = sweep(desk, YELLOW)
    assert [(a["ticket"], a["action"], a["to"], a["measure"]) for a in told] == [
        (number, "agent_notice_sla_yellow", ["agent@example.com"], "first_response")]
    assert sweep(desk, YELLOW + timedelta(minutes=10)) == []  # never twice
    told = sweep(desk, RED)
    assert [(a["action"], a["hours_over"] > 0) for a in told] == [
        ("agent_notice_sla_red", True)]
    assert sweep(desk, RED + timedelta(days=1)) == []
    assert notices(desk) == [("agent_notice_sla_red", "agent@example.com"),
                             ("agent_notice_sla_yellow", "agent@example.com")]
    history = [(e["field"], e["new"]) for e in desk.show(number)["events"]
               if e["field"] == "sla"]
    assert [new.split(":")[0] for _, new in history] == ["yellow", "red"]


def test_a_light_that_jumps_to_red_sends_only_red(desk: Desk) -> None:
    ticket_created_at(desk, "Serverausfall")
    assert [a["action"] for a in sweep(desk, RED)] == ["agent_notice_sla_red"]
    assert [k for k, _ in notices(desk)] == ["agent_notice_sla_red"]


def test_answered_and_solved_tickets_are_not_escalated(desk: Desk) -> None:
    answered = ticket_created_at(desk, "schon beantwortet")
    solved = ticket_created_at(desk, "schon gelöst")
    agent_actions.reply(desk.engine(), desk.settings, answered, "agent@example.com",
                        "Wir sehen es uns an.", dispatch=hand_over(desk.settings))
    with desk.engine().begin() as conn:  # answered within the hour
        conn.execute(update(Ticket.__table__).where(Ticket.__table__.c.number == answered)
                     .values(first_response_at=CREATED + timedelta(hours=1)))
    agent_actions.set_fields(desk.engine(), desk.settings, solved, "agent@example.com",
                             status="solved", dispatch=hand_over(desk.settings))
    assert sweep(desk, RED) == []
    assert notices(desk) == []


def test_the_assignee_is_told_and_red_also_tells_the_lead(desk: Desk) -> None:
    desk.env["MAILDESK_SLA__ESCALATE_RED_TO"] = "lead@example.com"
    desk.settings = load_settings(REPO / "maildesk.toml", desk.env)
    number = ticket_created_at(desk, "Zugang gesperrt")
    agent_actions.set_fields(desk.engine(), desk.settings, number, "agent@example.com",
                             assign="agent@example.com", dispatch=hand_over(desk.settings))
    assert [a["to"] for a in sweep(desk, YELLOW)] == [["agent@example.com"]]
    assert [a["to"] for a in sweep(desk, RED)] == [["agent@example.com", "lead@example.com"]]


def test_dry_run_lists_and_sends_nothing(desk: Desk) -> None:
    number = ticket_created_at(desk, "nur schauen")
    listed = sweep(desk, YELLOW, "--dry-run")
    assert [(a["ticket"], a["action"]) for a in listed] == [
        (number, "agent_notice_sla_yellow")]
    assert notices(desk) == []
    assert len(sweep(desk, YELLOW)) == 1  # the dry run marked nothing

