"""Every notice an event causes, as one table (SPEC §6, issue 15): for an
event and an audience, which mails go out — kind (the template), To, CC,
language and Auto-Submitted — over the pure tickets/notices.plan.

Every event in notices.EVENTS must have at least one row: a new event
without one fails test_every_event_has_a_row, so whoever adds an event
writes down who it tells.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from maildesk.tickets import notices
from maildesk.tickets.notices import AUTO_GENERATED as GEN
from maildesk.tickets.notices import AUTO_REPLIED as REP
from maildesk.tickets.notices import Audience

CUSTOMER, CC = "erika@kunde.de", "kollege@kunde.de"
DE_AGENT, EN_AGENT = "agent@example.com", "zoe@example.com"
GROUP, CATEGORY = "team@example.com", "netz@example.com"
THIRD, END = "dritte@partner.de", "eva@endkunde.de"

#: The audiences the table uses, by name.
BASE = Audience(
    requester=CUSTOMER, participants=(CC,), all_agents=(DE_AGENT, EN_AGENT),
    agent_languages=((DE_AGENT, "de"), (EN_AGENT, "en")), ours=frozenset({"support@example.com"}))
AUDIENCES = {
    "base": BASE,  # no assignee, no group: every agent, each in their language
    "english": replace(BASE, requester_language="en"),
    "assigned_en": replace(BASE, assignee=EN_AGENT),
    "group_address": replace(BASE, group_address=GROUP),  # not an agent: the default language
    "group_en_default": replace(BASE, group_address=GROUP, agent_language="en"),
    "members": replace(BASE, group_members=(DE_AGENT, EN_AGENT), group_address=GROUP),
    "actor_skipped": replace(BASE, agents_to_skip=frozenset({DE_AGENT})),
    "bouncing": replace(BASE, bouncing=frozenset({CUSTOMER})),
    "web": replace(BASE, channel="web"),
    "third": replace(BASE, third_party=THIRD, third_party_language="en", asker=EN_AGENT),
    "level2": replace(BASE, support_level=2),
    "end_customer": replace(BASE, end_customer=END, end_customer_language="en"),
    "category": replace(BASE, category_address=CATEGORY),
}


def staff(kind: str) -> list[tuple]:
    """The notice to every agent of BASE, each in their own language."""
    return [(kind, (DE_AGENT,), (), "de", GEN), (kind, (EN_AGENT,), (), "en", GEN)]


#: (event, audience) -> [(kind, to, cc, language, auto_submitted)], in order.
TABLE: dict[tuple[str, str], list[tuple]] = {
    ("ticket_created", "base"): [("acknowledgement", (CUSTOMER,), (), "de", REP),
                                 *staff("agent_notice_new")],
    ("ticket_created", "english"): [("acknowledgement", (CUSTOMER,), (), "en", REP),
                                    *staff("agent_notice_new")],
    ("ticket_created", "assigned_en"): [("acknowledgement", (CUSTOMER,), (), "de", REP),
                                        ("agent_notice_new", (EN_AGENT,), (), "en", GEN)],
    ("ticket_created", "group_address"): [("acknowledgement", (CUSTOMER,), (), "de", REP),
                                          ("agent_notice_new", (GROUP,), (), "de", GEN)],
    ("ticket_created", "group_en_default"): [
        ("acknowledgement", (CUSTOMER,), (), "de", REP),
        ("agent_notice_new", (GROUP,), (), "en", GEN)],
    ("ticket_created", "members"): [("acknowledgement", (CUSTOMER,), (), "de", REP),
                                    *staff("agent_notice_new")],
    ("ticket_created", "bouncing"): staff("agent_notice_new"),
    ("ticket_created", "web"): staff("agent_notice_new"),  # a web form is acknowledged there
    ("ticket_recorded", "base"): [("acknowledgement", (CUSTOMER,), (), "de", GEN),
                                  *staff("agent_notice_new")],
    ("customer_reply", "base"): staff("agent_notice_reply"),
    ("customer_reply", "actor_skipped"): [("agent_notice_reply", (EN_AGENT,), (), "en", GEN)],
    ("reopened", "base"): [("reopened", (CUSTOMER,), (), "de", GEN),
                           *staff("agent_notice_reply")],
    ("followup_created", "base"): [("followup_created", (CUSTOMER,), (), "de", REP),
                                   *staff("agent_notice_new")],
    ("agent_reply", "base"): [("agent_reply", (CUSTOMER,), (CC,), "de", None)],
    # a human mail: a bouncing requester is still tried (no limit for it)
    ("agent_reply", "bouncing"): [("agent_reply", (CUSTOMER,), (CC,), "de", None)],
    ("solution", "base"): [("solution", (CUSTOMER,), (CC,), "de", None)],
    ("solution", "english"): [("solution", (CUSTOMER,), (CC,), "en", None)],
    ("solution", "level2"): [("second_level_solved", (CUSTOMER,), (CC,), "de", None)],
    ("closed", "base"): [("closed", (CUSTOMER,), (), "de", GEN)],
    ("closed", "bouncing"): [],  # automatic, and only for the requester
    ("closed", "end_customer"): [("closed", (CUSTOMER,), (), "de", GEN),
                                 ("end_customer_closed", (END,), (), "en", GEN)],
    ("on_hold", "base"): [("on_hold_development", (CUSTOMER,), (), "de", GEN)],
    ("on_hold", "english"): [("on_hold_development", (CUSTOMER,), (), "en", GEN)],
    ("on_hold", "bouncing"): [],
    ("release", "base"): [("release_notice", (CUSTOMER,), (), "de", GEN)],
    ("registration", "english"): [("registration", (CUSTOMER,), (), "en", GEN)],
    ("solved_by_customer", "base"): [("solved_by_customer", (CUSTOMER,), (), "de", REP),
                                     *staff("agent_notice_solved")],
    ("third_party_ask", "third"): [("third_party_ask", (THIRD,), (), "en", None)],
    ("third_party_forward", "third"): [("third_party_forward", (THIRD,), (), "en", None)],
    ("third_party_ask", "base"): [],  # nobody to ask
    ("statement", "third"): [("agent_notice_statement", (EN_AGENT,), (), "en", GEN)],
    ("statement", "base"): staff("agent_notice_statement"),  # no asker: the ticket's agents
    ("second_level_handover", "members"): staff("agent_notice_second_level"),
    ("second_level_handover", "assigned_en"): [
        ("agent_notice_second_level", (EN_AGENT,), (), "en", GEN)],
    ("category_group", "members"): staff("agent_notice_category"),
    ("category_group", "base"): [],  # no group: nobody
    ("category_address", "category"): [("agent_notice_category", (CATEGORY,), (), "de", GEN)],
}


def as_rows(plans: list[notices.NoticePlan]) -> list[tuple]:
    return [(p.kind, p.to, p.cc, p.language, p.auto_submitted) for p in plans]


@pytest.mark.parametrize(("event", "audience"), list(TABLE),
                         ids=[f"{event}-{audience}" for event, audience in TABLE])
def test_notices_of_an_event(event: str, audience: str) -> None:
    assert as_rows(notices.plan(event, AUDIENCES[audience])) == TABLE[event, audience]


def test_every_event_has_a_row() -> None:
    missing = sorted(set(notices.EVENTS) - {event for event, _ in TABLE})
    assert not missing, f"events without a row in TABLE: {missing}"


def test_every_row_names_a_known_event() -> None:
    assert {event for event, _ in TABLE} <= set(notices.EVENTS)


def test_an_unknown_agent_gets_the_default_language() -> None:
    audience = replace(BASE, agent_language="en")
    assert notices.language_of_agent("stranger@example.com", audience) == "en"
    assert notices.language_of_agent(EN_AGENT.upper(), BASE) == "en"
