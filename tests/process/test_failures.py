"""A mail whose processing fails is kept, reported, and processed again on
its next delivery: never lost, never half written."""

from __future__ import annotations

import json
import smtplib

import pytest
from sqlmodel import Session, select

from maildesk.models import InboundMail, Message, Ticket
from maildesk.process import service
from maildesk.tickets import writes as tickets
from tests.conftest import Desk
from tests.daemon_helpers import start_serve, wait_until
from tests.mailfactory import make_mail


def test_processing_failure_rolls_back_keeps_mail_and_retries(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_mail(subject="trifft einen Fehler")
    original = tickets.add_mail_message

    def explode(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)  # rows written, then the failure: all must roll back
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tickets, "add_mail_message", explode)
    code, out = desk.ingest(raw)
    assert code == 75  # the MTA keeps the mail queued and retries
    assert out["action"] == "failed" and "disk on fire" in out["reason"]
    with Session(desk.engine()) as session:
        assert session.exec(select(Ticket)).all() == []
        assert session.exec(select(Message)).all() == []
        (row,) = session.exec(select(InboundMail)).all()
        assert row.state == "failed" and "disk on fire" in (row.error or "")
    failed = json.loads(desk.cli("inbound", "list", "--state", "failed", "--json").stdout)
    assert [f["id"] for f in failed] == [row.id]

    monkeypatch.setattr(tickets, "add_mail_message", original)
    code, out = desk.ingest(raw)  # the MTA's retry
    assert (code, out["action"]) == (0, "created")
    # PostgreSQL's sequence skips the number the rolled-back try took
    # (no lock across instances); SQLite's counter rolled back with it.
    first = 10001 if desk.settings.database_url.startswith("sqlite") else 10002
    assert out["ticket"] == first
    assert desk.ingest(raw)[1]["action"] == "duplicate"
    assert [t["number"] for t in desk.list()] == [first]


def test_one_failing_mail_in_an_import_batch_spares_the_others(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import mailbox

    box = mailbox.mbox(tmp_path / "m.mbox")
    for i in range(5):
        box.add(make_mail(subject=f"Mail {i}", message_id=f"<batch-{i}@x.de>"))
    box.flush()
    original = service.parse_mail

    def picky(raw: bytes):
        if b"Mail 2" in raw:
            raise ValueError("cannot digest mail 2")
        return original(raw)

    monkeypatch.setattr(service, "parse_mail", picky)
    result = desk.cli("import", str(tmp_path / "m.mbox"), "--json")
    assert json.loads(result.stdout)["outcomes"] == {"created": 4, "failed": 1}
    monkeypatch.setattr(service, "parse_mail", original)
    again = desk.cli("import", str(tmp_path / "m.mbox"), "--json")
    assert json.loads(again.stdout)["outcomes"] == {"created": 1, "duplicate": 4}


def test_mail_stored_but_never_processed_is_processed_on_redelivery(desk: Desk) -> None:
    """A crash between the accept commit and processing (kill -9) leaves a
    pending row; the MTA saw no exit 0 and delivers again."""
    from datetime import timedelta

    from sqlalchemy import update

    from maildesk.accept.spool import Incoming, accept
    from maildesk.models import utcnow

    raw = make_mail(subject="abgestürzt")
    engine = desk.engine()
    (accepted,) = accept(engine, [Incoming(raw, "pipe")])
    # Redelivered at once: the first delivery may still be at work.
    assert desk.ingest(raw)[1]["action"] == "duplicate"
    assert desk.list() == []
    with engine.begin() as conn:
        an_hour_ago = utcnow() - timedelta(hours=1)
        conn.execute(update(InboundMail.__table__).values(received_at=an_hour_ago))
    code, out = desk.ingest(raw)
    assert (code, out["action"], out["ticket"]) == (0, "created", 10001)
    assert inbound_state(desk, accepted.inbound_id) == "done"


def inbound_state(desk: Desk, inbound_id: int) -> str:
    with Session(desk.engine()) as session:
        row = session.get(InboundMail, inbound_id)
        return row.state if row else "missing"


def test_serve_processes_a_failed_mail_again_when_it_is_delivered_again(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """The README's promise for every channel: a failed mail is processed
    again on its next delivery (here: first by pipe, again over SMTP)."""
    raw = make_mail(subject="erst kaputt, dann gut", message_id="<again@kunde.de>")
    original = tickets.add_mail_message

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(tickets, "add_mail_message", explode)
    assert desk.ingest(raw)[1]["action"] == "failed"
    monkeypatch.setattr(tickets, "add_mail_message", original)
    serve = start_serve(desk.env, tmp_path)
    try:
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
            client.sendmail("erika@kunde.de", ["support@example.com"], raw)
        wait_until(lambda: desk.list(), 20)
    finally:
        assert serve.stop() == 0, serve.output()
    assert [t["subject"] for t in desk.list()] == ["erst kaputt, dann gut"]
    failed = json.loads(desk.cli("inbound", "list", "--state", "failed", "--json").stdout)
    assert failed == []


def _deadlock(*args: object, **kwargs: object) -> None:
    """What PostgreSQL raises in the victim of a deadlock between instances."""
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    raise OperationalError("INSERT INTO message …", {},
                           psycopg.errors.DeadlockDetected("deadlock detected"))


def test_a_temporary_fault_keeps_the_mail_pending_with_backoff(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadlock is not the mail's fault: it is never parked as failed
    (where only `maildesk replay` would find it); it waits, pending, for a
    retry after a delay that doubles, and the next try makes the ticket."""
    from datetime import timedelta

    from maildesk.models import utcnow
    from maildesk.process.drainer import pending_ids

    monkeypatch.setattr(tickets, "add_mail_message", _deadlock)
    raw = make_mail(subject="kommt trotz Deadlock an", message_id="<deadlock@kunde.de>")
    code, out = desk.ingest(raw)
    assert (code, out["action"]) == (75, "failed")  # the pipe's MTA retries too
    desk.ingest(raw)  # the MTA's retry meets the same fault
    with Session(desk.engine()) as session:
        (row,) = session.exec(select(InboundMail)).all()
        assert (row.state, row.attempts) == ("pending", 2)
        assert "DeadlockDetected" in (row.error or "")
        wait = row.next_attempt_at - utcnow()
        assert timedelta(seconds=2) < wait <= timedelta(seconds=4)  # 2 s, then 4 s
        inbound_id = row.id
    assert desk.ingest(raw)[1]["action"] == "failed"
    assert json.loads(desk.cli("inbound", "list", "--state", "failed", "--json").stdout) == []
    assert pending_ids(desk.engine()) == []  # the drainer waits for the backoff

    monkeypatch.setattr(tickets, "add_mail_message", _ORIGINAL)
    with Session(desk.engine()) as session:  # the backoff has passed
        row = session.get(InboundMail, inbound_id)
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    assert pending_ids(desk.engine()) == [inbound_id]
    result = desk.cli("replay", str(inbound_id))  # as the drainer would
    assert json.loads(result.stdout)["action"] == "created"
    assert [t["subject"] for t in desk.list()] == ["kommt trotz Deadlock an"]


_ORIGINAL = tickets.add_mail_message


def test_replay_all_failed_processes_every_parked_mail(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a code upgrade fixes the bug that parked them."""
    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug fixed in the next release")

    monkeypatch.setattr(tickets, "add_mail_message", bug)
    for n in range(3):
        assert desk.ingest(make_mail(subject=f"geparkt {n}"))[1]["action"] == "failed"
    failed = json.loads(desk.cli("inbound", "list", "--state", "failed", "--json").stdout)
    assert len(failed) == 3
    monkeypatch.setattr(tickets, "add_mail_message", _ORIGINAL)
    result = desk.cli("replay", "--all-failed")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["action"] for line in lines] == ["created"] * 3
    assert [line["inbound"] for line in lines] == sorted(f["id"] for f in failed)
    assert sorted(t["subject"] for t in desk.list()) == [f"geparkt {n}" for n in range(3)]
    again = desk.cli("replay", "--all-failed")
    assert again.exit_code == 0 and "no failed mails" in again.output
