"""PATCH /api/v1/tickets/{number} for category, CC and followers (issue
#14), over real HTTP on SQLite and PostgreSQL: each change is an event with
the token's agent as actor, a refused one is a 422 naming the field and
changes nothing, and a removed CC neither gets the next reply's copy nor
threads a mail by the subject tag alone."""

from __future__ import annotations

from typing import Any

from tests.conftest import Desk
from tests.mailfactory import make_mail
from tests.web import test_api as base
from tests.web.test_api import AGENT, Api, assert_problem, token

api = base.api  # the running server of test_api.py, on both databases

_made = iter(range(10**6))


def ticket_with_cc(desk: Desk, cc: str = "Kollege <Kollege@Kunde.de>") -> int:
    n = next(_made)
    _, out = desk.ingest(make_mail(subject=f"Heizung kalt {n}", cc=cc,
                                   message_id=f"<fields-{n}-{id(desk)}@kunde.de>"))
    return out["ticket"]


def events(ticket: dict[str, Any], *fields: str) -> list[tuple[str, str, Any, Any]]:
    return [(e["actor"], e["field"], e["old"], e["new"]) for e in ticket["events"]
            if e["field"] in fields]


def roles(ticket: dict[str, Any]) -> dict[str, str]:
    return {p["email"]: p["role"] for p in ticket["participants"]}


def last_out_cc(desk: Desk) -> tuple[str, list[str]]:
    """(to, cc sorted) of the newest agent reply's notification: what the
    worker will send."""
    with desk.engine().connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT to_addrs, cc_addrs FROM outbox WHERE kind = 'agent_reply' "
            "AND to_addrs = 'erika@kunde.de' ORDER BY id DESC").first()
    assert row is not None
    return row.to_addrs, sorted(row.cc_addrs.split(", "))


async def test_a_category_is_set_changed_and_cleared(api: Api) -> None:
    number = ticket_with_cc(api.desk)
    secret = token(api.desk)
    status, _, changed = await api.patch(f"/tickets/{number}", secret,
                                         {"category": " Heizung / Wartung "})
    assert status == 200, changed
    assert changed["changes"] == ["category: - -> Heizung/Wartung"]
    assert (changed["ticket"]["category"], changed["ticket"]["subcategory"]) == (
        "Heizung", "Wartung")
    status, _, again = await api.patch(f"/tickets/{number}", secret,
                                       {"category": "Heizung/Wartung"})
    assert status == 200 and again["changes"] == []  # the same again: nothing to record
    _, _, main_only = await api.patch(f"/tickets/{number}", secret, {"category": "Heizung"})
    assert main_only["changes"] == ["category: Heizung/Wartung -> Heizung"]
    assert main_only["ticket"]["subcategory"] is None  # the sub category goes with it
    _, _, cleared = await api.patch(f"/tickets/{number}", secret, {"category": None})
    assert cleared["changes"] == ["category: Heizung -> none"]
    assert (cleared["ticket"]["category"], cleared["ticket"]["subcategory"]) == (None, None)
    status, _, _ = await api.patch(f"/tickets/{number}", secret, {"category": "Strom"})
    assert status == 200
    _, _, by_word = await api.patch(f"/tickets/{number}", secret, {"category": "none"})
    assert by_word["changes"] == ["category: Strom -> none"]
    assert events(by_word["ticket"], "category") == [
        (AGENT, "category", None, "Heizung/Wartung"),
        (AGENT, "category", "Heizung/Wartung", "Heizung"),
        (AGENT, "category", "Heizung", "none"),
        (AGENT, "category", None, "Strom"),
        (AGENT, "category", "Strom", "none")]


async def test_a_category_that_is_no_category_is_a_422_and_nothing_changes(api: Api) -> None:
    number = ticket_with_cc(api.desk)
    secret = token(api.desk)
    await api.patch(f"/tickets/{number}", secret, {"category": "Heizung"})
    _, _, before = await api.get(f"/tickets/{number}", secret)
    for bad in ("a/b/c", "/Wartung", "Heiz\x00ung", "x" * 101 + "/y", "x" * 202):
        status, headers, problem = await api.patch(
            f"/tickets/{number}", secret, {"category": bad, "priority": "high"})
        assert_problem(status, headers, problem, 422)
        assert problem["field"] == "category", problem
        assert "category" in problem["detail"]
    _, _, after = await api.get(f"/tickets/{number}", secret)
    assert (after["category"], after["priority"], len(after["events"])) == (
        before["category"], before["priority"], len(before["events"]))


async def test_cc_and_followers_are_added_moved_and_removed_with_events(api: Api) -> None:
    number = ticket_with_cc(api.desk)
    secret = token(api.desk)
    _, _, ticket = await api.get(f"/tickets/{number}", secret)
    assert roles(ticket) == {"kollege@kunde.de": "cc"}  # from the mail's Cc
    status, _, changed = await api.patch(f"/tickets/{number}", secret, {
        "add_cc": ["Chefin@Kunde.de", "chefin@kunde.de"],
        "add_followers": ["agent@example.com", "Kollege@kunde.de"]})
    assert status == 200, changed
    assert changed["changes"] == [
        "cc: - -> chefin@kunde.de", "follower: - -> agent@example.com",
        "cc: kollege@kunde.de -> -", "follower: - -> kollege@kunde.de"]
    assert roles(changed["ticket"]) == {"kollege@kunde.de": "follower",
                                        "chefin@kunde.de": "cc",
                                        "agent@example.com": "follower"}
    _, _, same = await api.patch(f"/tickets/{number}", secret,
                                 {"add_cc": ["chefin@kunde.de"]})
    assert same["changes"] == []  # already CC: a retried request is harmless
    status, _, removed = await api.patch(f"/tickets/{number}", secret, {
        "remove_cc": ["CHEFIN@kunde.de"], "remove_followers": ["agent@example.com"]})
    assert status == 200, removed
    assert removed["changes"] == ["cc: chefin@kunde.de -> -",
                                  "follower: agent@example.com -> -"]
    assert roles(removed["ticket"]) == {"kollege@kunde.de": "follower"}
    assert events(removed["ticket"], "cc", "follower") == [
        (AGENT, "cc", None, "chefin@kunde.de"),
        (AGENT, "follower", None, "agent@example.com"),
        (AGENT, "cc", "kollege@kunde.de", None),
        (AGENT, "follower", None, "kollege@kunde.de"),
        (AGENT, "cc", "chefin@kunde.de", None),
        (AGENT, "follower", "agent@example.com", None)]
    shown = api.desk.cli("tickets", "show", str(number)).stdout
    assert "followers: Kollege <kollege@kunde.de>" in shown
    assert f"{AGENT}  cc: chefin@kunde.de -> -" in shown


async def test_participant_changes_that_cannot_be_made_are_422s_naming_them(api: Api) -> None:
    number = ticket_with_cc(api.desk)
    secret = token(api.desk)
    _, _, before = await api.get(f"/tickets/{number}", secret)
    refused = {
        "add_cc": (["kein-address"], "not an e-mail address"),
        "remove_cc": (["fremd@kunde.de"], "fremd@kunde.de: it is not on"),
        "remove_followers": (["kollege@kunde.de"], "it is a cc of"),
    }
    for field, (addresses, detail) in refused.items():
        status, headers, problem = await api.patch(
            f"/tickets/{number}", secret, {field: addresses, "category": "Heizung",
                                           "add_followers": ["neu@kunde.de"]})
        assert_problem(status, headers, problem, 422)
        assert problem["field"].split(".")[0] == field, problem
        assert detail in problem["detail"], problem
    for body, detail in (
            ({"add_cc": ["erika@kunde.de"]}, "is the requester"),
            ({"add_followers": ["support+x@example.com"]}, "our support addresses"),
            ({"add_cc": ["a@kunde.de"], "remove_cc": ["a@kunde.de"]}, "also in add_cc"),
            ({"add_cc": [f"p{n}@kunde.de" for n in range(51)]}, "add_cc")):
        status, headers, problem = await api.patch(f"/tickets/{number}", secret, body)
        assert_problem(status, headers, problem, 422)
        assert detail in problem["detail"], problem
    _, _, after = await api.get(f"/tickets/{number}", secret)
    assert (roles(after), after["category"], after["events"]) == (
        roles(before), before["category"], before["events"])
    assert_problem(*await api.patch("/tickets/99999999", secret,
                                    {"add_cc": ["x@kunde.de"]}), 404)


async def test_a_removed_cc_gets_no_copy_and_no_longer_threads_by_the_tag(api: Api) -> None:
    number = ticket_with_cc(api.desk, cc="kollege@kunde.de, zweite@kunde.de")
    secret = token(api.desk)
    await api.post(f"/tickets/{number}/replies", secret, {"text": "Wir kümmern uns."})
    assert last_out_cc(api.desk) == ("erika@kunde.de",
                                     ["kollege@kunde.de", "zweite@kunde.de"])
    tagged = make_mail(subject=f"AW: [#{number}] Heizung", sender="zweite@kunde.de")
    assert api.desk.ingest(tagged)[1]["action"] == "appended"  # a CC: the tag is enough
    status, _, _ = await api.patch(f"/tickets/{number}", secret,
                                   {"remove_cc": ["zweite@kunde.de"],
                                    "add_followers": ["chef@kunde.de"]})
    assert status == 200
    await api.post(f"/tickets/{number}/replies", secret, {"text": "Der Techniker kommt."})
    # a follower is a silent observer: a mail of its own, not in the visible Cc (#15)
    assert last_out_cc(api.desk) == ("erika@kunde.de", ["kollege@kunde.de"])
    with api.desk.engine().connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT cc_addrs FROM outbox WHERE kind = 'agent_reply' "
            "AND to_addrs = 'chef@kunde.de'").scalar() == ""
    _, _, ticket = await api.get(f"/tickets/{number}", secret)
    # the reply as recorded names the visible Cc; the follower got a mail of her own
    assert ticket["messages"][-1]["cc"] == ["kollege@kunde.de"]
    code, out = api.desk.ingest(make_mail(subject=f"AW: [#{number}] Heizung",
                                          sender="zweite@kunde.de"))
    assert (code, out["action"]) == (0, "created") and out["ticket"] != number


async def test_the_changed_ticket_matches_the_documented_schema(api: Api) -> None:
    from jsonschema import Draft202012Validator

    number = ticket_with_cc(api.desk)
    secret = token(api.desk)
    _, _, document = await api.get("/openapi.json")
    schemas = document["components"]["schemas"]
    change = schemas["TicketChange"]["properties"]
    assert {"category", "add_cc", "remove_cc", "add_followers", "remove_followers"} <= set(
        change)
    _, _, changed = await api.patch(f"/tickets/{number}", secret,
                                    {"category": "Heizung/Wartung",
                                     "add_followers": ["chef@kunde.de"]})
    Draft202012Validator({"$ref": "#/components/schemas/Changed",
                          "components": {"schemas": schemas}}).validate(changed)
