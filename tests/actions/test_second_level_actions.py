"""2nd-level support end to end in-process (seed 003): a partner's ticket for
its end customer is handed to the central support, solved there, the
partner told, then closed and the end customer told; and what is refused
changes nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from maildesk.config import load_settings
from maildesk.deliver.sender import Sender
from maildesk.models import Outbox
from tests.conftest import REPO, Desk
from tests.mailfactory import make_mail
from tests.web import test_api as web_base
from tests.web.test_api import Api, assert_problem, token

api = web_base.api  # the running server of test_api.py, on both databases

PARTNER = "partner@franchise.de"
END = "eva@endkunde.de"


@pytest.fixture
def central(desk: Desk) -> Desk:
    """The desk with a central-support group of two agents as [second_level]."""
    env = {**desk.env,
           "MAILDESK_AGENTS": '[{email = "agent@example.com", name = "Demo"}, '
                              '{email = "z1@example.com", name = "Zora", language = "en"}, '
                              '{email = "z2@example.com"}]',
           "MAILDESK_GROUPS": '[{name = "zentrale", members = ["z1@example.com", '
                              '"z2@example.com"]}]',
           "MAILDESK_SECOND_LEVEL__GROUP": "zentrale"}
    return Desk(desk.root, env, load_settings(REPO / "maildesk.toml", env))


def outbox(desk: Desk) -> list[tuple[str, int, tuple[str, ...]]]:
    rows = json.loads(desk.cli("outbox", "list", "--json").stdout)
    return sorted((r["kind"], r["ticket"], tuple(r["to"] + r["cc"])) for r in rows)


def partner_ticket(desk: Desk) -> int:
    """The partner writes once (becomes a customer), is marked internal, and
    an agent records a ticket about the partner's end customer."""
    if desk.cli("customers", "show", PARTNER).exit_code != 0:
        desk.ingest(make_mail(subject="Erste Frage", sender=f"Autohaus Nord <{PARTNER}>"))
        result = desk.cli("customers", "set", PARTNER, "--kind", "internal")
        assert result.exit_code == 0 and "kind: external -> internal" in result.stdout
    result = desk.cli("tickets", "create", "--requester", PARTNER, "--end-customer",
                      END.upper(), "--subject", "Navi startet nicht", "--text",
                      "Beim Kunden Eva startet das Navi nicht.", "--agent", "agent@example.com")
    assert result.exit_code == 0, result.output
    return int(result.stdout.split(":")[0].lstrip("#"))


def mail_text(desk: Desk, kind: str, to: str | None = None) -> str:
    """The text part the worker would send for the (one) row of `kind`."""
    engine = desk.engine()
    table = Outbox.__table__
    statement = select(table).where(table.c.kind == kind)
    if to is not None:
        statement = statement.where(table.c.to_addrs == to)
    with engine.connect() as connection:
        row = dict(connection.execute(statement).one()._mapping)
    fields: dict[str, Any] = Sender(desk.settings, engine).mails.fields(row)[0]
    return str(fields["rendered"].text)


def test_partner_ticket_through_second_level_and_back(central: Desk) -> None:
    desk = central
    number = partner_ticket(desk)
    ticket = desk.show(number)
    assert ticket["requester"]["email"] == PARTNER and ticket["requester"]["kind"] == "internal"
    assert ticket["end_customer"]["email"] == END and ticket["support_level"] == 1
    assert ("end_customer", None, END) in [(e["field"], e["old"], e["new"])
                                           for e in ticket["events"]]
    # the acknowledgement goes to the partner; the end customer hears nothing
    assert ("acknowledgement", number, (PARTNER,)) in outbox(desk)
    assert all(END not in to for _, _, to in outbox(desk))
    # the end customer is a customer now (external), not a participant
    assert json.loads(desk.cli("customers", "show", END, "--json").stdout)["kind"] == "external"
    assert ticket["participants"] == []

    before = outbox(desk)
    result = desk.cli("tickets", "set", str(number), "--level", "2", "--agent",
                      "agent@example.com")
    assert result.exit_code == 0, result.output
    ticket = desk.show(number)
    assert ticket["support_level"] == 2 and ticket["group"] == "zentrale"
    changes = [(e["field"], e["old"], e["new"], e["actor"]) for e in ticket["events"]]
    assert ("support_level", "1", "2", "agent@example.com") in changes
    assert ("group", None, "zentrale", "agent@example.com") in changes
    added = sorted(set(outbox(desk)) - set(before))
    assert added == [("agent_notice_second_level", number, ("z1@example.com",)),
                     ("agent_notice_second_level", number, ("z2@example.com",))]
    notice = mail_text(desk, "agent_notice_second_level", "z2@example.com")
    # who the partner serves (addresses without a display name shown plain)
    assert re.search(rf"Endkunde:\s+{re.escape(END)}\n", notice), notice
    assert re.search(rf"Partner:\s+Autohaus Nord <{re.escape(PARTNER)}>\n", notice), notice
    assert [t["number"] for t in desk.list("--level", "2")] == [number]
    assert number not in [t["number"] for t in desk.list("--level", "1")]
    assert [t["number"] for t in desk.list("--kind", "internal")] == [number, number - 1]
    assert desk.list("--kind", "external") == []

    # the central support solves it: the partner is told, the end customer is not
    before = outbox(desk)
    result = desk.cli("tickets", "reply", str(number), "--agent", "z1@example.com", "--solve",
                      "--text", "Bitte Kartenupdate 2026.4 einspielen.")
    assert result.exit_code == 0, result.output
    added = sorted(set(outbox(desk)) - set(before))
    assert added == [("second_level_solved", number, (PARTNER,))]
    text = mail_text(desk, "second_level_solved")
    assert "Kartenupdate 2026.4" in text and "Endkunden" in text and "schließen" in text

    # the partner closes it towards the end customer: now the end customer hears
    before = outbox(desk)
    result = desk.cli("tickets", "set", str(number), "--status", "closed")
    assert result.exit_code == 0, result.output
    added = sorted(set(outbox(desk)) - set(before))
    assert added == [("closed", number, (PARTNER,)), ("end_customer_closed", number, (END,))]
    text = mail_text(desk, "end_customer_closed")
    assert "abgeschlossen" in text and "Autohaus Nord" in text
    assert "Kartenupdate" not in text  # the central support's solution stays with the partner


def test_a_status_set_to_solved_tells_the_partner_by_the_level(central: Desk) -> None:
    """`tickets set --status solved` (as the API and a `#status solved`
    line): on level 2 the partner's notice, on level 1 the usual solution."""
    desk = central
    first = partner_ticket(desk)
    second = partner_ticket(desk)
    assert desk.cli("tickets", "set", str(second), "--level", "2").exit_code == 0
    before = outbox(desk)
    for number in (first, second):
        result = desk.cli("tickets", "set", str(number), "--status", "solved")
        assert result.exit_code == 0, result.output
    added = sorted(set(outbox(desk)) - set(before))
    assert added == [("second_level_solved", second, (PARTNER,)),
                     ("solution", first, (PARTNER,))]
    text = mail_text(desk, "second_level_solved")
    assert "Einen eigenen Lösungstext hat der zentrale Support dazu nicht geschrieben" in text
    assert "Navi startet nicht" in text and "Beim Kunden Eva" not in text


def test_refused_for_an_external_requester_and_nothing_changes(central: Desk) -> None:
    desk = central
    desk.ingest(make_mail(subject="Frage", sender="hans@kunde.de"))
    (ticket,) = desk.list()
    number = ticket["number"]
    before, history = outbox(desk), desk.show(number)["events"]

    result = desk.cli("tickets", "set", str(number), "--level", "2", "--priority", "high")
    assert result.exit_code == 1
    assert "--level: " in result.stderr and "hans@kunde.de is external" in result.stderr
    result = desk.cli("tickets", "set", str(number), "--end-customer", END)
    assert result.exit_code == 1 and "--end-customer: " in result.stderr

    shown = desk.show(number)
    assert (shown["support_level"], shown["end_customer"], shown["priority"],
            shown["group"]) == (1, None, "low", None)
    assert shown["events"] == history and outbox(desk) == before
    assert desk.cli("customers", "show", END).exit_code == 1  # no end customer created

    # a new ticket with an end customer for an external requester: nothing at all
    result = desk.cli("tickets", "create", "--requester", "neu@kunde.de", "--end-customer",
                      END, "--subject", "x", "--text", "y")
    assert result.exit_code == 2 and "end_customer: " in result.stderr
    assert [t["number"] for t in desk.list()] == [number] and outbox(desk) == before
    assert desk.cli("customers", "show", "neu@kunde.de").exit_code == 1


def test_more_refusals_name_the_field(central: Desk) -> None:
    desk = central
    number = partner_ticket(desk)
    result = desk.cli("tickets", "set", str(number), "--end-customer", PARTNER)
    assert result.exit_code == 1 and "the requester (the partner) itself" in result.stderr
    result = desk.cli("tickets", "set", str(number), "--end-customer", "kein-address")
    assert result.exit_code == 1 and "not an e-mail address" in result.stderr
    assert desk.cli("tickets", "set", str(number), "--level", "3").exit_code == 2
    # clearing works, and is in the history
    assert desk.cli("tickets", "set", str(number), "--end-customer", "none").exit_code == 0
    shown = desk.show(number)
    assert shown["end_customer"] is None
    assert ("end_customer", END, "none") in [(e["field"], e["old"], e["new"])
                                             for e in shown["events"]]
    # closed is final for the level too
    assert desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    result = desk.cli("tickets", "set", str(number), "--level", "2")
    assert result.exit_code == 1 and "is closed" in result.stderr


# -- the same through the HTTP API ---------------------------------------------------------------


async def test_the_api_sets_kind_end_customer_and_level_and_strangers_change_nothing(
        api: Api) -> None:
    desk = api.desk
    desk.ingest(make_mail(subject="Erste Frage", sender=PARTNER))
    desk.ingest(make_mail(subject="Frage", sender="hans@kunde.de",
                          message_id="<hans-1@kunde.de>"))
    secret = token(desk)
    _, _, found = await api.get(f"/customers?q={PARTNER}", secret)
    (partner,) = found["items"]
    assert partner["kind"] == "external"

    # no token, or a made-up one: nothing changes
    for stranger in (None, "md_forged-token"):
        status, headers, problem = await api.patch(f"/customers/{partner['id']}", stranger,
                                                   {"kind": "internal"})
        assert_problem(status, headers, problem, 401)
    status, headers, problem = await api.patch(f"/customers/{partner['id']}", secret,
                                               {"kind": "partner"})
    assert_problem(status, headers, problem, 422)
    assert (await api.get(f"/customers/{partner['id']}", secret))[2]["kind"] == "external"

    # an external requester: no end customer, no level 2 (422 naming the field)
    status, headers, problem = await api.post("/tickets", secret, {
        "requester": {"email": PARTNER}, "subject": "Navi", "text": "Navi kaputt",
        "end_customer": END})
    assert_problem(status, headers, problem, 422)
    assert problem["field"] == "end_customer"
    (hans,) = [t for t in desk.list() if t["requester"]["email"] == "hans@kunde.de"]
    status, headers, problem = await api.patch(f"/tickets/{hans['number']}", secret,
                                               {"support_level": 2})
    assert_problem(status, headers, problem, 422)
    assert problem["field"] == "support_level"
    assert desk.show(hans["number"])["support_level"] == 1

    # an agent token marks the partner internal (not an admin field)
    status, _, changed = await api.patch(f"/customers/{partner['id']}", secret,
                                         {"kind": "internal"})
    assert status == 200 and changed["changes"] == ["kind: external -> internal"]
    status, _, created = await api.post("/tickets", secret, {
        "requester": {"email": PARTNER}, "subject": "Navi", "text": "Navi kaputt",
        "end_customer": END, "acknowledge": False})
    assert status == 201, created
    number = created["number"]
    assert created["end_customer"]["email"] == END and created["support_level"] == 1
    for stranger in (None, "md_forged-token"):
        status, headers, problem = await api.patch(f"/tickets/{number}", stranger,
                                                   {"support_level": 2, "end_customer": None})
        assert_problem(status, headers, problem, 401)
    shown = desk.show(number)
    assert (shown["support_level"], shown["end_customer"]["email"]) == (1, END)

    status, _, changed = await api.patch(f"/tickets/{number}", secret, {"support_level": 2})
    assert status == 200 and changed["changes"] == ["support_level: 1 -> 2"]
    status, _, page = await api.get("/tickets?support_level=2&requester_kind=internal", secret)
    assert status == 200 and [t["number"] for t in page["items"]] == [number]
    status, _, page = await api.get("/tickets?requester_kind=external", secret)
    assert [t["number"] for t in page["items"]] == [hans["number"]]
    status, _, changed = await api.patch(f"/tickets/{number}", secret, {"end_customer": None})
    assert status == 200 and changed["changes"] == [f"end_customer: {END} -> none"]
    assert changed["ticket"]["end_customer"] is None
