"""Which mails an event causes: a pure table, tested without a database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from maildesk.tickets.notices import AUTO_GENERATED, AUTO_REPLIED, Audience, plan

BASE = Audience(
    requester="erika@kunde.de", requester_language="en",
    participants=("kollege@kunde.de", "noreply@kunde.de", "support@example.com"),
    all_agents=("agent@example.com", "second@example.com"),
    ours=frozenset({"support@example.com"}),
)


def summary(event: str, audience: Audience = BASE) -> list[tuple[str, tuple, tuple, str | None]]:
    return [(p.kind, p.to, p.cc, p.auto_submitted) for p in plan(event, audience)]


def test_new_ticket_acknowledges_and_tells_the_agents() -> None:
    assert summary("ticket_created") == [
        ("acknowledgement", ("erika@kunde.de",), (), AUTO_REPLIED),
        ("agent_notice_new", ("agent@example.com",), (), AUTO_GENERATED),
        ("agent_notice_new", ("second@example.com",), (), AUTO_GENERATED),
    ]
    assert plan("ticket_created", BASE)[0].language == "en"


@pytest.mark.parametrize(("changes", "agents"), [
    ({"assignee": "second@example.com"}, ["second@example.com"]),
    ({"group_members": ("g1@example.com", "g2@example.com")}, ["g1@example.com", "g2@example.com"]),
    ({"group_address": "2nd-level@example.com"}, ["2nd-level@example.com"]),
])
def test_agent_notices_go_to_assignee_else_group_else_group_address(changes: dict,
                                                                   agents: list) -> None:
    kinds = plan("customer_reply", replace(BASE, **changes))
    assert [p.to[0] for p in kinds] == agents
    assert all(p.kind == "agent_notice_reply" for p in kinds)


def test_agent_reply_goes_to_requester_and_cc_but_never_noreply_or_us() -> None:
    assert summary("agent_reply") == [
        ("agent_reply", ("erika@kunde.de",), ("kollege@kunde.de",), None)]


def test_nothing_automatic_to_bouncing_or_over_the_limit() -> None:
    bouncing = replace(BASE, bouncing=frozenset({"erika@kunde.de"}))
    assert [p.kind for p in plan("ticket_created", bouncing)] == ["agent_notice_new"] * 2
    limited = replace(BASE, over_limit=frozenset({"erika@kunde.de"}))
    assert "acknowledgement" not in [p.kind for p in plan("ticket_created", limited)]
    # a human reply still goes to a bouncing address (it may work again)
    assert plan("agent_reply", bouncing)[0].to == ("erika@kunde.de",)


def test_noreply_requester_gets_nothing_automatic() -> None:
    audience = replace(BASE, requester="no-reply@shop.example", participants=())
    assert [p.kind for p in plan("ticket_created", audience)] == ["agent_notice_new"] * 2


def test_phone_tickets_get_no_acknowledgement() -> None:
    assert "acknowledgement" not in [p.kind for p in
                                     plan("ticket_created", replace(BASE, channel="phone"))]


def test_a_ticket_recorded_for_a_customer_is_acknowledged_on_any_channel() -> None:
    """An agent or an integration opened it (phone, web form, API): the
    customer gets the number and the reply address; the rules against robots
    and bouncing addresses still hold."""
    phone = replace(BASE, channel="phone")
    kinds = [p.kind for p in plan("ticket_recorded", phone)]
    assert kinds[0] == "acknowledgement" and kinds.count("agent_notice_new") == 2
    noreply = replace(phone, requester="no-reply@shop.example", participants=())
    assert "acknowledgement" not in [p.kind for p in plan("ticket_recorded", noreply)]


@pytest.mark.parametrize(("event", "kinds"), [
    ("customer_reply", ["agent_notice_reply", "agent_notice_reply"]),
    ("reopened", ["reopened", "agent_notice_reply", "agent_notice_reply"]),
    ("followup_created", ["followup_created", "agent_notice_new", "agent_notice_new"]),
    ("solution", ["solution"]),
    ("closed", ["closed"]),
])
def test_every_event(event: str, kinds: list[str]) -> None:
    assert [p.kind for p in plan(event, BASE)] == kinds


def test_the_acting_agent_is_not_told_about_their_own_action() -> None:
    audience = replace(BASE, agents_to_skip=frozenset({"agent@example.com"}))
    assert [p.to for p in plan("customer_reply", audience)] == [("second@example.com",)]


def test_unknown_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown notification event"):
        plan("birthday", BASE)
