"""Agents working tickets from the CLI: reply, note, set."""

from __future__ import annotations

import json

from maildesk.mail import tokens
from maildesk.secret import load_secret
from tests.conftest import Desk
from tests.mailfactory import make_mail


def opened(desk: Desk) -> int:
    out = desk.ingest(make_mail(subject="Heizung kalt", cc="kollege@kunde.de",
                                message_id="<start@kunde.de>"))[1]
    return out["ticket"]


def test_reply_is_stored_with_signed_ids_and_opens_the_ticket(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                      "--text", "Wir schicken einen Techniker.")
    assert result.exit_code == 0, result.output
    ticket = desk.show(number)
    assert ticket["status"] == "open"
    assert ticket["assignee"] == "agent@example.com"
    out = ticket["messages"][-1]
    secret = load_secret(desk.settings)
    assert out["direction"] == "out" and out["author"] == "agent@example.com"
    assert out["to"] == ["erika@kunde.de"] and out["cc"] == ["kollege@kunde.de"]
    assert out["subject"] == f"[#{number}] Heizung kalt"
    assert tokens.ticket_of_message_id(secret, out["message_id"]) == number
    assert tokens.ticket_of_address(secret, out["reply_to"]) == number
    assert tokens.tickets_of_body(secret, out["text"]) == [number]
    assert out["in_reply_to"] == "start@kunde.de"
    assert out["message_id"] in result.stdout
    fields = [e["field"] for e in ticket["events"]]
    assert "reply" in fields and "status" in fields


def test_reply_text_from_stdin(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                      "--text-file", "-", input="Zeile 1\nZeile 2\n")
    assert result.exit_code == 0, result.output
    assert "Zeile 2" in desk.show(number)["messages"][-1]["text"]


def test_note_is_internal(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "note", str(number), "--agent", "agent@example.com",
                      "--text", "Kunde ist VIP")
    assert result.exit_code == 0
    ticket = desk.show(number)
    assert ticket["messages"][-1]["direction"] == "internal"
    assert ticket["status"] == "new"  # a note changes no status


def test_unknown_agent_and_ticket_are_clear_errors(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "reply", str(number), "--agent", "boss@example.com",
                      "--text", "x")
    assert result.exit_code == 1 and "not an agent" in result.stderr
    result = desk.cli("tickets", "note", "99999", "--agent", "agent@example.com", "--text", "x")
    assert result.exit_code == 1 and "no ticket #99999" in result.stderr
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com")
    assert result.exit_code == 2 and "--text" in result.stderr


def test_set_status_type_priority_and_history(desk: Desk) -> None:
    number = opened(desk)
    result = desk.cli("tickets", "set", str(number), "--status", "pending", "--type", "incident",
                      "--agent", "agent@example.com")
    assert result.exit_code == 0, result.output
    ticket = desk.show(number)
    assert (ticket["status"], ticket["request_type"], ticket["priority"]) == (
        "pending", "incident", "normal")  # the priority follows the type
    desk.cli("tickets", "set", str(number), "--priority", "high")
    desk.cli("tickets", "set", str(number), "--type", "user_help")
    ticket = desk.show(number)
    assert ticket["priority"] == "high"  # set explicitly: no longer follows the type
    changes = [(e["field"], e["old"], e["new"]) for e in ticket["events"]]
    assert ("status", "new", "pending") in changes
    assert ("priority", "low", "normal") in changes
    assert ("request_type", "incident", "user_help") in changes
    assert all(e["actor"] for e in ticket["events"])


def test_closed_is_final_for_agents(desk: Desk) -> None:
    number = opened(desk)
    assert desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    result = desk.cli("tickets", "set", str(number), "--status", "open")
    assert result.exit_code == 1 and "closed" in result.stderr
    result = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                      "--text", "noch was")
    assert result.exit_code == 1 and "follow-up" in result.stderr


def test_followup_from_the_cli_path(desk: Desk) -> None:
    """The issue's 'done when': a reply to a closed ticket piped into ingest
    prints followup, and the new ticket names the old one."""
    number = opened(desk)
    reply = desk.cli("tickets", "reply", str(number), "--agent", "agent@example.com",
                     "--text", "Erledigt.")
    assert reply.exit_code == 0
    message_id = desk.show(number)["messages"][-1]["message_id"]
    desk.cli("tickets", "set", str(number), "--status", "closed")
    code, out = desk.ingest(make_mail(subject=f"AW: [#{number}] Heizung kalt",
                                      in_reply_to=f"<{message_id}>", body="Wieder kalt.\n"))
    assert code == 0
    assert out == {"action": "followup", "ticket": number + 1, "reason": None,
                   "followup_of": number}
    shown = json.loads(desk.cli("tickets", "show", str(number + 1), "--json").stdout)
    assert shown["follow_up_of"] == number
    assert shown["subject"] == "Heizung kalt"
    assert desk.show(number)["status"] == "closed"
