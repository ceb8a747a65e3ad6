"""2nd-level support decisions (tickets/second_level.py) and the mails they
cause (tickets/notices.py): pure tables, no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from maildesk.tickets import second_level
from maildesk.tickets.notices import AUTO_GENERATED, Audience, plan
from maildesk.tickets.second_level import LevelChange, SecondLevelRefused, TicketFacts

PARTNER = TicketFacts(number=7, status="open", support_level=1, requester="partner@franchise.de",
                      requester_kind="internal", end_customer="end@kunde.de")
EXTERNAL = replace(PARTNER, requester="someone@kunde.de", requester_kind="external",
                   end_customer=None)


@pytest.mark.parametrize(("facts", "wanted", "group", "expected"), [
    (PARTNER, 2, "central", LevelChange(1, 2, handover=True, group="central")),
    (PARTNER, 2, None, LevelChange(1, 2, handover=True, group=None)),
    (replace(PARTNER, support_level=2), 1, "central", LevelChange(2, 1, handover=False,
                                                                   group=None)),
    (replace(PARTNER, support_level=2), 2, "central", None),  # already there: nothing
    (EXTERNAL, 1, "central", None),
    (replace(PARTNER, status="solved"), 2, None, LevelChange(1, 2, handover=True, group=None)),
])
def test_level_change(facts: TicketFacts, wanted: int, group: str | None,
                      expected: LevelChange | None) -> None:
    assert second_level.level_change(facts, wanted, group) == expected


@pytest.mark.parametrize(("facts", "wanted", "says"), [
    (EXTERNAL, 2, "requester someone@kunde.de is external"),
    (replace(PARTNER, requester=None, requester_kind=None), 2, "no requester"),
    (replace(PARTNER, status="closed"), 2, "#7 is closed"),
    (PARTNER, 3, "1 or 2, not 3"),
])
def test_level_change_refused_naming_the_field(facts: TicketFacts, wanted: int,
                                               says: str) -> None:
    with pytest.raises(SecondLevelRefused) as refused:
        second_level.level_change(facts, wanted, "central")
    assert refused.value.field == "support_level"
    assert says in str(refused.value) and str(refused.value).startswith("support_level: ")


@pytest.mark.parametrize(("facts", "wanted", "says"), [
    (EXTERNAL, "end@kunde.de", "requester someone@kunde.de is external"),
    (PARTNER, "partner@franchise.de", "is the requester (the partner) itself"),
    (PARTNER, "support@example.com", "one of our own addresses"),
])
def test_end_customer_refused(facts: TicketFacts, wanted: str, says: str) -> None:
    with pytest.raises(SecondLevelRefused) as refused:
        second_level.check_end_customer(facts, wanted, ("Support@example.com",))
    assert refused.value.field == "end_customer" and says in str(refused.value)


@pytest.mark.parametrize(("facts", "wanted"), [
    (PARTNER, "other-end@kunde.de"),
    (PARTNER, None),
    (EXTERNAL, None),  # clearing is always allowed
])
def test_end_customer_allowed(facts: TicketFacts, wanted: str | None) -> None:
    second_level.check_end_customer(facts, wanted, ("support@example.com",))


@pytest.mark.parametrize(("level", "kind"), [(1, "solution"), (2, "second_level_solved")])
def test_the_solved_mail_follows_the_level(level: int, kind: str) -> None:
    assert second_level.solution_kind(level) == kind


@pytest.mark.parametrize(("event", "end_customer", "kind"), [
    ("closed", "end@kunde.de", "end_customer_closed"),
    ("closed", None, None),
    ("solution", "end@kunde.de", None),
    ("agent_reply", "end@kunde.de", None),
    ("reopened", "end@kunde.de", None),
])
def test_the_end_customer_is_told_only_of_the_close(event: str, end_customer: str | None,
                                                    kind: str | None) -> None:
    assert second_level.end_customer_kind(event, end_customer) == kind


# -- the mails (notices.plan) -----------------------------------------------------------------

AUDIENCE = Audience(
    requester="partner@franchise.de", requester_language="de",
    participants=("kollege@franchise.de",),
    group_members=("z1@example.com", "z2@example.com"),
    all_agents=("agent@example.com", "z1@example.com", "z2@example.com"),
    agent_language="en", ours=frozenset({"support@example.com"}),
    support_level=2, end_customer="end@kunde.de", end_customer_language="en",
)


def summary(event: str, audience: Audience) -> list[tuple[str, tuple, tuple, str, str | None]]:
    return [(p.kind, p.to, p.cc, p.language, p.auto_submitted) for p in plan(event, audience)]


@pytest.mark.parametrize(("changes", "expected"), [
    # level 2: the partner gets the solution to pass on, the end customer nothing
    ({}, [("second_level_solved", ("partner@franchise.de",), ("kollege@franchise.de",), "de",
           None)]),
    # level 1: the usual solution mail
    ({"support_level": 1}, [("solution", ("partner@franchise.de",), ("kollege@franchise.de",),
                             "de", None)]),
])
def test_solution(changes: dict, expected: list) -> None:
    assert summary("solution", replace(AUDIENCE, **changes)) == expected


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, [("closed", ("partner@franchise.de",), (), "de", AUTO_GENERATED),
          ("end_customer_closed", ("end@kunde.de",), (), "en", AUTO_GENERATED)]),
    ({"support_level": 1}, [("closed", ("partner@franchise.de",), (), "de", AUTO_GENERATED),
                            ("end_customer_closed", ("end@kunde.de",), (), "en",
                             AUTO_GENERATED)]),
    ({"end_customer": None}, [("closed", ("partner@franchise.de",), (), "de", AUTO_GENERATED)]),
    ({"over_limit": frozenset({"end@kunde.de"})},
     [("closed", ("partner@franchise.de",), (), "de", AUTO_GENERATED)]),
    ({"end_customer": "noreply@kunde.de"},
     [("closed", ("partner@franchise.de",), (), "de", AUTO_GENERATED)]),
])
def test_closed(changes: dict, expected: list) -> None:
    assert summary("closed", replace(AUDIENCE, **changes)) == expected


@pytest.mark.parametrize("event", ["agent_reply", "reopened", "ticket_recorded", "release",
                                   "solved_by_customer"])
def test_the_end_customer_gets_nothing_else(event: str) -> None:
    assert all("end@kunde.de" not in p.to + p.cc for p in plan(event, AUDIENCE))


@pytest.mark.parametrize(("changes", "to"), [
    ({}, ["z1@example.com", "z2@example.com"]),
    # the group's members even when someone is assigned: the group takes it over
    ({"assignee": "agent@example.com"}, ["z1@example.com", "z2@example.com"]),
    ({"agents_to_skip": frozenset({"z1@example.com"})}, ["z2@example.com"]),
    ({"group_members": (), "group_address": "zentrale@example.com"}, ["zentrale@example.com"]),
    # no [second_level] group: whoever an agent notice goes to
    ({"group_members": (), "assignee": "agent@example.com"}, ["agent@example.com"]),
])
def test_handover_tells_the_group(changes: dict, to: list) -> None:
    plans = plan("second_level_handover", replace(AUDIENCE, **changes))
    assert [p.to[0] for p in plans] == to
    assert {(p.kind, p.language, p.auto_submitted) for p in plans} == {
        ("agent_notice_second_level", "en", AUTO_GENERATED)}
    assert all("partner@franchise.de" not in p.to and "end@kunde.de" not in p.to for p in plans)
