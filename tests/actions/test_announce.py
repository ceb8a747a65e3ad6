"""Announcements to information recipients (issue #15): who gets one, the
signed unsubscribe token, the mail the worker makes of a ticket-less row,
and an unsubscribed address never mailed again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from maildesk.actions import announce
from maildesk.actions.agent import ActionError
from maildesk.config import load_settings
from maildesk.db import session_scope
from maildesk.deliver import announcement as announcement_mail
from maildesk.deliver.render import Renderer
from maildesk.deliver.sender import Sender
from maildesk.models import Announcement, Customer, Event, Outbox, Unsubscribe
from maildesk.secret import load_secret
from maildesk.tickets import address_links
from maildesk.tickets.links import BadLink
from tests.conftest import REPO, Desk
from tests.mailsink import Sink

SECRET = b"test-secret"


# -- pure ----------------------------------------------------------------------------------------


def test_recipients_skip_unsubscribed_bouncing_noreply_and_our_own() -> None:
    candidates = [announce.Candidate("A@kunde.de", "de", False),
                  announce.Candidate("b@kunde.de", "en", False),
                  announce.Candidate("c@kunde.de", "de", True),
                  announce.Candidate("noreply@kunde.de", "de", False),
                  announce.Candidate("support+x@example.com", "de", False),
                  announce.Candidate("a@kunde.de", "de", False)]
    chosen = announce.recipients(candidates, ["B@kunde.de"], ["support@example.com"])
    assert [c.email for c in chosen.recipients] == ["a@kunde.de"]
    assert chosen.unsubscribed == ("b@kunde.de",)
    assert chosen.bouncing == ("c@kunde.de",)
    assert set(chosen.undeliverable) == {"noreply@kunde.de", "support+x@example.com"}
    english = announce.recipients(candidates, [], [], language="en")
    assert [c.email for c in english.recipients] == ["b@kunde.de"]


@pytest.mark.parametrize(("subject", "text", "language", "field"), [
    ("", "Text", None, "subject"), ("x" * 201, "Text", None, "subject"),
    ("Neu", "  \n", None, "text"), ("Neu", "Text", "fr", "language")])
def test_bad_input_names_the_option(subject: str, text: str, language: str | None,
                                    field: str) -> None:
    with pytest.raises(ActionError) as refused:
        announce.check_input(subject, text, language)
    assert refused.value.field == field


def test_unsubscribe_token_names_the_address_and_cannot_be_forged() -> None:
    token = address_links.unsubscribe_token(SECRET, "Erika@Kunde.de")
    assert token == token.lower()
    assert address_links.verify_unsubscribe(SECRET, token) == "erika@kunde.de"
    assert address_links.verify_unsubscribe(SECRET, token.upper()) == "erika@kunde.de"
    other = address_links.unsubscribe_token(SECRET, "mallory@kunde.de")
    forged = other.split(".")[0] + "." + token.split(".")[1]
    for bad in (forged, address_links.unsubscribe_token(b"other", "erika@kunde.de"), "x.y", ""):
        with pytest.raises(BadLink):
            address_links.verify_unsubscribe(SECRET, bad)


def test_removal_token_is_bound_to_row_ticket_and_address_and_expires() -> None:
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    token = address_links.removal_token(SECRET, 7, 10001, "cc@kunde.de", issued)
    claim = address_links.parse_removal(token)
    address_links.check_removal(SECRET, claim, 10001, "cc@kunde.de", issued)
    for number, email in ((10002, "cc@kunde.de"), (10001, "other@kunde.de")):
        with pytest.raises(BadLink) as bad:
            address_links.check_removal(SECRET, claim, number, email, issued)
        assert bad.value.reason == "tampered"
    with pytest.raises(BadLink) as late:
        address_links.check_removal(SECRET, claim, 10001, "cc@kunde.de",
                                    issued + timedelta(days=12), days=10)
    assert late.value.reason == "expired"
    with pytest.raises(BadLink):  # added again after the link was made: a replay
        address_links.check_removal(SECRET, claim, 10001, "cc@kunde.de", issued,
                                    added_at=issued + timedelta(minutes=5))
    with pytest.raises(BadLink):
        address_links.parse_removal("7.abc.short")


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_announcement_says_why_and_how_to_unsubscribe(language: str) -> None:
    out = Renderer().render("announcement", language, {
        "announcement": {"subject": "Version 5 <b>", "text": "Neu: <b>alles</b>\nZeile 2",
                         "created_at": datetime.now(UTC)},
        "customer": {"name": "Erika", "email": "erika@kunde.de"},
        "unsubscribe_url": "https://desk.example/unsubscribe/abc.def", "brand": "Beispiel",
        "signature_name": "Team", "reference_line": ""})
    assert out.subject == "Version 5 <b>"
    for part in (out.text, out.html):
        assert "https://desk.example/unsubscribe/abc.def" in part
        assert "erika@kunde.de" in part
    assert "Neu: <b>alles</b>" in out.text and "&lt;b&gt;alles" in out.html
    assert f'<html lang="{language}">' in out.html
    assert "[ref:" not in out.text and "[#" not in out.subject
    assert all(len(line) <= 78 for line in out.text.splitlines() if "unsubscribe/" not in line)


def test_list_headers_follow_rfc_8058() -> None:
    assert announcement_mail.headers("https://x/unsubscribe/t") == {
        "List-Unsubscribe": "<https://x/unsubscribe/t>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "Precedence": "bulk"}


# -- in process ----------------------------------------------------------------------------------


def add_customers(desk: Desk, *rows: dict) -> None:
    with session_scope(desk.engine()) as session:
        for row in rows:
            session.add(Customer(**row))


def outbox(desk: Desk) -> list[dict]:
    with desk.engine().connect() as connection:
        return [dict(r._mapping) for r in connection.execute(
            select(Outbox.__table__).order_by(Outbox.__table__.c.id))]


def test_announce_send_unsubscribe_and_never_again(desk: Desk, sink: Sink, tmp_path) -> None:
    add_customers(desk,
                  {"email": "info@kunde.de", "name": "Info", "info_recipient": True,
                   "language": "en"},
                  {"email": "weg@kunde.de", "info_recipient": True},
                  {"email": "kaputt@kunde.de", "info_recipient": True, "bouncing": True},
                  {"email": "nicht@kunde.de", "info_recipient": False})
    engine = desk.engine()
    assert announce.unsubscribe(engine, "WEG@kunde.de") is True
    assert announce.unsubscribe(engine, "weg@kunde.de") is False  # idempotent
    # unsubscribing clears the mark; set again, the unsubscribe still holds
    assert desk.cli("customers", "set", "weg@kunde.de", "--info-recipient").exit_code == 0
    text = tmp_path / "news.txt"
    text.write_text("Version 5 ist da.\n", encoding="utf-8")

    dry = desk.cli("announce", "--subject", "Version 5", "--text-file", str(text), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would go to 1 recipient" in dry.stdout and "info@kunde.de" in dry.stdout
    assert outbox(desk) == []

    result = desk.cli("announce", "--subject", "Version 5", "--text-file", str(text), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["recipients"] == ["info@kunde.de"]
    assert answer["skipped"]["unsubscribed"] == ["weg@kunde.de"]
    assert answer["skipped"]["bouncing"] == ["kaputt@kunde.de"]
    rows = outbox(desk)
    assert len(rows) == 1 and rows[0]["ticket_id"] is None
    assert rows[0]["announcement_id"] == answer["announcement"]
    assert rows[0]["auto_submitted"] is None  # the automatic-mail limit does not count it
    with engine.connect() as connection:
        assert connection.execute(select(Announcement.__table__.c.recipients)).scalar() == 1

    listed = json.loads(desk.cli("outbox", "list", "--json").stdout)
    assert listed[0]["ticket"] is None and listed[0]["announcement"] == answer["announcement"]
    assert "announcement" in desk.cli("outbox", "list").stdout

    env = {**desk.env, "MAILDESK_RELAY__HOST": "127.0.0.1", "MAILDESK_RELAY__PORT": str(sink.port)}
    settings = load_settings(REPO / "maildesk.toml", env)
    assert Sender(settings, engine).send(rows[0]["id"]) == "sent"
    mail = sink.wait(1, "info@kunde.de")[0]
    token = address_links.unsubscribe_token(load_secret(settings), "info@kunde.de")
    assert mail["List-Unsubscribe"] == f"<{settings.web.base_url}/unsubscribe/{token}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Auto-Submitted"] == "auto-generated" and mail["Precedence"] == "bulk"
    assert mail["Subject"] == "Version 5" and mail["In-Reply-To"] is None
    assert "Hello Info" in mail.get_body(("plain",)).get_content()
    with engine.connect() as connection:
        assert connection.execute(select(Event.__table__)).all() == []  # no ticket history

    assert announce.unsubscribe(engine, "info@kunde.de") is True
    desk.cli("customers", "set", "info@kunde.de", "--info-recipient")
    with engine.connect() as connection:
        assert connection.execute(select(Customer.__table__.c.info_recipient).where(
            Customer.__table__.c.email == "info@kunde.de")).scalar() is True
        assert len(connection.execute(select(Unsubscribe.__table__)).all()) == 2
    again = desk.cli("announce", "--subject", "Version 6", "--text-file", str(text))
    assert again.exit_code == 0 and "queued for 0 recipient" in again.stdout
    assert len(outbox(desk)) == 1


def test_announce_refuses_an_unknown_agent_and_an_unreadable_file(desk: Desk, tmp_path) -> None:
    text = tmp_path / "news.txt"
    text.write_text("Neu.", encoding="utf-8")
    result = desk.cli("announce", "--subject", "S", "--text-file", str(text),
                      "--agent", "nobody@example.com")
    assert result.exit_code == 2 and "--agent: nobody@example.com is not an agent" in result.output
    missing = desk.cli("announce", "--subject", "S", "--text-file", str(tmp_path / "no.txt"))
    assert missing.exit_code == 2 and "--text-file" in missing.output
    with desk.engine().connect() as connection:
        assert connection.execute(select(Announcement.__table__)).all() == []
