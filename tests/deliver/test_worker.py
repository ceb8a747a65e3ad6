"""The worker, with a real Redis and a real SMTP sink as relay: the whole
story of a ticket in mails, relay outages, and exactly-once sending."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from maildesk.actions import agent as agent_actions
from maildesk.config import load_settings
from maildesk.deliver.broker import make_broker
from maildesk.deliver.runner import WorkerRunner, requeue_due
from maildesk.deliver.sender import Sender
from maildesk.mail import tokens
from maildesk.models import Outbox
from maildesk.secret import load_secret
from tests.conftest import REPO, Desk, hand_over
from tests.daemon_helpers import wait_until
from tests.mailfactory import make_mail
from tests.mailsink import Sink

FAST = {"MAILDESK_WORKER__SWEEP_SECONDS": "0.2", "MAILDESK_WORKER__BACKOFF_SECONDS": "0.2",
        "MAILDESK_WORKER__MAX_ATTEMPTS": "30", "MAILDESK_WORKER__THREADS": "2"}


@pytest.fixture
def mailing(desk: Desk, sink: Sink, redis_url: str) -> Iterator[tuple[Desk, Sink]]:
    """The desk configured for Redis and the sink as relay, and a worker."""
    # Without the registration mail to new customers: these tests count the
    # mails of one story; registration goes through this same worker in
    # tests/web/test_browser.py and is checked in tests/web/test_pages.py.
    desk.env.update({"MAILDESK_BROKER__URL": redis_url, "MAILDESK_RELAY__HOST": "127.0.0.1",
                     "MAILDESK_RELAY__PORT": str(sink.port),
                     "MAILDESK_REGISTRATION__CONFIRM": "false", **FAST})
    desk.settings = load_settings(REPO / "maildesk.toml", desk.env)
    broker = make_broker(desk.settings)
    runner = WorkerRunner(desk.settings, desk.engine(), broker)
    runner.start()
    yield desk, sink
    runner.stop(timeout=5)
    broker.close()


def outbox_rows(desk: Desk) -> list[dict]:
    return json.loads(desk.cli("outbox", "list", "--json").stdout)


def reply_to(original: EmailMessage, body: str, sender: str = "erika@kunde.de",
             extra: dict[str, str] | None = None) -> bytes:
    """A customer's reply the way a mail client makes it: To the Reply-To,
    In-Reply-To/References from the original, the subject with AW:."""
    return make_mail(
        subject=f"AW: {original['Subject']}", sender=sender, to=str(original["Reply-To"]),
        in_reply_to=str(original["Message-ID"]), body=body, extra_headers=extra,
    )


def test_the_whole_story_in_mails(mailing: tuple[Desk, Sink]) -> None:
    desk, sink = mailing
    secret = load_secret(desk.settings)
    code, out = desk.ingest(make_mail(subject="Heizung kalt", sender="Erika <erika@kunde.de>"))
    assert (code, out["action"]) == (0, "created")
    number = out["ticket"]

    (ack,) = sink.wait(1, "erika@kunde.de")
    assert f"[#{number}]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert tokens.ticket_of_address(secret, str(ack["Reply-To"])) == number
    assert tokens.ticket_of_message_id(secret, str(ack["Message-ID"]).strip("<>")) == number
    assert tokens.tickets_of_body(secret, ack.get_body(("plain",)).get_content()) == [number]
    (notice,) = sink.wait(1, "agent@example.com")
    assert "Heizung kalt" in notice.get_body(("plain",)).get_content()

    # the customer answers the acknowledgement: it threads, the agent hears of it
    code, out = desk.ingest(reply_to(ack, "Es ist immer noch kalt.\n"))
    assert (out["action"], out["ticket"]) == ("appended", number)
    sink.wait(2, "agent@example.com")

    # the agent answers and waits for the customer
    engine = desk.engine()
    agent_actions.reply(engine, desk.settings, number, "agent@example.com",
                        "Bitte lesen Sie den Zähler ab.", dispatch=hand_over(desk.settings))
    agent_actions.set_fields(engine, desk.settings, number, "agent@example.com",
                             status="pending", dispatch=hand_over(desk.settings))
    answers = sink.wait(2, "erika@kunde.de")
    answer = answers[-1]
    body = answer.get_body(("plain",)).get_content()
    assert "Bitte lesen Sie den Zähler ab." in body
    assert answer["Auto-Submitted"] is None  # a human reply
    assert f"ticket-{number}@" in str(answer["References"])  # the stable reference

    # the customer answers the agent: pending -> open, the agent is told
    code, out = desk.ingest(reply_to(answer, "Zählerstand 4711.\n"))
    assert (out["action"], out["ticket"]) == ("appended", number)
    assert desk.show(number)["status"] == "open"
    sink.wait(3, "agent@example.com")
    wait_until(lambda: all(r["state"] == "sent" for r in outbox_rows(desk)))
    kinds = sorted(r["kind"] for r in outbox_rows(desk))
    assert kinds == ["acknowledgement", "agent_notice_new", "agent_notice_reply",
                     "agent_notice_reply", "agent_reply"]


def test_out_of_office_answer_to_the_acknowledgement_causes_no_mail(
        mailing: tuple[Desk, Sink]) -> None:
    desk, sink = mailing
    number = desk.ingest(make_mail(subject="Frage"))[1]["ticket"]
    (ack,) = sink.wait(1, "erika@kunde.de")
    sink.wait(1, "agent@example.com")
    out = desk.ingest(reply_to(ack, "Ich bin im Urlaub.\n",
                               extra={"Auto-Submitted": "auto-replied"}))[1]
    assert (out["action"], out["reason"], out["ticket"]) == ("ignored", "auto_reply", number)
    time.sleep(1)
    assert len(sink.received) == 2
    assert len(outbox_rows(desk)) == 2


def test_relay_down_then_up_every_mail_arrives_exactly_once(mailing: tuple[Desk, Sink]) -> None:
    desk, sink = mailing
    sink.stop()
    for i in range(3):
        desk.ingest(make_mail(subject=f"Ausfall {i}", sender=f"k{i}@kunde.de"))
    wait_until(lambda: any(r["attempts"] >= 2 for r in outbox_rows(desk)))
    assert all(r["state"] in ("queued", "sending") for r in outbox_rows(desk))
    assert any("relay" in (r["last_error"] or "") for r in outbox_rows(desk))
    sink.start()
    wait_until(lambda: all(r["state"] == "sent" for r in outbox_rows(desk)), timeout=30)
    time.sleep(0.5)
    ids = [str(r.message["Message-ID"]) for r in sink.received]
    assert len(ids) == 6  # 3 acknowledgements + 3 agent notices
    assert len(set(ids)) == len(ids), "a notification arrived twice"


def test_a_row_already_sent_is_never_sent_again(mailing: tuple[Desk, Sink]) -> None:
    """The at-least-once window: a worker killed after the relay took the
    mail but before marking it sent leaves the row 'sending'; requeue_due
    sends it again after worker.stale_sending_seconds. A row marked sent,
    though, is never sent again, however often its id is delivered."""
    desk, sink = mailing
    desk.ingest(make_mail(subject="einmal"))
    sink.wait(2)
    wait_until(lambda: all(r["state"] == "sent" for r in outbox_rows(desk)))
    sender = Sender(desk.settings, desk.engine())
    for row in outbox_rows(desk):
        assert sender.send(row["id"]) == "skipped"
    assert desk.cli("outbox", "retry", str(outbox_rows(desk)[0]["id"])).exit_code == 1
    time.sleep(0.5)
    assert len(sink.received) == 2

    # simulate the killed worker: a row stuck in "sending" long ago is sent again
    engine = desk.engine()
    table = Outbox.__table__
    with engine.begin() as conn:
        stuck = conn.execute(select(table.c.id).order_by(table.c.id)).scalars().first()
        conn.execute(update(table).where(table.c.id == stuck).values(
            state="sending", next_attempt_at=table.c.created_at))
    quick = desk.settings.model_copy(update={
        "worker": desk.settings.worker.model_copy(update={"stale_sending_seconds": 0.01})})
    requeue_due(engine, quick, make_broker(quick))
    wait_until(lambda: len(sink.received) == 3)


def test_permanent_refusal_marks_bouncing_and_fails_visibly(mailing: tuple[Desk, Sink]) -> None:
    desk, sink = mailing
    sink.refuse["weg@kunde.de"] = "550 5.1.1 no such user"
    desk.ingest(make_mail(subject="Adresse falsch", sender="weg@kunde.de"))
    wait_until(lambda: any(r["state"] == "failed" for r in outbox_rows(desk)))
    failed = json.loads(desk.cli("outbox", "list", "--state", "failed", "--json").stdout)
    assert failed[0]["kind"] == "acknowledgement" and "550" in failed[0]["last_error"]
    # the address is bouncing now, since when and why: nothing automatic goes
    # there any more (until the customer writes again: tests/process/test_bounce_marking.py)
    profile = json.loads(desk.cli("customers", "show", "weg@kunde.de", "--json").stdout)
    assert profile["bouncing"] and profile["bounced_at"]
    assert "5.1.1 no such user" in profile["bounce_reason"]
    number = failed[0]["ticket"]
    assert desk.cli("tickets", "set", str(number), "--status", "closed").exit_code == 0
    assert "closed" not in [r["kind"] for r in outbox_rows(desk)]


def test_agent_answers_by_mail_with_commands(mailing: tuple[Desk, Sink]) -> None:
    desk, sink = mailing
    number = desk.ingest(make_mail(subject="Drucker", sender="Erika <erika@kunde.de>"))[1][
        "ticket"]
    sink.wait(1, "erika@kunde.de")
    (notice,) = sink.wait(1, "agent@example.com")
    # the agent answers the notice from their mail client, commands on top
    answer = reply_to(notice, "#status pending\n#priority normal\n\nBitte starten Sie den "
                      "Drucker neu.\n", sender="Demo Agent <agent@example.com>")
    out = desk.ingest(answer)[1]
    assert (out["action"], out["ticket"]) == ("appended", number)
    ticket = desk.show(number)
    assert (ticket["status"], ticket["priority"]) == ("pending", "normal")
    to_customer = sink.wait(2, "erika@kunde.de")[-1]
    body = to_customer.get_body(("plain",)).get_content()
    assert "Bitte starten Sie den Drucker neu." in body
    assert "#status" not in body
    confirmations = sink.wait(2, "agent@example.com")
    assert "#status pending" in confirmations[-1].get_body(("plain",)).get_content()

    # the customer answers: open again, the agent is told
    out = desk.ingest(reply_to(to_customer, "Hat geklappt, danke!\n"))[1]
    assert out["action"] == "appended"
    assert desk.show(number)["status"] == "open"
    sink.wait(3, "agent@example.com")


def test_invalid_agent_command_applies_nothing_and_says_why(mailing: tuple[Desk, Sink]) -> None:
    desk, sink = mailing
    number = desk.ingest(make_mail(subject="Monitor"))[1]["ticket"]
    (notice,) = sink.wait(1, "agent@example.com")
    out = desk.ingest(reply_to(notice, "#status pending\n#colour blue\n\nText\n",
                               sender="agent@example.com"))[1]
    assert out["reason"] == "agent_commands_rejected"
    ticket = desk.show(number)
    assert ticket["status"] == "new"  # nothing applied, nothing sent to the customer
    assert ticket["messages"][-1]["direction"] == "internal"
    report = sink.wait(2, "agent@example.com")[-1].get_body(("plain",)).get_content()
    assert "#colour" in report
    time.sleep(0.5)
    assert len(sink.to("erika@kunde.de")) == 1  # only the acknowledgement
