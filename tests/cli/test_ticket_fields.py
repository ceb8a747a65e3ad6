"""`maildesk tickets set` for category, CC and followers, and `tickets show`
listing them (on SQLite and PostgreSQL); then the pure rules behind it
(tickets/categories.py, tickets/participants.py)."""

from __future__ import annotations

import re

import pytest

from maildesk.tickets import categories, participants
from tests.conftest import Desk
from tests.mailfactory import make_mail


def opened(desk: Desk) -> int:
    out = desk.ingest(make_mail(subject="Heizung kalt", cc="Kollege <kollege@kunde.de>",
                                message_id="<fields-cli@kunde.de>"))[1]
    return out["ticket"]


def test_set_changes_category_cc_and_followers_and_prints_each_change(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "set", str(number), "--category", "Heizung/Wartung",
                      "--add-cc", "Chefin@Kunde.de", "--add-follower", "agent@example.com",
                      "--add-follower", "kollege@kunde.de", "--agent", "agent@example.com")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"#{number} category: - -> Heizung/Wartung",
        f"#{number} cc: - -> chefin@kunde.de",
        f"#{number} follower: - -> agent@example.com",
        f"#{number} cc: kollege@kunde.de -> -",
        f"#{number} follower: - -> kollege@kunde.de"]
    ticket = desk.show(number)
    assert (ticket["category"], ticket["subcategory"]) == ("Heizung", "Wartung")
    assert [(p["email"], p["role"]) for p in ticket["participants"]] == [
        ("kollege@kunde.de", "follower"), ("chefin@kunde.de", "cc"),
        ("agent@example.com", "follower")]
    shown = desk.cli("tickets", "show", str(number)).stdout
    assert "cc: chefin@kunde.de\n" in shown
    assert "followers: Kollege <kollege@kunde.de>, agent@example.com\n" in shown
    assert "category: Heizung/Wartung\n" in shown
    assert "agent@example.com  follower: kollege@kunde.de\n" in shown

    removed = desk.cli("tickets", "set", str(number), "--remove-cc", "chefin@kunde.de",
                       "--remove-follower", "agent@example.com", "--category", "none")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.splitlines() == [
        f"#{number} category: Heizung/Wartung -> none",
        f"#{number} cc: chefin@kunde.de -> -",
        f"#{number} follower: agent@example.com -> -"]
    after = desk.show(number)
    assert [p["email"] for p in after["participants"]] == ["kollege@kunde.de"]
    assert after["category"] is None
    assert [e["actor"] for e in after["events"] if e["field"] == "cc"][-1].startswith("cli")
    shown = desk.cli("tickets", "show", str(number)).stdout
    assert "cc: chefin@kunde.de -> -" in shown and "\ncc: " not in shown
    again = desk.cli("tickets", "set", str(number), "--add-follower", "kollege@kunde.de")
    assert again.exit_code == 0 and again.stdout.strip() == "nothing changed"


@pytest.mark.parametrize(("args", "message"), [
    (["--remove-cc", "fremd@kunde.de"], "--remove-cc: fremd@kunde.de: it is not on"),
    (["--remove-follower", "kollege@kunde.de"], "--remove-follower: kollege@kunde.de: it is "
                                                "a cc of"),
    (["--add-cc", "kein-address"], "--add-cc: 'kein-address' is not an e-mail address"),
    (["--add-follower", "erika@kunde.de"], "is the requester"),
    (["--category", "a/b/c"], "--category: 'a/b/c' has more than one '/'"),
])
def test_set_refuses_with_the_option_named_and_changes_nothing(
        desk: Desk, args: list[str], message: str) -> None:
    number = opened(desk)
    before = desk.show(number)
    result = desk.cli("tickets", "set", str(number), "--priority", "high",
                      "--add-cc", "neu@kunde.de", *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    after = desk.show(number)
    assert (after["priority"], after["participants"], after["events"]) == (
        before["priority"], before["participants"], before["events"])


def test_set_without_anything_to_set_names_the_new_options(desk: Desk) -> None:
    result = desk.cli("tickets", "set", str(opened(desk)))
    assert result.exit_code == 2 and "--category" in result.output
    assert "--add-cc" in result.output and "--remove-follower" in result.output


# The rules behind the options (pure).

def test_a_category_is_main_or_main_and_sub() -> None:
    assert categories.parse(" Heizung ") == ("Heizung", None)
    assert categories.parse("Heizung / Wartung") == ("Heizung", "Wartung")
    assert categories.parse("Heizung/") == ("Heizung", None)
    assert categories.parse("none") == categories.parse("NONE") == categories.parse(" ") == (
        None, None)
    for bad in ("a/b/c", "/b", "a\x00b", "a\ud800", "x" * 101):
        with pytest.raises(categories.CategoryRefused):
            categories.parse(bad)
    assert categories.label("Heizung", "Wartung") == "Heizung/Wartung"
    assert categories.label(None, "Wartung") is None


def test_a_configured_list_is_kept_to_with_its_spelling() -> None:
    allowed = ("Betrieb", "Heizung/Wartung", "Heizung/Störung")
    assert categories.parse("betrieb", allowed) == ("Betrieb", None)
    assert categories.parse("HEIZUNG/wartung", allowed) == ("Heizung", "Wartung")
    assert categories.parse("heizung", allowed) == ("Heizung", None)  # its main alone
    assert categories.parse("none", allowed) == (None, None)
    with pytest.raises(categories.CategoryRefused, match="allowed: Betrieb, Heizung/Wartung"):
        categories.parse("Betrieb/Server", allowed)
    with pytest.raises(categories.CategoryRefused, match="'Strom' is not a configured"):
        categories.parse("Strom", allowed)


def test_participant_rules() -> None:
    current = {"kollege@kunde.de": "cc", "chef@kunde.de": "follower"}

    def plan(**lists: list[str]) -> list[participants.Change]:
        return participants.plan(10001, current, participants.Wanted(**lists),
                                 requester="erika@kunde.de", ours=("support@example.com",))

    assert plan(add_cc=["kollege@kunde.de"]) == []
    assert plan(add_cc=["chef@kunde.de"], remove_cc=["kollege@kunde.de"]) == [
        participants.Change("chef@kunde.de", "follower", "cc"),
        participants.Change("kollege@kunde.de", "cc", None)]
    assert plan(add_followers=["neu@kunde.de", "neu@kunde.de"]) == [
        participants.Change("neu@kunde.de", None, "follower")]
    refused = [
        ({"remove_cc": ["chef@kunde.de"]}, "remove_cc", "it is a follower of #10001"),
        ({"remove_followers": ["x@kunde.de"]}, "remove_followers", "it is not on #10001 "
         "(cc: kollege@kunde.de; follower: chef@kunde.de)"),
        ({"add_cc": ["Erika@kunde.de".lower()]}, "add_cc", "is the requester"),
        ({"add_cc": ["support+10001@example.com"]}, "add_cc", "our support addresses"),
        ({"add_cc": ["a@b.de"], "add_followers": ["a@b.de"]}, "add_followers",
         "also in add_cc"),
        ({"add_cc": [f"p{n}@b.de" for n in range(51)]}, "add_cc", "at most 50"),
    ]
    for lists, field, message in refused:
        with pytest.raises(participants.ParticipantRefused, match=re.escape(message)) as caught:
            plan(**lists)
        assert caught.value.field == field
    assert participants.describe({}) == "no CC or followers"
