"""Categories decide the group (seed 003): the pure decision, the config
check, the notice plan, and in-process through the CLI: a category given to
a ticket assigns its group and tells its members once."""

from __future__ import annotations

import json

import pytest

from maildesk.config import ConfigError, load_settings
from maildesk.tickets import categories, notices
from maildesk.tickets.categories import CategoryEffect, CategoryRule
from maildesk.types import Route
from tests.conftest import REPO, Desk

RULES = (CategoryRule("Betrieb", group="ops", notify="betrieb@example.com"),
         CategoryRule("Vertrieb", notify="vertrieb@example.com"),
         CategoryRule("Sonstiges"))


@pytest.mark.parametrize(("old", "new", "explicit", "assign", "expected"), [
    # a new main category with a group: the group is set and told
    (None, "Betrieb", None, True, CategoryEffect(group="ops", tell_group=True)),
    ("Vertrieb", "betrieb", None, True, CategoryEffect(group="ops", tell_group=True)),
    # the agent names a group in the same change: the agent's choice wins
    (None, "Betrieb", "sales", True, CategoryEffect()),
    (None, "Betrieb", "none", True, CategoryEffect()),
    # assign_group off: the category's address is told instead
    (None, "Betrieb", None, False, CategoryEffect(tell_address="betrieb@example.com")),
    # no group on the category: its address
    ("Betrieb", "Vertrieb", None, True, CategoryEffect(tell_address="vertrieb@example.com")),
    # neither group nor address, the same main category, cleared, free text
    (None, "Sonstiges", None, True, CategoryEffect()),
    ("Betrieb", "Betrieb", None, True, CategoryEffect()),
    ("Betrieb", None, None, True, CategoryEffect()),
    (None, "Unbekannt", None, True, CategoryEffect()),
])
def test_effect(old: str | None, new: str | None, explicit: str | None, assign: bool,
                expected: CategoryEffect) -> None:
    assert categories.effect(RULES, old, new, explicit, assign) == expected


def test_a_new_ticket_gets_the_group_of_its_category_unless_the_route_names_one() -> None:
    assert categories.with_group(Route(category="Betrieb"), RULES, True) == (
        Route(category="Betrieb", group="ops"), True)
    assert categories.with_group(Route(category="Betrieb", group="2nd"), RULES, True) == (
        Route(category="Betrieb", group="2nd"), False)
    assert categories.with_group(Route(category="Betrieb"), RULES, False) == (
        Route(category="Betrieb"), False)
    assert categories.with_group(Route(), RULES, True) == (Route(), False)


def audience(**changes: object) -> notices.Audience:
    values: dict[str, object] = {
        "requester": "kunde@example.de", "assignee": "max@support.example",
        "group_members": ("a@support.example", "b@support.example"),
        "all_agents": ("max@support.example", "a@support.example", "b@support.example",
                       "c@support.example"),
        "category_address": "betrieb@example.com"}
    values.update(changes)
    return notices.Audience(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("event", "changes", "to"), [
    # every member of the group the category assigned, the assignee aside
    ("category_group", {}, ["a@support.example", "b@support.example"]),
    # the agent who set it is not told of their own change
    ("category_group", {"agents_to_skip": frozenset({"a@support.example"})},
     ["b@support.example"]),
    ("category_group", {"group_members": (), "group_address": "ops@example.com"},
     ["ops@example.com"]),
    ("category_address", {}, ["betrieb@example.com"]),
    ("category_address", {"category_address": None}, []),
])
def test_category_notices(event: str, changes: dict[str, object], to: list[str]) -> None:
    plans = notices.plan(event, audience(**changes))
    assert [p.to[0] for p in plans] == to
    assert {p.kind for p in plans} <= {"agent_notice_category"}


def test_a_new_ticket_without_group_tells_the_category_address_not_every_agent() -> None:
    plans = notices.plan("ticket_created", audience(assignee=None, group_members=()))
    assert [(p.kind, p.to) for p in plans] == [
        ("acknowledgement", ("kunde@example.de",)),
        ("agent_notice_new", ("betrieb@example.com",))]
    plans = notices.plan("ticket_created", audience(assignee=None, group_members=(),
                                                    category_address=None))
    assert len([p for p in plans if p.kind == "agent_notice_new"]) == 4


CATEGORIES = ('[{name = "Betrieb", subcategories = ["Server", "Netz"], group = "ops", '
              'public = true}, {name = "Vertrieb", notify = "vertrieb@example.com"}]')
GROUPS = '[{name = "ops", members = ["z1@example.com", "z2@example.com"]}]'
AGENTS = ('[{email = "agent@example.com", name = "Demo"}, {email = "z1@example.com"}, '
          '{email = "z2@example.com"}]')


def test_config_refuses_a_category_naming_an_unknown_group() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(REPO / "maildesk.toml", {
            "MAILDESK_CATEGORIES": '[{name = "Betrieb", group = "nope"}]'})
    message = str(caught.value)
    assert "key 'categories'" in message and "categories[0].group" in message
    assert "'nope'" in message


def test_config_refuses_a_route_naming_an_unknown_category() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\]\.category: 'Einkauf'"):
        load_settings(REPO / "maildesk.toml", {
            "MAILDESK_GROUPS": GROUPS, "MAILDESK_CATEGORIES": CATEGORIES,
            "MAILDESK_ROUTES": '[{address = "x@example.com", category = "Einkauf"}]'})


def test_config_keeps_the_categories() -> None:
    settings = load_settings(REPO / "maildesk.toml", {
        "MAILDESK_GROUPS": GROUPS, "MAILDESK_CATEGORIES": CATEGORIES})
    assert settings.category_labels == ("Betrieb", "Betrieb/Server", "Betrieb/Netz",
                                        "Vertrieb")
    betrieb = settings.category("betrieb")
    assert betrieb is not None and betrieb.public and betrieb.group == "ops"
    assert settings.categories_assign_group is True
    assert load_settings(REPO / "maildesk.toml", {}).categories == ()


@pytest.fixture
def categorised(desk: Desk) -> Desk:
    env = {**desk.env, "MAILDESK_AGENTS": AGENTS, "MAILDESK_GROUPS": GROUPS,
           "MAILDESK_CATEGORIES": CATEGORIES}
    return Desk(desk.root, env, load_settings(REPO / "maildesk.toml", env))


def outbox(desk: Desk, kind: str) -> list[tuple[int, str]]:
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    return sorted((r["ticket"], ", ".join(r["to"])) for r in rows if r["kind"] == kind)


def create(desk: Desk, *extra: str) -> int:
    result = desk.cli("tickets", "create", "--requester", "kunde@example.de", "--subject",
                      "Server steht", "--text", "Nichts geht.", "--agent",
                      "agent@example.com", *extra)
    assert result.exit_code == 0, result.output
    return int(result.stdout.split(":")[0].lstrip("#"))


def test_setting_a_category_assigns_its_group_and_tells_its_members(categorised: Desk) -> None:
    desk = categorised
    number = create(desk)
    assert desk.show(number)["group"] is None
    result = desk.cli("tickets", "set", str(number), "--category", "betrieb/server",
                      "--agent", "agent@example.com")
    assert result.exit_code == 0, result.output
    ticket = desk.show(number)
    assert (ticket["category"], ticket["subcategory"], ticket["group"]) == (
        "Betrieb", "Server", "ops")
    assert ("group", "ops") in [(e["field"], e["new"]) for e in ticket["events"]]
    assert outbox(desk, "agent_notice_category") == [(number, "z1@example.com"),
                                                     (number, "z2@example.com")]
    # a sub category alone changes nothing more and tells nobody again
    assert desk.cli("tickets", "set", str(number), "--category", "Betrieb/Netz").exit_code == 0
    assert len(outbox(desk, "agent_notice_category")) == 2
    # a category without group: the group stays, the category's address is told
    assert desk.cli("tickets", "set", str(number), "--category", "Vertrieb").exit_code == 0
    assert desk.show(number)["group"] == "ops"
    assert (number, "vertrieb@example.com") in outbox(desk, "agent_notice_category")


def test_a_group_given_with_the_category_wins(categorised: Desk) -> None:
    desk = categorised
    number = create(desk)
    result = desk.cli("tickets", "set", str(number), "--category", "Betrieb", "--group", "none")
    assert result.exit_code == 0, result.output
    assert desk.show(number)["group"] is None
    assert outbox(desk, "agent_notice_category") == []


def test_a_category_not_configured_is_refused_and_changes_nothing(categorised: Desk) -> None:
    desk = categorised
    number = create(desk)
    result = desk.cli("tickets", "set", str(number), "--category", "Einkauf")
    assert result.exit_code != 0
    assert "'Einkauf' is not a configured category" in result.output
    assert "Betrieb/Server" in result.output
    assert desk.show(number)["category"] is None
    result = desk.cli("tickets", "create", "--requester", "kunde@example.de", "--subject",
                      "x", "--text", "y", "--category", "Einkauf")
    assert result.exit_code == 2 and "category:" in result.output


def test_a_new_ticket_in_a_category_tells_its_group_once(categorised: Desk) -> None:
    desk = categorised
    number = create(desk, "--category", "Betrieb")
    ticket = desk.show(number)
    assert ticket["group"] == "ops"
    assert ("group", "ops") in [(e["field"], e["new"]) for e in ticket["events"]]
    assert outbox(desk, "agent_notice_new") == [(number, "z1@example.com"),
                                                (number, "z2@example.com")]
    assert outbox(desk, "agent_notice_category") == []


def test_without_categories_any_category_is_taken(desk: Desk) -> None:
    number = create(desk, "--category", "Frei")
    assert desk.cli("tickets", "set", str(number), "--category", "Was/Auch").exit_code == 0
    assert (desk.show(number)["category"], desk.show(number)["subcategory"]) == ("Was", "Auch")
