"""Customers and organisations over real HTTP, on SQLite and PostgreSQL:
lists with filters and a cursor, changes recorded with the agent as actor,
an agent token refused on the administrator's fields with nothing written,
and the customer-facing read (GET /customers/{id}/tickets) through the one
rule: main contacts see their organisation, users their own, the stricter
setting wins, the unconfirmed see nothing and another organisation's
tickets are never in it. The same from the CLI."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Desk
from tests.mailfactory import make_mail
from tests.web.test_api import AGENT, Api, assert_problem, token
from tests.web.test_api import api as api  # the fixture


def _mail(desk: Desk, sender: str, subject: str, cc: str | None = None) -> int:
    _, out = desk.ingest(make_mail(subject=subject, sender=sender, cc=cc,
                                   message_id=f"<{subject.replace(' ', '-')}-{id(desk)}@x.de>"))
    return out["ticket"]


async def _customer(api: Api, secret: str, email: str) -> dict[str, Any]:
    status, _, page = await api.get(f"/customers?q={email}", secret)
    assert status == 200
    (found,) = [c for c in page["items"] if c["email"] == email]
    return found


async def _seen(api: Api, secret: str, customer: dict[str, Any]) -> tuple[str, set[int]]:
    status, _, page = await api.get(f"/customers/{customer['id']}/tickets", secret)
    assert status == 200, page
    return page["sees"], {t["number"] for t in page["items"]}


async def test_who_sees_which_tickets_follows_roles_and_the_stricter_setting(
        api: Api) -> None:
    desk = api.desk
    agent, admin = token(desk), token(desk, "--scope", "admin")
    chef_ticket = _mail(desk, "Chefin <chefin@firma.de>", "Vertrag")
    user_ticket = _mail(desk, "Paul <paul@firma.de>", "Drucker", cc="olga@firma.de")
    olga_ticket = _mail(desk, "olga@firma.de", "Passwort")
    other_ticket = _mail(desk, "fremd@andere.de", "Geheim")
    chefin, paul, olga = [await _customer(api, agent, e)
                          for e in ("chefin@firma.de", "paul@firma.de", "olga@firma.de")]
    assert chefin["organisation"]["name"] == "firma.de" and chefin["role"] == "user"

    # nobody has confirmed yet: nothing is visible, not even the own ticket
    assert await _seen(api, agent, chefin) == ("none", set())
    for person in (chefin, paul, olga):
        status, _, _ = await api.patch(f"/customers/{person['id']}", agent, {"confirmed": True})
        assert status == 200
    assert await _seen(api, agent, paul) == ("own", {user_ticket})
    # CC of Paul's ticket: Olga sees it beside her own
    assert await _seen(api, agent, olga) == ("own", {user_ticket, olga_ticket})

    # an agent cannot make her main contact; nothing is written
    before = (await api.get(f"/customers/{chefin['id']}", agent))[2]
    status, headers, problem = await api.patch(f"/customers/{chefin['id']}", agent,
                                               {"role": "main_contact", "name": "Chefin"})
    assert_problem(status, headers, problem, 403)
    assert problem["field"] == "role"
    assert (await api.get(f"/customers/{chefin['id']}", agent))[2] == before

    status, _, changed = await api.patch(f"/customers/{chefin['id']}", admin,
                                         {"role": "main_contact"})
    assert status == 200 and changed["changes"] == ["role: user -> main_contact"]
    assert changed["customer"]["sees"] == "organisation"
    # the organisation's tickets, never another organisation's
    assert await _seen(api, agent, changed["customer"]) == (
        "organisation", {chef_ticket, user_ticket, olga_ticket})
    assert other_ticket not in (await _seen(api, admin, changed["customer"]))[1]

    # the organisation keeps tickets private: the stricter setting wins, for her too
    org = chefin["organisation"]["id"]
    assert_problem(*await api.patch(f"/organisations/{org}", agent,
                                    {"ticket_access": "own"}), 403)
    status, _, done = await api.patch(f"/organisations/{org}", admin, {"ticket_access": "own"})
    assert status == 200 and done["changes"] == ["ticket_access: organisation -> own"]
    assert await _seen(api, agent, chefin) == ("own", {chef_ticket})
    # back to shared; a user granted the organisation's tickets now sees them
    await api.patch(f"/organisations/{org}", admin, {"ticket_access": "organisation"})
    status, _, granted = await api.patch(f"/customers/{paul['id']}", admin,
                                         {"ticket_access": "organisation"})
    assert granted["customer"]["sees"] == "organisation"
    assert (await _seen(api, agent, paul))[1] == {chef_ticket, user_ticket, olga_ticket}
    status, _, reset = await api.patch(f"/customers/{paul['id']}", admin,
                                       {"ticket_access": None})
    assert reset["customer"]["ticket_access"] is None and reset["customer"]["sees"] == "own"

    # every change is in the history with its actor
    _, _, detail = await api.get(f"/customers/{chefin['id']}", agent)
    assert [(e["actor"], e["field"], e["old"], e["new"]) for e in detail["events"]] == [
        (AGENT, "role", "user", "main_contact"), (AGENT, "confirmed", "false", "true")]
    _, _, organisation = await api.get(f"/organisations/{org}", agent)
    assert [e["new"] for e in organisation["events"]] == ["organisation", "own"]

    # a main contact's subject tag alone threads only while she may see the ticket
    await api.patch(f"/organisations/{org}", admin, {"ticket_access": "own"})
    _, out = desk.ingest(make_mail(subject=f"AW: [#{user_ticket}] Drucker",
                                   sender="chefin@firma.de", message_id=None))
    assert out["ticket"] != user_ticket


async def test_customer_changes_are_validated_and_listed_with_filters_and_cursor(
        api: Api) -> None:
    desk = api.desk
    agent = token(desk)
    for n in range(5):
        _mail(desk, f"k{n}@firma{n % 2}.de", f"Frage {n}")
    status, _, page = await api.get("/customers?limit=2", agent)
    first = [c["email"] for c in page["items"]]
    assert status == 200 and first == ["k4@firma0.de", "k3@firma1.de"]
    _mail(desk, "neu@firma0.de", "Neu dazu")  # a new customer does not shift the pages
    seen = list(first)
    cursor = page["next_cursor"]
    while cursor:
        _, _, page = await api.get(f"/customers?limit=2&cursor={cursor}", agent)
        seen += [c["email"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [f"k{n}@firma{n % 2}.de" for n in (4, 3, 2, 1, 0)]
    org = (await _customer(api, agent, "k1@firma1.de"))["organisation"]["id"]
    _, _, members = await api.get(f"/customers?organisation={org}", agent)
    assert {c["email"] for c in members["items"]} == {"k1@firma1.de", "k3@firma1.de"}

    k1 = await _customer(api, agent, "k1@firma1.de")
    status, _, changed = await api.patch(f"/customers/{k1['id']}", agent, {
        "name": "Karl Eins", "phone": "+49 30 1234-5", "language": "en",
        "info_recipient": True})
    assert status == 200 and changed["customer"]["phone"] == "+49 30 1234-5"
    assert changed["customer"]["language"] == "en" and changed["customer"]["name"] == "Karl Eins"
    _, _, since = await api.get(
        f"/customers?updated_since={changed['customer']['updated_at'].replace('+', '%2B')}",
        agent)
    assert [c["email"] for c in since["items"]] == ["k1@firma1.de"]
    before = (await api.get(f"/customers/{k1['id']}", agent))[2]
    for body, field in (({"phone": "ruf mich an"}, "phone"), ({"bouncing": True}, "bouncing"),
                        ({"language": "fr"}, "language"), ({"email": "x@y.de"}, "email"),
                        ({}, None)):
        status, headers, problem = await api.patch(f"/customers/{k1['id']}", agent, body)
        assert_problem(status, headers, problem, 422)
        assert problem.get("field") == field, problem
    assert (await api.get(f"/customers/{k1['id']}", agent))[2] == before
    assert_problem(*await api.get("/customers/987654", agent), 404)
    assert_problem(*await api.patch("/customers/987654", agent, {"name": "x"}), 404)
    for path in ("/customers", f"/customers/{k1['id']}", f"/customers/{k1['id']}/tickets",
                 "/organisations", f"/organisations/{org}"):
        assert_problem(*await api.get(path, None), 401)


async def test_organisation_domains_move_only_by_an_administrator(api: Api) -> None:
    desk = api.desk
    agent, admin = token(desk), token(desk, "--scope", "admin")
    _mail(desk, "a@alpha.de", "Alpha")
    _mail(desk, "b@beta.de", "Beta")
    _, _, page = await api.get("/organisations?q=alpha", agent)
    (alpha,) = page["items"]
    assert alpha["domains"] == ["alpha.de"] and alpha["members"] == 1
    beta = (await api.get("/organisations?q=beta.de", agent))[2]["items"][0]

    status, headers, problem = await api.patch(f"/organisations/{alpha['id']}", admin,
                                               {"add_domains": ["beta.de"]})
    assert_problem(status, headers, problem, 409)
    assert problem["field"] == "domains" and str(beta["id"]) in problem["detail"]
    assert_problem(*await api.patch(f"/organisations/{alpha['id']}", admin,
                                    {"remove_domains": ["gamma.de"]}), 422)
    assert_problem(*await api.patch(f"/organisations/{alpha['id']}", agent,
                                    {"name": "Alpha GmbH"}), 403)
    status, _, done = await api.patch(f"/organisations/{alpha['id']}", admin, {
        "name": "Alpha GmbH", "add_domains": ["alpha-gruppe.de"]})
    assert status == 200 and done["organisation"]["name"] == "Alpha GmbH"
    assert done["organisation"]["domains"] == ["alpha-gruppe.de", "alpha.de"]
    # a sender of the new domain now belongs to Alpha
    _mail(desk, "c@alpha-gruppe.de", "Gruppe")
    c = await _customer(api, agent, "c@alpha-gruppe.de")
    assert c["organisation"] == {"id": alpha["id"], "name": "Alpha GmbH"}


def test_the_cli_changes_customers_and_organisations(desk: Desk) -> None:
    _mail(desk, "Chefin <chefin@firma.de>", "Vertrag")
    _mail(desk, "paul@firma.de", "Drucker")
    result = desk.cli("customers", "set", "chefin@firma.de", "--role", "main_contact",
                      "--confirmed", "--phone", "030 1234")
    assert result.exit_code == 0, result.output
    assert "role: user -> main_contact" in result.stdout
    shown = desk.cli("customers", "show", "chefin@firma.de")
    assert "sees: organisation" in shown.stdout and "030 1234" in shown.stdout
    seen = json.loads(desk.cli("customers", "tickets", "chefin@firma.de", "--json").stdout)
    assert seen["sees"] == "organisation" and len(seen["items"]) == 2
    listed = json.loads(desk.cli("organisations", "list", "--json").stdout)
    (firma,) = listed
    result = desk.cli("organisations", "set", str(firma["id"]), "--access", "own")
    assert result.exit_code == 0 and "ticket_access: organisation -> own" in result.stdout
    seen = json.loads(desk.cli("customers", "tickets", "chefin@firma.de", "--json").stdout)
    assert seen["sees"] == "own" and len(seen["items"]) == 1
    bad = desk.cli("customers", "set", "chefin@firma.de", "--phone", "ruf an")
    assert bad.exit_code == 2 and "phone" in bad.stderr
    assert desk.cli("customers", "set", "nobody@x.example", "--name", "x").exit_code == 1
    assert desk.cli("organisations", "set", "999", "--name", "x").exit_code == 1
