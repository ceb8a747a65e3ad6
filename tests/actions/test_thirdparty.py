"""Asking a third person for a statement and forwarding a ticket for
information (seed 003), through `maildesk tickets ask|forward`, the mail the
worker would send, and the answer coming back through the pipeline: an
internal note, never public, never reopening, the agent told."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from maildesk.deliver.sender import Sender
from maildesk.models import Event, Outbox
from tests.conftest import Desk
from tests.deliver.test_notice_snapshot import outbox_rows
from tests.mailfactory import make_mail
from tests.web.test_pages import new_ticket

DORA = "dora@partner.example"


def ask(desk: Desk, number: int, *args: str, kind: str = "ask") -> str:
    """The reply address the CLI printed."""
    result = desk.cli("tickets", kind, str(number), *args)
    assert result.exit_code == 0, result.output
    return re.search(r"answers to (\S+) become internal notes", result.stdout).group(1)


def built(desk: Desk, kind: str) -> tuple[object, str]:
    (row,) = outbox_rows(desk, kind)
    message, _, _ = Sender(desk.settings, desk.engine()).build(row)
    return message, message.get_body(("plain",)).get_content()


def answer(desk: Desk, to: str, *, sender: str = f"Dora <{DORA}>",
           in_reply_to: str | None = None, body: str = "Bei uns ist alles in Ordnung.\n",
           subject: str = "Re: Ihre Anfrage") -> dict:
    code, outcome = desk.ingest(make_mail(sender=sender, to=to, body=body, subject=subject,
                                          in_reply_to=in_reply_to))
    assert code == 0, outcome
    return outcome


def kinds_to(desk: Desk) -> list[tuple[str, str]]:
    with desk.engine().connect() as conn:
        return [(r.kind, r.to_addrs) for r in conn.execute(
            select(Outbox.__table__.c.kind, Outbox.__table__.c.to_addrs)
            .order_by(Outbox.__table__.c.id))]


def test_the_mail_asked_carries_the_question_the_customers_words_and_its_own_reply_address(
        desk: Desk) -> None:
    number = new_ticket(desk)
    desk.cli("tickets", "note", str(number), "--text", "Interner Verdacht: Treiber")
    reply_to = ask(desk, number, "--to", DORA, "--text", "Können Sie das Protokoll prüfen?")
    message, text = built(desk, "third_party_ask")
    assert message["To"] == DORA and message["Reply-To"] == reply_to
    assert f"[#{number}]" in message["Subject"]
    assert "Können Sie das Protokoll prüfen?" in text
    assert "bitte um Rückruf" in text  # the customer's message
    assert "Treiber" not in text  # internal notes stay inside
    shown = desk.show(number)
    assert [(r["kind"], r["to"], r["answered_at"]) for r in shown["third_party"]] == [
        ("ask", DORA, None)]
    assert shown["events"][-1]["field"] == "third_party_ask"


def test_the_answer_is_an_internal_note_that_reopens_nothing_and_tells_the_agent(
        desk: Desk) -> None:
    number = new_ticket(desk)
    reply_to = ask(desk, number, "--to", DORA, "--text", "Stimmt die Rechnung?")
    assert desk.cli("tickets", "set", str(number), "--status", "solved").exit_code == 0
    before = kinds_to(desk)
    outcome = answer(desk, reply_to)
    assert (outcome["action"], outcome["ticket"]) == ("appended", number)
    shown = desk.show(number)
    assert shown["status"] == "solved"
    last = shown["messages"][-1]
    assert (last["direction"], last["from"]) == ("internal", DORA)
    assert shown["third_party"][0]["answered_at"] is not None
    new = kinds_to(desk)[len(before):]
    assert new == [("agent_notice_statement", "agent@example.com")]  # nobody else: no ack
    _, text = built(desk, "agent_notice_statement")
    assert "Bei uns ist alles in Ordnung." in text and DORA in text
    assert "Hallo Demo Agent," in text  # greets its recipient


def test_an_answer_by_message_id_alone_threads_as_a_statement(desk: Desk) -> None:
    number = new_ticket(desk)
    ask(desk, number, "--to", DORA, kind="forward")
    message, text = built(desk, "third_party_forward")
    assert "bitte um Rückruf" in text
    # Dora's client drops Reply-To and writes to the support address
    outcome = answer(desk, "support@example.com", in_reply_to=message["Message-ID"],
                     subject="Danke für die Info")
    assert (outcome["action"], outcome["ticket"]) == ("appended", number)
    assert desk.show(number)["messages"][-1]["direction"] == "internal"


def test_someone_else_on_the_request_address_is_noted_as_unverified(desk: Desk) -> None:
    number = new_ticket(desk)
    reply_to = ask(desk, number, "--to", DORA, "--text", "Bitte prüfen")
    answer(desk, reply_to, sender="Mallory <mallory@evil.example>",
           body="Bitte überweisen Sie an IBAN XY.\n")
    shown = desk.show(number)
    last = shown["messages"][-1]
    assert (last["direction"], last["from"]) == ("internal", "mallory@evil.example")
    assert last["authenticity"] and last["authenticity"].startswith("unverified")
    assert shown["third_party"][0]["answered_at"] is None  # Dora has not answered
    assert shown["status"] == "new"  # a statement changes no status
    _, text = built(desk, "agent_notice_statement")
    assert "mallory@evil.example" in text and ("nicht bestätigt" in text.lower()
                                               or "not verified" in text.lower())


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "support@example.com", "--text", "x"], "own addresses"),
    (["--to", "support+whatever@example.com", "--text", "x"], "own addresses"),
    (["--to", "noreply@partner.example", "--text", "x"], "noreply"),
    (["--to", "not an address", "--text", "x"], "not an e-mail address"),
    (["--to", DORA, "--text", "   "], "question is empty"),
])
def test_a_request_nobody_could_answer_is_refused_and_writes_nothing(
        desk: Desk, args: list[str], message: str) -> None:
    number = new_ticket(desk)
    before = kinds_to(desk)
    result = desk.cli("tickets", "ask", str(number), *args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert kinds_to(desk) == before
    assert desk.show(number)["third_party"] == []


def test_an_unknown_ticket_is_refused(desk: Desk) -> None:
    result = desk.cli("tickets", "forward", "99999", "--to", DORA)
    assert result.exit_code != 0 and "99999" in result.output
    with desk.engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outbox.__table__)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(Event.__table__)
                            .where(Event.__table__.c.field.like("third_party%"))).scalar() == 0


def test_the_requests_are_in_the_detail_json_and_text(desk: Desk) -> None:
    number = new_ticket(desk)
    ask(desk, number, "--to", DORA, "--text", "Frage 1")
    ask(desk, number, "--to", "eva@lob.example", "--text", "Lob", kind="forward")
    listed = json.loads(desk.cli("tickets", "show", str(number), "--json").stdout)
    assert [(r["kind"], r["to"]) for r in listed["third_party"]] == [
        ("ask", DORA), ("forward", "eva@lob.example")]
    text = desk.cli("tickets", "show", str(number)).stdout
    assert f"asked {DORA} by cli:" in text and "forwarded to eva@lob.example" in text
    assert text.count("no answer yet") == 2
